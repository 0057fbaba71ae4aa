//! HTTP/2 over TLS with the `h2` crate: `:authority` comes from the request URI and a `Host`
//! header, when a scenario sets one, travels beside it untouched.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;

use misdirect_core::wire::h2::{FrameScanner, OriginFrame};

use super::{ConnectError, LAST_WORDS, ResponseFields, WireRequest, closed_by};
use misdirect_core::observe::ExchangeOutcome;

const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug)]
pub struct Http2Connection {
    sender: h2::client::SendRequest<Bytes>,
    driver: JoinHandle<Option<h2::Error>>,
    /// What the tap saw the target send (ORIGIN frames among it).
    origins: Arc<Mutex<Seen>>,
}

impl Drop for Http2Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Http2Connection {
    /// Sets up HTTP/2 and waits for one PING round trip, so that a target that refuses the TLS
    /// session after the client's Finished (TLS 1.3 client authentication) is seen as refusing
    /// the connection rather than as failing the first request. Only a refusal in the target's
    /// words (an alert, a GOAWAY) is [`ConnectError::Refused`]; garbage or a dropped connection
    /// means there was nothing to test.
    pub(super) async fn handshake(stream: TlsStream<TcpStream>) -> Result<Self, ConnectError> {
        let origins = Arc::new(Mutex::new(Seen::default()));
        let stream = Shared(Arc::new(Mutex::new(stream)));
        let tapped = Tapped {
            inner: stream.clone(),
            scanner: Arc::clone(&origins),
        };
        let (sender, mut connection) = match h2::client::Builder::new()
            .enable_push(false)
            // The same bound as HTTP/1.1's response head: past it, the target is endless.
            .max_header_list_size(64 * 1024)
            .handshake(tapped)
            .await
        {
            Ok(handshake) => handshake,
            Err(error) => return Err(setup_failed(&error, stream, &origins).await),
        };
        let pings = connection.ping_pong();
        // The connection future does the I/O; requests see its failures as their own errors.
        let mut driver = tokio::spawn(async move { connection.await.err() });
        if let Some(mut pings) = pings
            && let Err(error) = pings.ping(h2::Ping::opaque()).await
        {
            // The connection's own error says more than the PING's (a framing error rather
            // than the broken pipe that followed it).
            let ended = tokio::time::timeout(LAST_WORDS, &mut driver).await;
            driver.abort();
            let connection_error = ended.ok().and_then(Result::ok).flatten();
            let error = connection_error.as_ref().unwrap_or(&error);
            return Err(setup_failed(error, stream, &origins).await);
        }
        Ok(Self {
            sender,
            driver,
            origins,
        })
    }

    /// The ORIGIN frames the target has sent so far.
    pub(super) fn origin_frames(&self) -> Vec<OriginFrame> {
        self.origins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .frames
            .frames()
            .to_vec()
    }

    pub(super) fn sender(&self) -> Http2Sender {
        Http2Sender {
            sender: self.sender.clone(),
            frames: Arc::clone(&self.origins),
        }
    }
}

/// Why HTTP/2 setup failed. A target that refuses the TLS session after the handshake (TLS 1.3
/// client authentication) sends an alert and closes; the h2 crate may meet the reset of its
/// next write before reading the alert, so before calling the connection dropped, what the
/// target sent last is read, for a short while, from the stream the h2 crate has let go of.
async fn setup_failed(
    error: &h2::Error,
    stream: Shared<TlsStream<TcpStream>>,
    seen: &Arc<Mutex<Seen>>,
) -> ConnectError {
    let seen_now = || classify(error, &seen.lock().unwrap_or_else(PoisonError::into_inner));
    let mut outcome = seen_now();
    if matches!(outcome, ExchangeOutcome::Dropped { .. }) {
        let mut tapped = Tapped {
            inner: stream,
            scanner: Arc::clone(seen),
        };
        let mut last = [0u8; 4096];
        let _ = tokio::time::timeout(LAST_WORDS, tapped.read(&mut last)).await;
        outcome = seen_now();
    }
    let detail = match &outcome {
        ExchangeOutcome::ConnectionClosed { detail } => format!("during HTTP/2 setup: {detail}"),
        other => format!("during HTTP/2 setup: {other}"),
    };
    match outcome.refused() {
        Some(true) => ConnectError::Refused(detail),
        _ => ConnectError::Failed(detail),
    }
}

/// A stream shared between the h2 crate and [`setup_failed`], which reads from it once the h2
/// crate has given up; never used by both at once.
struct Shared<S>(Arc<Mutex<S>>);

impl<S> Clone for Shared<S> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Shared<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let mut stream = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Pin::new(&mut *stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Shared<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut stream = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Pin::new(&mut *stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut stream = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Pin::new(&mut *stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut stream = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Pin::new(&mut *stream).poll_shutdown(cx)
    }
}

/// A cloneable handle that sends requests on one HTTP/2 connection.
#[derive(Debug, Clone)]
pub struct Http2Sender {
    sender: h2::client::SendRequest<Bytes>,
    /// What the tap saw the target send, for the GOAWAY code or alert behind a broken pipe.
    frames: Arc<Mutex<Seen>>,
}

impl Http2Sender {
    pub async fn send(self, request: &WireRequest) -> ExchangeOutcome {
        match self.exchange(request).await {
            Ok(outcome) | Err(outcome) => outcome,
        }
    }

    async fn exchange(self, request: &WireRequest) -> Result<ExchangeOutcome, ExchangeOutcome> {
        // Before the request is on the wire, a failure of the connection means it was already
        // gone; a failure of our own making means the request cannot be expressed.
        let before_sending = |error: h2::Error| {
            if error.is_go_away() || error.is_io() || error.is_remote() || error.is_library() {
                ExchangeOutcome::Unsendable {
                    detail: error.to_string(),
                }
            } else {
                ExchangeOutcome::NotSent {
                    detail: format!("the HTTP/2 client refused the request: {error}"),
                }
            }
        };
        let no_streams = self
            .frames
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .frames
            .max_concurrent_streams()
            == Some(0);
        if no_streams {
            return Err(ExchangeOutcome::NotSent {
                detail: "the target allows no stream (SETTINGS_MAX_CONCURRENT_STREAMS 0), so no request can be sent".to_owned(),
            });
        }
        let mut sender = self.sender.ready().await.map_err(before_sending)?;
        let head = request
            .head(http::Version::HTTP_2)
            .map_err(|detail| ExchangeOutcome::NotSent { detail })?;
        let (response, mut body_stream) = sender
            .send_request(head, request.body.is_none())
            .map_err(before_sending)?;
        if let Some(body) = &request.body {
            // A target may answer (and reset the stream) before reading the body: the
            // response still counts, so a failed send is not reported on its own.
            let _ = body_stream.send_data(body.clone(), true);
        }
        let response = response.await.map_err(|error| {
            classify(
                &error,
                &self.frames.lock().unwrap_or_else(PoisonError::into_inner),
            )
        })?;
        let status = response.status().as_u16();
        let fields = ResponseFields::from_headers(response.headers());
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        // Once the head is in, the response counts; a body cut short only shortens the excerpt,
        // and reading stops at the limit (dropping the body resets the stream).
        while bytes.len() < MAX_BODY
            && let Some(Ok(chunk)) = body.data().await
        {
            let _ = body.flow_control().release_capacity(chunk.len());
            bytes.extend_from_slice(&chunk[..chunk.len().min(MAX_BODY - bytes.len())]);
        }
        Ok(ExchangeOutcome::Response(
            fields.into_response(status, &bytes),
        ))
    }
}

/// What the tap saw the target send.
#[derive(Debug, Default)]
struct Seen {
    frames: FrameScanner,
    /// The TLS alert that ended the stream: the h2 crate may report the broken pipe of a write
    /// that failed after it instead.
    alert: Option<String>,
}

/// The TLS stream as the h2 crate sees it, with every byte the target sends also fed to a
/// [`FrameScanner`] (the h2 crate discards ORIGIN frames, the harness wants to see them), and
/// any TLS alert kept.
struct Tapped<S> {
    inner: S,
    scanner: Arc<Mutex<Seen>>,
}

impl<S: AsyncRead + Unpin> Tapped<S> {
    /// Reads what the target sent into `buf`, feeding the scanner and keeping any TLS alert.
    fn tap_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let mut seen = self.scanner.lock().unwrap_or_else(PoisonError::into_inner);
        match &polled {
            Poll::Ready(Ok(())) => seen.frames.feed(&buf.filled()[before..]),
            Poll::Ready(Err(error)) => {
                if let Some(rustls::Error::AlertReceived(alert)) = error
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                {
                    seen.alert = Some(format!("TLS alert {alert:?}"));
                }
            }
            Poll::Pending => {}
        }
        polled
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tapped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.tap_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tapped<S> {
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

/// What a request's error says. Only what the target sent counts as its answer: a reset or
/// GOAWAY it sent, a TLS alert. An error our own client raised (it found the target breaking
/// HTTP/2, or a limit was hit) is a violation; a connection gone without a word is dropped.
/// `seen` is what the tap saw the target send: the h2 crate reports a connection closed right
/// after a GOAWAY or an alert as a broken pipe, which hides them, and garbage as a framing error.
fn classify(error: &h2::Error, seen: &Seen) -> ExchangeOutcome {
    let frames = &seen.frames;
    if let Some(violation) = frames.preface_violation() {
        return ExchangeOutcome::Violation {
            detail: format!("the target violated HTTP/2 after negotiating h2: {violation}"),
        };
    }
    match error.reason() {
        Some(reason) if error.is_reset() && error.is_remote() => {
            return ExchangeOutcome::StreamReset {
                code: u32::from(reason).into(),
                name: format!("{reason:?}"),
            };
        }
        Some(reason) if error.is_go_away() && error.is_remote() => {
            return goaway_outcome(reason.into());
        }
        _ => {}
    }
    if error.is_library() {
        // The h2 crate found the target breaking the protocol, and reset or ended it itself.
        return ExchangeOutcome::Violation {
            detail: format!("the target violated HTTP/2 framing: {error}"),
        };
    }
    if let Some(code) = frames.goaway() {
        return goaway_outcome(code);
    }
    if let Some(alert) = &seen.alert {
        return ExchangeOutcome::ConnectionClosed {
            detail: alert.clone(),
        };
    }
    if let Some(io) = error.get_io() {
        return closed_by(io);
    }
    if error.is_remote() {
        return ExchangeOutcome::ConnectionClosed {
            detail: error.to_string(),
        };
    }
    ExchangeOutcome::NotSent {
        detail: format!("the HTTP/2 client refused the request: {error}"),
    }
}

/// How a connection ended by the target's GOAWAY with error `code`: closed in words for
/// NO_ERROR, a connection error otherwise.
pub(super) fn goaway_outcome(code: u32) -> ExchangeOutcome {
    match h2::Reason::from(code) {
        h2::Reason::NO_ERROR => ExchangeOutcome::ConnectionClosed {
            detail: "GOAWAY NO_ERROR".to_owned(),
        },
        reason => ExchangeOutcome::ConnectionError {
            code: code.into(),
            name: format!("GOAWAY {reason:?}"),
        },
    }
}
