//! HTTP/2 written by hand, for connections that carry a request the h2 crate refuses to send: an
//! empty, absent or repeated `:authority`, or one with characters a URI authority cannot hold.
//!
//! The h2 crate builds `:authority` from an `http::Uri`, which cannot be empty, repeated or
//! malformed, and its HPACK state cannot be shared with a second writer, so such a connection is
//! this client's from its preface on. It sends one request at a time with the core's frame codec
//! and loona-hpack, answers SETTINGS and PING, and reads the response, the reset or the GOAWAY
//! that ends it. Everything the target sends is also fed to the ORIGIN scanner, as on connections
//! of the h2 crate.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use misdirect_core::observe::ExchangeOutcome;
use misdirect_core::wire::h2::{self as frames, FrameScanner, OriginFrame};

use super::h2::goaway_outcome;
use super::{ConnectError, ResponseFields, WireRequest, closed_by};

const MAX_BODY: usize = 1024 * 1024;
/// Most bytes of a response's field block: the bound of a response head elsewhere.
const MAX_FIELD_BLOCK: usize = 64 * 1024;
/// RST_STREAM code CANCEL (RFC 9113 §7).
const CANCEL: u32 = 0x8;

/// An HTTP/2 connection driven frame by frame.
pub struct RawHttp2Connection {
    tls: TlsStream<TcpStream>,
    encoder: loona_hpack::Encoder<'static>,
    decoder: loona_hpack::Decoder<'static>,
    /// Bytes read and not yet parsed into frames.
    buffer: Vec<u8>,
    next_stream: u32,
    scanner: FrameScanner,
}

impl std::fmt::Debug for RawHttp2Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawHttp2Connection")
    }
}

/// What ended the wait for a frame.
enum Event {
    Frame {
        kind: u8,
        flags: u8,
        stream: u32,
        payload: Vec<u8>,
    },
    Ended(ExchangeOutcome),
}

impl RawHttp2Connection {
    /// Sends the preface and SETTINGS and waits for the target's SETTINGS, which must come
    /// first (RFC 9113 §3.4); the caller bounds the wait.
    pub(super) async fn handshake(tls: TlsStream<TcpStream>) -> Result<Self, ConnectError> {
        let mut connection = Self {
            tls,
            encoder: loona_hpack::Encoder::new(),
            decoder: loona_hpack::Decoder::new(),
            buffer: Vec::new(),
            next_stream: 1,
            scanner: FrameScanner::default(),
        };
        // SETTINGS_ENABLE_PUSH 0: nothing is pushed to a harness that never reads it.
        let mut opening = frames::PREFACE.to_vec();
        opening.extend(frames::frame(
            frames::FRAME_SETTINGS,
            0,
            0,
            &[0, 2, 0, 0, 0, 0],
        ));
        let setup_failed = |outcome: ExchangeOutcome| {
            ConnectError::Failed(format!("during HTTP/2 setup: {outcome}"))
        };
        if let Err(error) = connection.write(&opening).await {
            return Err(setup_failed(error));
        }
        match connection.next_frame().await {
            Event::Frame {
                kind: frames::FRAME_SETTINGS,
                flags,
                ..
            } if flags & frames::FLAG_ACK == 0 => {
                let ack = frames::frame(frames::FRAME_SETTINGS, frames::FLAG_ACK, 0, &[]);
                connection.write(&ack).await.map_err(setup_failed)?;
                Ok(connection)
            }
            Event::Frame {
                kind: frames::FRAME_GOAWAY,
                payload,
                ..
            } => Err(ConnectError::Refused(format!(
                "during HTTP/2 setup: {}",
                goaway_outcome(word(&payload, 4))
            ))),
            Event::Frame { kind, .. } => Err(ConnectError::Failed(format!(
                "during HTTP/2 setup: the target violated HTTP/2 after negotiating h2: its first frame has type 0x{kind:x}, not SETTINGS"
            ))),
            Event::Ended(outcome) if outcome.refused() == Some(true) => Err(ConnectError::Refused(
                format!("during HTTP/2 setup: {outcome}"),
            )),
            Event::Ended(outcome) => Err(setup_failed(outcome)),
        }
    }

    /// The ORIGIN frames the target has sent so far.
    pub(super) fn origin_frames(&self) -> Vec<OriginFrame> {
        self.scanner.frames().to_vec()
    }

    /// Sends `request` exactly as given on the next stream and reads its outcome; the caller
    /// bounds the wait.
    pub(super) async fn send(&mut self, request: &WireRequest) -> ExchangeOutcome {
        // No stream may be opened after a GOAWAY (RFC 9113 §6.8): the connection is gone.
        if self.scanner.goaway().is_some() {
            return ExchangeOutcome::Unsendable {
                detail: "the target sent GOAWAY on this connection earlier".to_owned(),
            };
        }
        let stream = self.next_stream;
        self.next_stream += 2;
        let fields = request.fields();
        let mut block = Vec::new();
        for (name, value) in &fields {
            // Writing into a Vec cannot fail.
            let _ = self
                .encoder
                .encode_header_into((name.as_bytes(), value.as_bytes()), &mut block);
        }
        let end_stream = if request.body.is_none() {
            frames::FLAG_END_STREAM
        } else {
            0
        };
        let mut bytes = frames::frame(
            frames::FRAME_HEADERS,
            frames::FLAG_END_HEADERS | end_stream,
            stream,
            &block,
        );
        if let Some(body) = &request.body {
            bytes.extend(frames::frame(
                frames::FRAME_DATA,
                frames::FLAG_END_STREAM,
                stream,
                body,
            ));
        }
        // A target that answers and closes before reading everything still answered.
        let written = self.write(&bytes).await;
        let outcome = self.read_response(stream).await;
        match (written, outcome) {
            (Err(error), ExchangeOutcome::Dropped { .. }) => error,
            (_, outcome) => outcome,
        }
    }

    /// Reads frames until `stream` has its response (and body, up to the limit) or ends.
    async fn read_response(&mut self, stream: u32) -> ExchangeOutcome {
        // The field block being collected (only one can be open on a connection, RFC 9113
        // §6.10): its stream, whether its HEADERS frame ended that stream, the fragments so far.
        let mut block: Option<(u32, bool, Vec<u8>)> = None;
        let mut head: Option<(u16, ResponseFields)> = None;
        let mut body = Vec::new();
        let answered = |head: Option<(u16, ResponseFields)>, body: &[u8], reset: Option<u32>| {
            head.map(|(status, fields)| {
                let mut response = fields.into_response(status, body);
                response.reset_after = reset.map(u64::from);
                ExchangeOutcome::Response(response)
            })
        };
        loop {
            let (kind, flags, on, payload) = match self.next_frame().await {
                Event::Frame {
                    kind,
                    flags,
                    stream,
                    payload,
                } => (kind, flags, stream, payload),
                Event::Ended(outcome) => return answered(head, &body, None).unwrap_or(outcome),
            };
            match kind {
                frames::FRAME_SETTINGS if flags & frames::FLAG_ACK == 0 => {
                    let ack = frames::frame(frames::FRAME_SETTINGS, frames::FLAG_ACK, 0, &[]);
                    if let Err(outcome) = self.write(&ack).await {
                        return outcome;
                    }
                }
                frames::FRAME_PING if flags & frames::FLAG_ACK == 0 => {
                    let pong = frames::frame(frames::FRAME_PING, frames::FLAG_ACK, 0, &payload);
                    if let Err(outcome) = self.write(&pong).await {
                        return outcome;
                    }
                }
                frames::FRAME_GOAWAY => {
                    let last = word(&payload, 0) & 0x7fff_ffff;
                    // A stream the GOAWAY covers may still be answered.
                    if last < stream || head.is_some() {
                        return answered(head, &body, None)
                            .unwrap_or_else(|| goaway_outcome(word(&payload, 4)));
                    }
                }
                frames::FRAME_RST_STREAM if on == stream => {
                    let code = word(&payload, 0);
                    return answered(head, &body, Some(code)).unwrap_or_else(|| {
                        ExchangeOutcome::StreamReset {
                            code: code.into(),
                            name: format!("{:?}", h2::Reason::from(code)),
                        }
                    });
                }
                frames::FRAME_HEADERS | frames::FRAME_CONTINUATION => {
                    let fragment = if kind == frames::FRAME_HEADERS {
                        let Some(fragment) = frames::header_block(flags, &payload) else {
                            return violation("a HEADERS frame's padding exceeds its payload");
                        };
                        block = Some((on, flags & frames::FLAG_END_STREAM != 0, Vec::new()));
                        fragment
                    } else {
                        &payload
                    };
                    let Some((_, _, collected)) = &mut block else {
                        return violation("a CONTINUATION frame without a field block open");
                    };
                    collected.extend_from_slice(fragment);
                    if collected.len() > MAX_FIELD_BLOCK {
                        return violation("a field block larger than 64 KiB");
                    }
                    if flags & frames::FLAG_END_HEADERS == 0 {
                        continue;
                    }
                    let Some((of, ends_stream, collected)) = block.take() else {
                        continue;
                    };
                    // Every block is decoded, whatever its stream, to keep the HPACK table in
                    // step with the target's.
                    let fields = match self.decoder.decode(&collected) {
                        Ok(fields) => fields,
                        Err(error) => return violation(&format!("bad HPACK: {error}")),
                    };
                    if of != stream {
                        continue;
                    }
                    let field = |name: &str| {
                        fields
                            .iter()
                            .find(|(candidate, _)| candidate == name.as_bytes())
                            .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
                    };
                    let status = field(":status").and_then(|status| status.parse().ok());
                    // Interim responses precede the final one; trailers follow it.
                    match status {
                        Some(status) if head.is_none() && !(100..200).contains(&status) => {
                            head = Some((status, ResponseFields::from_lookup(field)));
                        }
                        None if head.is_none() => {
                            return violation("a response without :status");
                        }
                        _ => {}
                    }
                    if ends_stream && head.is_some() {
                        break;
                    }
                }
                frames::FRAME_DATA => {
                    // The window the target used is given back, whatever the stream, so that
                    // the connection never stalls.
                    if !payload.is_empty() {
                        let increment = u32::try_from(payload.len()).unwrap_or(0).to_be_bytes();
                        let mut updates =
                            frames::frame(frames::FRAME_WINDOW_UPDATE, 0, 0, &increment);
                        if on == stream {
                            updates.extend(frames::frame(
                                frames::FRAME_WINDOW_UPDATE,
                                0,
                                stream,
                                &increment,
                            ));
                        }
                        let _ = self.write(&updates).await;
                    }
                    if on != stream {
                        continue;
                    }
                    let data = if flags & frames::FLAG_PADDED != 0 {
                        let pad = usize::from(payload.first().copied().unwrap_or(0));
                        payload
                            .get(1..)
                            .and_then(|rest| rest.get(..rest.len().checked_sub(pad)?))
                    } else {
                        Some(payload.as_slice())
                    };
                    let Some(data) = data else {
                        return violation("a DATA frame's padding exceeds its payload");
                    };
                    let room = MAX_BODY - body.len();
                    body.extend_from_slice(&data[..data.len().min(room)]);
                    if flags & frames::FLAG_END_STREAM != 0 {
                        break;
                    }
                    if body.len() >= MAX_BODY {
                        // Enough read; the rest is not wanted.
                        let cancel = frames::frame(
                            frames::FRAME_RST_STREAM,
                            0,
                            stream,
                            &CANCEL.to_be_bytes(),
                        );
                        let _ = self.write(&cancel).await;
                        break;
                    }
                }
                // Frames of other streams, WINDOW_UPDATE, PRIORITY, unknown types: nothing to do
                // (RFC 9113 §5.5).
                _ => {}
            }
        }
        answered(head, &body, None)
            .unwrap_or_else(|| violation("the stream ended without a response"))
    }

    /// The next whole frame, or how the connection ended.
    async fn next_frame(&mut self) -> Event {
        loop {
            if let Some((kind, flags, stream, payload, used)) = frames::parse_frame(&self.buffer) {
                let event = Event::Frame {
                    kind,
                    flags,
                    stream,
                    payload: payload.to_vec(),
                };
                self.buffer.drain(..used);
                return event;
            }
            if self.buffer.len() > MAX_BODY {
                return Event::Ended(violation(
                    "a frame larger than 1 MiB, past the harness's limit",
                ));
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.tls.read(&mut chunk).await {
                Ok(0) => {
                    return Event::Ended(match self.scanner.goaway() {
                        Some(code) => goaway_outcome(code),
                        None => ExchangeOutcome::Dropped {
                            detail: "the target closed the connection".to_owned(),
                        },
                    });
                }
                Ok(read) => {
                    self.scanner.feed(&chunk[..read]);
                    self.buffer.extend_from_slice(&chunk[..read]);
                }
                Err(error) => return Event::Ended(closed_by(&error)),
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ExchangeOutcome> {
        let written = match self.tls.write_all(bytes).await {
            Ok(()) => self.tls.flush().await,
            Err(error) => Err(error),
        };
        written.map_err(|error| closed_by(&error))
    }
}

/// The 32-bit word at `at` of a frame's payload (0 when the payload is too short).
fn word(payload: &[u8], at: usize) -> u32 {
    payload.get(at..at + 4).map_or(0, |word| {
        u32::from_be_bytes([word[0], word[1], word[2], word[3]])
    })
}

fn violation(what: &str) -> ExchangeOutcome {
    ExchangeOutcome::Violation {
        detail: format!("the target violated HTTP/2: {what}"),
    }
}
