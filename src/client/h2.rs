//! HTTP/2 over TLS with the `h2` crate: `:authority` comes from the request URI and a `Host`
//! header, when a scenario sets one, travels beside it untouched.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;

use misdirect_core::wire::h2::{FrameScanner, OriginFrame};

use super::{ResponseFields, WireRequest};
use misdirect_core::observe::ExchangeOutcome;

const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug)]
pub struct Http2Connection {
    sender: h2::client::SendRequest<Bytes>,
    driver: JoinHandle<()>,
    /// ORIGIN frames picked out of what the target sends.
    origins: Arc<Mutex<FrameScanner>>,
}

impl Drop for Http2Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Http2Connection {
    /// Sets up HTTP/2 and waits for one PING round trip, so that a target that refuses the TLS
    /// session after the client's Finished (TLS 1.3 client authentication) is seen as refusing
    /// the connection rather than as failing the first request.
    pub(super) async fn handshake(stream: TlsStream<TcpStream>) -> Result<Self, String> {
        let origins = Arc::new(Mutex::new(FrameScanner::default()));
        let tapped = Tapped {
            inner: stream,
            scanner: Arc::clone(&origins),
        };
        let (sender, mut connection) = h2::client::Builder::new()
            .enable_push(false)
            .handshake(tapped)
            .await
            .map_err(|error| format!("HTTP/2 handshake failed: {}", describe(&error)))?;
        let pings = connection.ping_pong();
        // The connection future does the I/O; requests see its failures as their own errors.
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        if let Some(mut pings) = pings
            && let Err(error) = pings.ping(h2::Ping::opaque()).await
        {
            driver.abort();
            return Err(format!(
                "the connection ended during HTTP/2 setup: {}",
                describe(&error)
            ));
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

/// A cloneable handle that sends requests on one HTTP/2 connection.
#[derive(Debug, Clone)]
pub struct Http2Sender {
    sender: h2::client::SendRequest<Bytes>,
    /// What the tap saw of the target's frames, for the GOAWAY code behind a broken pipe.
    frames: Arc<Mutex<FrameScanner>>,
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
            let goaway = self
                .frames
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .goaway();
            classify(&error, goaway)
        })?;
        let status = response.status().as_u16();
        let fields = ResponseFields::from_headers(response.headers());
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        // Once the head is in, the response counts; a body cut short only shortens the excerpt.
        while let Some(Ok(chunk)) = body.data().await {
            let _ = body.flow_control().release_capacity(chunk.len());
            if bytes.len() < MAX_BODY {
                bytes.extend_from_slice(&chunk);
            }
        }
        Ok(ExchangeOutcome::Response(
            fields.into_response(status, &bytes),
        ))
    }
}

/// The TLS stream as the h2 crate sees it, with every byte the target sends also fed to a
/// [`FrameScanner`]: the h2 crate discards ORIGIN frames, the harness wants to see them.
struct Tapped<S> {
    inner: S,
    scanner: Arc<Mutex<FrameScanner>>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tapped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let this = &*self;
            this.scanner
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .feed(&buf.filled()[before..]);
        }
        polled
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

/// An h2 error in words, with the TLS alert behind it where there is one.
fn describe(error: &h2::Error) -> String {
    match error
        .get_io()
        .and_then(|io| io.get_ref())
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::AlertReceived(alert)) => format!("TLS alert {alert:?}"),
        _ => error.to_string(),
    }
}

/// What a request's error says; `goaway` is the code of a GOAWAY the tap saw, which the h2
/// crate reports as an I/O error when the target closes the connection right after it.
fn classify(error: &h2::Error, goaway: Option<u32>) -> ExchangeOutcome {
    let ended_with = |code: u32| ExchangeOutcome::ConnectionError {
        code: code.into(),
        name: format!("{:?}", h2::Reason::from(code)),
    };
    let goaway_error = goaway.filter(|code| *code != 0);
    match (error.reason(), goaway_error) {
        (Some(reason), _) if error.is_reset() => ExchangeOutcome::StreamReset {
            code: u32::from(reason).into(),
            name: format!("{reason:?}"),
        },
        (Some(reason), _) if error.is_go_away() && reason != h2::Reason::NO_ERROR => {
            ended_with(reason.into())
        }
        (Some(reason), _) if error.is_go_away() => ExchangeOutcome::ConnectionClosed {
            detail: format!("GOAWAY {reason:?}"),
        },
        (_, Some(code)) if error.is_io() || error.is_remote() => ended_with(code),
        _ if error.is_io() => ExchangeOutcome::ConnectionClosed {
            detail: error.to_string(),
        },
        // The h2 crate found the target breaking the protocol.
        _ if error.is_library() => ExchangeOutcome::Unreadable {
            detail: format!("HTTP/2: {error}"),
        },
        _ if error.is_remote() => ExchangeOutcome::ConnectionClosed {
            detail: error.to_string(),
        },
        _ => ExchangeOutcome::NotSent {
            detail: format!("the HTTP/2 client refused the request: {error}"),
        },
    }
}
