//! The lenient parser of the faults in [`misdirect_core::lenient::FAULTS`], in front of the
//! HTTP/2 shell: the client's field blocks are decoded, read as the faulty parser reads them, and
//! encoded again before the h2 crate sees them, so that a request the crate would reject (an
//! empty, delimited or repeated `:authority`) reaches the policy the way that parser hands it on.
//! Every other frame passes untouched; the h2 crate stays in charge of the connection.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use misdirect_core::fault::Fault;
use misdirect_core::lenient;
use misdirect_core::wire::h2 as frames;

/// Most bytes of one field block held while its CONTINUATION frames arrive.
const MAX_BLOCK: usize = 64 * 1024;
/// The largest frame payload the h2 crate accepts before SETTINGS say otherwise (RFC 9113 §4.2).
const MAX_FRAME: usize = 16 * 1024;

pub(super) struct ReadLeniently<S> {
    inner: S,
    fault: Fault,
    /// Bytes of the client's preface still to pass on before frames begin.
    preface: usize,
    /// What the client sent that does not make a whole frame yet.
    incoming: Vec<u8>,
    /// Bytes ready for the h2 crate, and how many of them it has read.
    ready: Vec<u8>,
    given: usize,
    /// The HEADERS frame whose field block is still arriving: stream, flags, block so far.
    pending: Option<(u32, u8, Vec<u8>)>,
    /// The client's HPACK state, and the one the h2 crate's decoder follows.
    decoder: loona_hpack::Decoder<'static>,
    encoder: loona_hpack::Encoder<'static>,
    /// Why the client's frames can no longer be read (bad padding, an oversized field block):
    /// the connection ends with an error rather than hand the h2 crate a block out of step.
    broken: Option<&'static str>,
}

impl<S> ReadLeniently<S> {
    pub(super) fn new(inner: S, fault: Fault) -> Self {
        Self {
            inner,
            fault,
            preface: frames::PREFACE.len(),
            incoming: Vec::new(),
            ready: Vec::new(),
            given: 0,
            pending: None,
            decoder: loona_hpack::Decoder::new(),
            encoder: loona_hpack::Encoder::new(),
            broken: None,
        }
    }

    /// Moves every whole frame of `incoming` to `ready`, field blocks read leniently.
    fn process(&mut self) {
        let preface = self.preface.min(self.incoming.len());
        self.ready.extend(self.incoming.drain(..preface));
        self.preface -= preface;
        if frames::parse_frame(&self.incoming).is_none() && self.incoming.len() > 16 * MAX_BLOCK {
            // No frame of that size is allowed: the h2 crate refuses it as it is.
            self.ready.append(&mut self.incoming);
        }
        while let Some((kind, flags, stream, payload, used)) = frames::parse_frame(&self.incoming) {
            match kind {
                frames::FRAME_HEADERS => match frames::header_block(flags, payload) {
                    Some(block) => self.pending = Some((stream, flags, block.to_vec())),
                    None => self.broken = Some("a HEADERS frame's padding exceeds its payload"),
                },
                frames::FRAME_CONTINUATION if self.pending.is_some() => {
                    if let Some((_, _, block)) = &mut self.pending {
                        if block.len() + payload.len() > MAX_BLOCK {
                            self.broken = Some("a field block larger than 64 KiB");
                        }
                        block.extend_from_slice(payload);
                    }
                }
                _ => {
                    let frame = self.incoming[..used].to_vec();
                    self.ready.extend(frame);
                }
            }
            let ends_block = matches!(kind, frames::FRAME_HEADERS | frames::FRAME_CONTINUATION)
                && flags & frames::FLAG_END_HEADERS != 0;
            self.incoming.drain(..used);
            if self.broken.is_some() {
                return;
            }
            if ends_block && let Some((stream, flags, block)) = self.pending.take() {
                let block = self.reread(&block);
                // One HEADERS frame, then CONTINUATION frames, none past the frame size limit.
                let chunks: Vec<&[u8]> = if block.is_empty() {
                    vec![&[]]
                } else {
                    block.chunks(MAX_FRAME).collect()
                };
                for (index, chunk) in chunks.iter().enumerate() {
                    let (kind, mut flags) = if index == 0 {
                        (frames::FRAME_HEADERS, flags & frames::FLAG_END_STREAM)
                    } else {
                        (frames::FRAME_CONTINUATION, 0)
                    };
                    if index + 1 == chunks.len() {
                        flags |= frames::FLAG_END_HEADERS;
                    }
                    self.ready.extend(frames::frame(kind, flags, stream, chunk));
                }
            }
        }
    }

    /// A field block as the faulty parser reads it, encoded for the h2 crate.
    fn reread(&mut self, block: &[u8]) -> Vec<u8> {
        let fields: Vec<(String, String)> = match self.decoder.decode(block) {
            Ok(fields) => fields
                .into_iter()
                .map(|(name, value)| {
                    (
                        String::from_utf8_lossy(&name).into_owned(),
                        String::from_utf8_lossy(&value).into_owned(),
                    )
                })
                .collect(),
            // The h2 crate finds the same fault with what is left.
            Err(_) => Vec::new(),
        };
        let fields = lenient::read(self.fault, &fields).unwrap_or(fields);
        let mut encoded = Vec::new();
        for (name, value) in &fields {
            // Writing into a Vec cannot fail.
            let _ = self
                .encoder
                .encode_header_into((name.as_bytes(), value.as_bytes()), &mut encoded);
        }
        encoded
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadLeniently<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.given == this.ready.len()
                && let Some(why) = this.broken
            {
                return Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    why,
                )));
            }
            if this.given < this.ready.len() {
                let take = buf.remaining().min(this.ready.len() - this.given);
                buf.put_slice(&this.ready[this.given..this.given + take]);
                this.given += take;
                if this.given == this.ready.len() {
                    this.ready.clear();
                    this.given = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    // The end: what never made a frame goes on as it is.
                    this.ready.append(&mut this.incoming);
                    if this.ready.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                }
                Poll::Ready(Ok(())) => {
                    this.incoming.extend_from_slice(read.filled());
                    this.process();
                }
                other => return other,
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadLeniently<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
