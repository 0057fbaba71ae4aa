//! ORIGIN injection for the HTTP/2 and HTTP/3 shells: neither the h2 nor the h3 crate can send
//! an ORIGIN frame (RFC 8336, RFC 9412), so what they write to is wrapped and the frame is
//! slipped in right after the server's SETTINGS: over HTTP/2 after the first frame of the TLS
//! stream, over HTTP/3 after the first write on the control stream. The crates stay in charge of
//! everything else.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use h3::quic::{
    ConnectionErrorIncoming, OpenStreams, SendStream, SendStreamUnframed, StreamErrorIncoming,
    StreamId, WriteBuf,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use misdirect_core::wire;

/// The server's side of an HTTP/2 connection as the h2 crate writes it, with extra bytes (an
/// ORIGIN frame) slipped in right after the first frame, the server's SETTINGS: RFC 8336
/// Appendix B asks for ORIGIN as early as possible, and the h2 crate cannot send it.
pub(super) struct InjectAfterFirstFrame<S> {
    inner: S,
    first: wire::h2::FirstFrame,
    /// The bytes to slip in and how many went out; `None` once done.
    pending: Option<(Vec<u8>, usize)>,
    first_done: bool,
}

impl<S> InjectAfterFirstFrame<S> {
    pub(super) fn new(inner: S, bytes: Vec<u8>) -> Self {
        Self {
            inner,
            first: wire::h2::FirstFrame::default(),
            pending: Some((bytes, 0)),
            first_done: false,
        }
    }
}

impl<S: AsyncWrite + Unpin> InjectAfterFirstFrame<S> {
    /// Writes out the injected bytes once the first frame is through.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.first_done {
            return Poll::Ready(Ok(()));
        }
        while let Some((bytes, offset)) = &mut self.pending {
            if *offset == bytes.len() {
                self.pending = None;
                break;
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*offset..]) {
                Poll::Ready(Ok(written)) => *offset += written,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for InjectAfterFirstFrame<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for InjectAfterFirstFrame<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if let Poll::Ready(Err(error)) = this.poll_pending(cx) {
            return Poll::Ready(Err(error));
        }
        if this.pending.is_some() && this.first_done {
            return Poll::Pending;
        }
        if this.first_done {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        let within = this.first.within_first_frame(buf);
        match Pin::new(&mut this.inner).poll_write(cx, &buf[..within]) {
            Poll::Ready(Ok(written)) => {
                if this.first.passed(&buf[..written]) {
                    this.first_done = true;
                }
                Poll::Ready(Ok(written))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        match this.poll_pending(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The QUIC connection as the h3 crate sees it, with an ORIGIN frame slipped in on the server's
/// control stream right after the SETTINGS frame the crate writes first (RFC 9412 §2, RFC 8336
/// Appendix B: as early as possible).
pub(super) struct InjectOnControlStream {
    inner: h3_quinn::Connection,
    frame: Bytes,
}

impl InjectOnControlStream {
    pub(super) fn new(connection: quinn::Connection, frame: Vec<u8>) -> Self {
        Self {
            inner: h3_quinn::Connection::new(connection),
            frame: Bytes::from(frame),
        }
    }
}

impl<B: Buf> OpenStreams<B> for InjectOnControlStream {
    type BidiStream = <h3_quinn::Connection as OpenStreams<B>>::BidiStream;
    type SendStream = InjectingSend<B>;

    fn poll_open_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::BidiStream, StreamErrorIncoming>> {
        OpenStreams::<B>::poll_open_bidi(&mut self.inner, cx)
    }

    /// Every unidirectional stream carries the frame until its first write shows whether it
    /// is the control stream.
    fn poll_open_send(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::SendStream, StreamErrorIncoming>> {
        OpenStreams::<B>::poll_open_send(&mut self.inner, cx).map_ok(|inner| InjectingSend {
            inner,
            injection: Injection::Undecided(self.frame.clone()),
        })
    }

    fn close(&mut self, code: h3::error::Code, reason: &[u8]) {
        OpenStreams::<B>::close(&mut self.inner, code, reason);
    }
}

impl<B: Buf> h3::quic::Connection<B> for InjectOnControlStream {
    type RecvStream = h3_quinn::RecvStream;
    type OpenStreams = Opener;

    fn poll_accept_recv(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::RecvStream, ConnectionErrorIncoming>> {
        h3::quic::Connection::<B>::poll_accept_recv(&mut self.inner, cx)
    }

    fn poll_accept_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::BidiStream, ConnectionErrorIncoming>> {
        h3::quic::Connection::<B>::poll_accept_bidi(&mut self.inner, cx)
    }

    fn opener(&self) -> Self::OpenStreams {
        Opener(h3::quic::Connection::<B>::opener(&self.inner))
    }
}

/// Opens streams beside the connection; a server opens its control stream on the connection
/// itself, so nothing is injected here.
pub(super) struct Opener(h3_quinn::OpenStreams);

impl<B: Buf> OpenStreams<B> for Opener {
    type BidiStream = <h3_quinn::OpenStreams as OpenStreams<B>>::BidiStream;
    type SendStream = InjectingSend<B>;

    fn poll_open_bidi(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::BidiStream, StreamErrorIncoming>> {
        OpenStreams::<B>::poll_open_bidi(&mut self.0, cx)
    }

    fn poll_open_send(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::SendStream, StreamErrorIncoming>> {
        OpenStreams::<B>::poll_open_send(&mut self.0, cx).map_ok(|inner| InjectingSend {
            inner,
            injection: Injection::Done,
        })
    }

    fn close(&mut self, code: h3::error::Code, reason: &[u8]) {
        OpenStreams::<B>::close(&mut self.0, code, reason);
    }
}

/// Where a unidirectional stream is with the ORIGIN frame.
enum Injection {
    /// Nothing written yet: the first write tells whether this is the control stream.
    Undecided(Bytes),
    /// The control stream: what is left of its first write (stream type and SETTINGS) with the
    /// ORIGIN frame after it, written as one, so that both reach the client in one packet.
    Pending(Bytes),
    Done,
}

/// One unidirectional stream of the server, passed through to QUIC, plus the ORIGIN frame
/// after the first write if it is the control stream.
pub(super) struct InjectingSend<B: Buf> {
    inner: h3_quinn::SendStream<B>,
    injection: Injection,
}

impl<B: Buf> SendStream<B> for InjectingSend<B> {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        ready!(self.inner.poll_ready(cx))?;
        if let Injection::Pending(bytes) = &mut self.injection {
            while bytes.has_remaining() {
                ready!(self.inner.poll_send(cx, bytes))?;
            }
            self.injection = Injection::Done;
        }
        Poll::Ready(Ok(()))
    }

    fn send_data<T: Into<WriteBuf<B>>>(&mut self, data: T) -> Result<(), StreamErrorIncoming> {
        let mut data = data.into();
        if let Injection::Undecided(frame) = &mut self.injection {
            // The stream type leads the stream's first write (RFC 9114 §6.2); the h3 crate
            // writes the control stream's type and SETTINGS frame together.
            let control = wire::h3::varint(data.chunk())
                .is_some_and(|(kind, _)| kind == wire::h3::STREAM_CONTROL);
            if control {
                let mut joined = BytesMut::with_capacity(data.remaining() + frame.len());
                joined.put(&mut data);
                joined.put(std::mem::take(frame));
                self.injection = Injection::Pending(joined.freeze());
                return Ok(());
            }
            self.injection = Injection::Done;
        }
        self.inner.send_data(data)
    }

    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamErrorIncoming>> {
        ready!(self.poll_ready(cx))?;
        self.inner.poll_finish(cx)
    }

    fn reset(&mut self, reset_code: u64) {
        self.inner.reset(reset_code);
    }

    fn send_id(&self) -> StreamId {
        self.inner.send_id()
    }
}
