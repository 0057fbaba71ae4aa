//! HTTP/3 over QUIC with quinn and the h3 crate: the SNI is the `server_name` given to quinn
//! (an IP address sends none), `:authority` comes from the request URI.
//!
//! A server may stop a request stream early (STOP_SENDING) once it has what it needs; that is
//! legitimate, so a failed `finish` is ignored and the response is still read.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Buf, Bytes};
use h3::error::StreamError;
use quinn::crypto::rustls::{HandshakeData, QuicClientConfig};
use rustls_pki_types::CertificateDer;
use tokio::task::JoinHandle;

use super::{ConnectError, ResponseFields, WireRequest, tls};
use misdirect_core::observe::{Established, ExchangeOutcome};
use misdirect_core::wire;
use misdirect_core::wire::h2::OriginFrame;

const MAX_BODY: usize = 1024 * 1024;
/// The TLS alert a server sends when it shares no ALPN protocol with the client (RFC 7301).
const NO_APPLICATION_PROTOCOL: u8 = 120;

type Sender = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;

pub struct Http3Connection {
    connection: quinn::Connection,
    /// What the server's control stream said (ORIGIN frames, SETTINGS seen).
    control: Arc<ControlSeen>,
    sender: Sender,
    driver: JoinHandle<()>,
    /// Kept so that the UDP socket lives as long as the connection.
    _endpoint: quinn::Endpoint,
}

impl std::fmt::Debug for Http3Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http3Connection")
            .field("remote", &self.connection.remote_address())
            .finish_non_exhaustive()
    }
}

impl Drop for Http3Connection {
    fn drop(&mut self) {
        self.driver.abort();
        self.connection
            .close(quinn::VarInt::from_u32(0x100), b"done");
    }
}

impl Http3Connection {
    /// Runs the QUIC handshake with `config` (ALPN h3) and sets up HTTP/3.
    pub(super) async fn connect(
        config: rustls::ClientConfig,
        address: SocketAddr,
        sni: Option<&str>,
        endpoints: &crate::quic_endpoints::ClientEndpoints,
    ) -> Result<(Self, Established), ConnectError> {
        let quic = QuicClientConfig::try_from(config).map_err(|error| {
            ConnectError::Failed(format!("QUIC cannot use the TLS configuration: {error}"))
        })?;
        let local: IpAddr = match (address.ip().is_loopback(), address) {
            (true, _) => address.ip(),
            (false, SocketAddr::V4(_)) => Ipv4Addr::UNSPECIFIED.into(),
            (false, SocketAddr::V6(_)) => Ipv6Addr::UNSPECIFIED.into(),
        };
        let endpoint = endpoints
            .bound_to(local)
            .map_err(|error| ConnectError::Failed(format!("cannot open a UDP socket: {error}")))?;
        // quinn sends no SNI when the server name is an IP address.
        let server_name = sni.map_or_else(|| address.ip().to_string(), str::to_owned);
        let connecting = endpoint
            .connect_with(
                quinn::ClientConfig::new(Arc::new(quic)),
                address,
                &server_name,
            )
            .map_err(|error| {
                ConnectError::Failed(format!("cannot start a QUIC connection: {error}"))
            })?;
        let connection = connecting
            .await
            .map_err(|error| classify_handshake(&error))?;
        let established = describe(&connection);
        if established.alpn.as_deref() != Some("h3") {
            return Err(ConnectError::Unsupported(format!(
                "the target negotiated ALPN {} instead of h3",
                established.alpn.as_deref().unwrap_or("(none)")
            )));
        }
        let control = Arc::new(ControlSeen::default());
        let tapped = TappedQuic {
            inner: h3_quinn::Connection::new(connection.clone()),
            control: Arc::clone(&control),
        };
        let (mut driver, sender) = h3::client::new(tapped).await.map_err(|error| {
            let detail = format!("HTTP/3 setup failed: {error}");
            match connection.close_reason() {
                Some(
                    quinn::ConnectionError::ApplicationClosed(_)
                    | quinn::ConnectionError::ConnectionClosed(_),
                ) => ConnectError::Refused(detail),
                _ => ConnectError::Failed(detail),
            }
        })?;
        // The driver runs the control streams; requests see its failures as their own errors.
        let driver = tokio::spawn(async move {
            let _ = std::future::poll_fn(|cx| driver.poll_close(cx)).await;
        });
        Ok((
            Self {
                connection,
                control,
                sender,
                driver,
                _endpoint: endpoint,
            },
            established,
        ))
    }

    /// The ORIGIN frames the server has sent so far.
    pub(super) fn origin_frames(&self) -> Vec<OriginFrame> {
        self.control
            .origins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits (up to `deadline`) until the server's control stream has been read up to its
    /// SETTINGS, so that an ORIGIN frame sent with them is known before the connection is
    /// reused for another origin.
    pub(super) async fn control_read(&self, deadline: Duration) {
        let wait = async {
            loop {
                let changed = self.control.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if self
                    .control
                    .settings
                    .load(std::sync::atomic::Ordering::Acquire)
                {
                    return;
                }
                changed.await;
            }
        };
        let _ = tokio::time::timeout(deadline, wait).await;
    }

    pub(super) fn sender(&self) -> Http3Sender {
        Http3Sender {
            sender: self.sender.clone(),
            connection: self.connection.clone(),
        }
    }
}

/// A cloneable handle that sends requests on one HTTP/3 connection.
#[derive(Clone)]
pub struct Http3Sender {
    sender: Sender,
    /// For requests the h3 crate will not send, written on a stream of their own.
    connection: quinn::Connection,
}

impl std::fmt::Debug for Http3Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Http3Sender")
    }
}

impl Http3Sender {
    pub async fn send(self, request: &WireRequest) -> ExchangeOutcome {
        match self.exchange(request).await {
            Ok(outcome) | Err(outcome) => outcome,
        }
    }

    async fn exchange(mut self, request: &WireRequest) -> Result<ExchangeOutcome, ExchangeOutcome> {
        if request.needs_own_framing()
            || request
                .host
                .as_ref()
                .is_some_and(|host| *host != request.authority)
        {
            // The h3 crate closes the whole connection rather than send such a request.
            return Ok(raw_exchange(&self.connection, request).await);
        }
        let head = request
            .head(http::Version::HTTP_3)
            .map_err(|detail| ExchangeOutcome::NotSent { detail })?;
        let mut stream = self
            .sender
            .send_request(head)
            .await
            .map_err(|error| match error {
                StreamError::RemoteClosing { .. } | StreamError::ConnectionError { .. } => {
                    ExchangeOutcome::Unsendable {
                        detail: error.to_string(),
                    }
                }
                other => classify(&other),
            })?;
        if let Some(body) = &request.body {
            let _ = stream.send_data(body.clone()).await;
        }
        // A server may already have stopped the stream (STOP_SENDING): the response still counts.
        let _ = stream.finish().await;
        let response = stream
            .recv_response()
            .await
            .map_err(|error| classify(&error))?;
        let status = response.status().as_u16();
        let fields = ResponseFields::from_headers(response.headers());
        let mut bytes = Vec::new();
        let mut reset_after = None;
        // Once the head is in, the response counts; a body cut short only shortens the excerpt.
        loop {
            match stream.recv_data().await {
                Ok(Some(mut chunk)) => {
                    bytes.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
                    if bytes.len() >= MAX_BODY {
                        // Enough read; tell the target to stop rather than wait for the rest.
                        stream.stop_sending(h3::error::Code::H3_REQUEST_CANCELLED);
                        break;
                    }
                }
                Ok(None) => break,
                Err(StreamError::RemoteTerminate { code, .. }) => {
                    reset_after = Some(code.value());
                    break;
                }
                Err(_) => break,
            }
        }
        let mut response = fields.into_response(status, &bytes);
        response.reset_after = reset_after;
        Ok(ExchangeOutcome::Response(response))
    }
}

/// Sends `request` exactly as given on a new request stream, with the frame layer of
/// [`misdirect_core::wire::h3`], and reads the response or the reset.
async fn raw_exchange(connection: &quinn::Connection, request: &WireRequest) -> ExchangeOutcome {
    let (mut send, mut recv) = match connection.open_bi().await {
        Ok(streams) => streams,
        Err(error) => {
            return ExchangeOutcome::Unsendable {
                detail: error.to_string(),
            };
        }
    };
    let mut bytes = wire::h3::frame(
        wire::h3::FRAME_HEADERS,
        &wire::h3::encode_field_section(&request.fields()),
    );
    if let Some(body) = &request.body {
        bytes.extend_from_slice(&wire::h3::frame(wire::h3::FRAME_DATA, body));
    }
    // A target that stops the stream early still answers on the other half.
    if send.write_all(&bytes).await.is_ok() {
        let _ = send.finish();
    }
    let mut buffer = Vec::new();
    let mut response: Option<(u16, ResponseFields)> = None;
    let mut body = Vec::new();
    let mut reset = None;
    while body.len() < MAX_BODY {
        while let Some((kind, payload, used)) = wire::h3::parse_frame(&buffer) {
            match kind {
                wire::h3::FRAME_HEADERS if response.is_none() => {
                    let fields = match wire::h3::decode_field_section(payload) {
                        Ok(fields) => fields,
                        Err(error) => {
                            return ExchangeOutcome::Violation {
                                detail: format!("the target violated HTTP/3: {error}"),
                            };
                        }
                    };
                    let field = |name: &str| {
                        fields
                            .iter()
                            .find(|(candidate, _)| candidate == name)
                            .map(|(_, value)| value.clone())
                    };
                    let status = field(":status")
                        .and_then(|status| status.parse().ok())
                        .unwrap_or(0);
                    // Interim responses precede the final one.
                    if !(100..200).contains(&status) {
                        response = Some((status, ResponseFields::from_lookup(field)));
                    }
                }
                wire::h3::FRAME_DATA => body.extend_from_slice(payload),
                // Trailers, unknown and reserved frame types are skipped (RFC 9114 §9).
                _ => {}
            }
            buffer.drain(..used);
        }
        if buffer.len() > MAX_BODY {
            return ExchangeOutcome::Violation {
                detail:
                    "the target sent an HTTP/3 frame larger than 1 MiB, past the harness's limit"
                        .to_owned(),
            };
        }
        let mut chunk = [0u8; 16 * 1024];
        match recv.read(&mut chunk).await {
            Ok(Some(read)) => buffer.extend_from_slice(&chunk[..read]),
            Ok(None) => break,
            Err(quinn::ReadError::Reset(code)) if response.is_none() => {
                let code = code.into_inner();
                return ExchangeOutcome::StreamReset {
                    code,
                    name: h3::error::Code::from(code).to_string(),
                };
            }
            Err(quinn::ReadError::Reset(code)) => {
                reset = Some(code.into_inner());
                break;
            }
            Err(_) if response.is_some() => break,
            Err(quinn::ReadError::ConnectionLost(
                lost @ (quinn::ConnectionError::ApplicationClosed(_)
                | quinn::ConnectionError::ConnectionClosed(_)),
            )) => {
                return ExchangeOutcome::ConnectionClosed {
                    detail: lost.to_string(),
                };
            }
            Err(quinn::ReadError::ConnectionLost(
                lost @ (quinn::ConnectionError::Reset | quinn::ConnectionError::TimedOut),
            )) => {
                return ExchangeOutcome::Dropped {
                    detail: lost.to_string(),
                };
            }
            Err(error) => {
                return ExchangeOutcome::Violation {
                    detail: format!("the target violated HTTP/3 or QUIC: {error}"),
                };
            }
        }
    }
    if body.len() >= MAX_BODY {
        // Enough read; tell the target to stop rather than wait for the rest.
        let _ = recv.stop(quinn::VarInt::from_u32(0x10c));
    }
    match response {
        Some((status, fields)) => {
            let mut response = fields.into_response(status, &body);
            response.reset_after = reset;
            ExchangeOutcome::Response(response)
        }
        None => ExchangeOutcome::Violation {
            detail: "the target violated HTTP/3: the request stream ended without a response"
                .to_owned(),
        },
    }
}

fn describe(connection: &quinn::Connection) -> Established {
    let alpn = connection
        .handshake_data()
        .and_then(|data| data.downcast::<HandshakeData>().ok())
        .and_then(|data| data.protocol)
        .map(|protocol| String::from_utf8_lossy(&protocol).into_owned());
    let peer_sans = connection
        .peer_identity()
        .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok())
        .and_then(|chain| chain.first().map(tls::subject_alt_names))
        .unwrap_or_default();
    Established {
        alpn,
        tls_version: "TLS 1.3 (QUIC)".to_owned(),
        peer_sans,
        // quinn does not report whether the handshake resumed a session.
        resumed: false,
    }
}

fn classify_handshake(error: &quinn::ConnectionError) -> ConnectError {
    use quinn::ConnectionError as E;
    match error {
        E::ConnectionClosed(close) => {
            let code = u64::from(close.error_code);
            // QUIC carries a TLS alert as CRYPTO_ERROR 0x100 + alert (RFC 9001 §4.8).
            match code
                .checked_sub(0x100)
                .and_then(|alert| u8::try_from(alert).ok())
            {
                Some(NO_APPLICATION_PROTOCOL) => {
                    ConnectError::Unsupported("the target refused the h3 ALPN protocol".to_owned())
                }
                Some(alert) => ConnectError::Refused(format!("TLS alert {alert} ({close})")),
                None => ConnectError::Refused(close.to_string()),
            }
        }
        E::ApplicationClosed(close) => ConnectError::Refused(close.to_string()),
        // rustls itself refuses a server that picks no offered ALPN protocol.
        E::TransportError(error)
            if error.code == quinn::TransportErrorCode::crypto(NO_APPLICATION_PROTOCOL) =>
        {
            ConnectError::Unsupported("the target offered no h3 ALPN protocol".to_owned())
        }
        E::VersionMismatch => {
            ConnectError::Unsupported("the target speaks no QUIC version we offer".to_owned())
        }
        E::Reset => ConnectError::Failed(
            "the target sent a stateless reset during the QUIC handshake; that is no refusal"
                .to_owned(),
        ),
        E::TransportError(error) => ConnectError::Failed(format!(
            "the target violated QUIC during the handshake: {error}"
        )),
        E::TimedOut => {
            ConnectError::Failed("no QUIC handshake: the target did not answer over UDP".to_owned())
        }
        other => ConnectError::Failed(format!("QUIC handshake failed: {other}")),
    }
}

fn classify(error: &StreamError) -> ExchangeOutcome {
    match error {
        StreamError::RemoteTerminate { code, .. } => ExchangeOutcome::StreamReset {
            code: code.value(),
            name: code.to_string(),
        },
        StreamError::RemoteClosing { .. } => ExchangeOutcome::ConnectionClosed {
            detail: "GOAWAY".to_owned(),
        },
        // Only a close by the target says something about it; h3 0.0.8 (pinned) tells the two
        // apart only in its message ("Connection error: Remote error: …" / "Local error: …").
        StreamError::ConnectionError { .. }
            if error
                .to_string()
                .starts_with("Connection error: Remote error") =>
        {
            ExchangeOutcome::ConnectionClosed {
                detail: error.to_string(),
            }
        }
        StreamError::ConnectionError { .. } => ExchangeOutcome::Violation {
            detail: format!(
                "the target violated HTTP/3, and the harness's client closed the connection: {error}"
            ),
        },
        StreamError::HeaderTooBig { .. } => ExchangeOutcome::Violation {
            detail: format!("the target sent a response head past the harness's limit: {error}"),
        },
        other => ExchangeOutcome::Violation {
            detail: format!("the target violated HTTP/3: {other}"),
        },
    }
}

/// The QUIC connection as the h3 crate sees it, with every unidirectional stream the server
/// opens also read by an [`ControlScanner`]: the h3 crate consumes the control stream and drops
/// ORIGIN frames (RFC 9412), the harness wants to see them.
struct TappedQuic {
    inner: h3_quinn::Connection,
    control: Arc<ControlSeen>,
}

/// What the tap learned from the server's control stream.
#[derive(Default)]
struct ControlSeen {
    origins: Mutex<Vec<OriginFrame>>,
    /// Set once the server's SETTINGS frame has been read.
    settings: std::sync::atomic::AtomicBool,
    changed: tokio::sync::Notify,
}

impl<B: Buf> h3::quic::OpenStreams<B> for TappedQuic {
    type BidiStream = <h3_quinn::Connection as h3::quic::OpenStreams<B>>::BidiStream;
    type SendStream = <h3_quinn::Connection as h3::quic::OpenStreams<B>>::SendStream;

    fn poll_open_bidi(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Self::BidiStream, h3::quic::StreamErrorIncoming>> {
        h3::quic::OpenStreams::<B>::poll_open_bidi(&mut self.inner, cx)
    }

    fn poll_open_send(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Self::SendStream, h3::quic::StreamErrorIncoming>> {
        h3::quic::OpenStreams::<B>::poll_open_send(&mut self.inner, cx)
    }

    fn close(&mut self, code: h3::error::Code, reason: &[u8]) {
        h3::quic::OpenStreams::<B>::close(&mut self.inner, code, reason);
    }
}

impl<B: Buf> h3::quic::Connection<B> for TappedQuic {
    type RecvStream = TappedRecv;
    type OpenStreams = h3_quinn::OpenStreams;

    fn poll_accept_recv(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Self::RecvStream, h3::quic::ConnectionErrorIncoming>> {
        h3::quic::Connection::<B>::poll_accept_recv(&mut self.inner, cx).map_ok(|inner| {
            TappedRecv {
                inner,
                scanner: ControlScanner::default(),
                control: Arc::clone(&self.control),
            }
        })
    }

    fn poll_accept_bidi(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Self::BidiStream, h3::quic::ConnectionErrorIncoming>> {
        h3::quic::Connection::<B>::poll_accept_bidi(&mut self.inner, cx)
    }

    fn opener(&self) -> Self::OpenStreams {
        h3::quic::Connection::<B>::opener(&self.inner)
    }
}

/// One unidirectional stream from the server, passed through to the h3 crate untouched.
struct TappedRecv {
    inner: h3_quinn::RecvStream,
    scanner: ControlScanner,
    control: Arc<ControlSeen>,
}

impl h3::quic::RecvStream for TappedRecv {
    type Buf = Bytes;

    fn poll_data(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Option<Self::Buf>, h3::quic::StreamErrorIncoming>> {
        let polled = self.inner.poll_data(cx);
        if let std::task::Poll::Ready(Ok(Some(bytes))) = &polled {
            let (settings, found) = self.scanner.feed(bytes);
            if !found.is_empty() {
                self.control
                    .origins
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(found);
            }
            if settings {
                self.control
                    .settings
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            self.control.changed.notify_waiters();
        }
        polled
    }

    fn stop_sending(&mut self, error_code: u64) {
        self.inner.stop_sending(error_code);
    }

    fn recv_id(&self) -> h3::quic::StreamId {
        self.inner.recv_id()
    }
}

/// Reads a unidirectional stream's type and, on the control stream, its frames, keeping the
/// ORIGIN frames (type 0x0c, RFC 9412 §2). Other streams are not looked into.
#[derive(Default)]
struct ControlScanner {
    buffer: Vec<u8>,
    /// `None` until the stream type is read; then whether this is the control stream.
    control: Option<bool>,
}

/// Most of a control stream the scanner holds at once; a larger frame is not an ORIGIN frame
/// the harness needs to read.
const MAX_CONTROL_BUFFER: usize = 64 * 1024;

impl ControlScanner {
    /// Feeds bytes; says whether SETTINGS went by, and returns the ORIGIN frames found.
    fn feed(&mut self, bytes: &[u8]) -> (bool, Vec<OriginFrame>) {
        if self.control == Some(false) {
            return (false, Vec::new());
        }
        self.buffer.extend_from_slice(bytes);
        if self.control.is_none() {
            let Some((kind, used)) = wire::h3::varint(&self.buffer) else {
                return (false, Vec::new());
            };
            self.control = Some(kind == wire::h3::STREAM_CONTROL);
            self.buffer.drain(..used);
            if kind != wire::h3::STREAM_CONTROL {
                self.buffer.clear();
                return (false, Vec::new());
            }
        }
        let mut found = Vec::new();
        let mut settings = false;
        while let Some((kind, payload, used)) = wire::h3::parse_frame(&self.buffer) {
            settings |= kind == wire::h3::FRAME_SETTINGS;
            if kind == wire::h3::FRAME_ORIGIN {
                found.push(OriginFrame {
                    stream: 0,
                    flags: 0,
                    origins: wire::h2::parse_origins(payload),
                });
            }
            self.buffer.drain(..used);
        }
        if self.buffer.len() > MAX_CONTROL_BUFFER {
            // A frame this large is skipped by no longer looking into the stream.
            self.control = Some(false);
            self.buffer.clear();
        }
        (settings, found)
    }
}
