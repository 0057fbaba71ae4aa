//! The harness's HTTP clients: one interface over HTTP/1.1, HTTP/2 and HTTP/3, with independent
//! control of SNI, ALPN, `:authority`, `Host` and the connection a request travels on.
//!
//! There is no pooling: the runner decides which connection carries which request, because
//! connection reuse is what is under test. Only `h1.rs`, `h2.rs` and `h3.rs` name protocol crate
//! types.

mod h1;
mod h2;
mod h3;
mod raw_h2;
pub mod tls;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls::HandshakeKind;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use misdirect_core::deployment::Role;
use misdirect_core::observe::{Established, ExchangeOutcome, Identity};
use misdirect_core::protocol::Protocol;
use misdirect_core::scenario::{Scheme, TargetForm, TlsVersion};
use tls::{ConnectionTickets, Credentials};

/// A request exactly as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRequest {
    pub method: String,
    /// `:scheme`, or the scheme of the absolute-form target (h1).
    pub scheme: Scheme,
    /// `:authority` (h2), or the authority in `Host` / the absolute-form target (h1); empty
    /// when the field is absent.
    pub authority: String,
    /// Whether that field is sent once, not at all, or twice.
    pub authority_field: AuthorityField,
    /// A separate `Host` header.
    pub host: Option<String>,
    pub form: TargetForm,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Bytes>,
}

/// How the authority field travels: once (possibly empty), not at all, or a second time with
/// another value (HTTP/2 and HTTP/3 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorityField {
    Once,
    Absent,
    Twice(String),
}

impl WireRequest {
    /// `GET https://{authority}{path}` in origin form, the authority field sent once, no
    /// headers of its own, no body: the request every other one varies.
    pub fn get(authority: String, path: &str) -> Self {
        Self {
            method: "GET".to_owned(),
            scheme: Scheme::Https,
            authority,
            authority_field: AuthorityField::Once,
            host: None,
            form: TargetForm::Origin,
            path: path.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Whether the h2 and h3 crates cannot send this request as it is: its authority field is
    /// absent or repeated, or no URI authority reads back as the value.
    pub fn needs_own_framing(&self) -> bool {
        self.authority_field != AuthorityField::Once
            || self
                .authority
                .parse::<http::uri::Authority>()
                .map_or(true, |parsed| parsed.as_str() != self.authority)
    }

    /// The request's HTTP/2 or HTTP/3 fields in order, pseudo-fields first, for the clients
    /// that write them by hand.
    pub fn fields(&self) -> Vec<(String, String)> {
        let mut fields = vec![
            (":method".to_owned(), self.method.clone()),
            (":scheme".to_owned(), self.scheme.key().to_owned()),
        ];
        if self.authority_field != AuthorityField::Absent {
            fields.push((":authority".to_owned(), self.authority.clone()));
        }
        if let AuthorityField::Twice(second) = &self.authority_field {
            fields.push((":authority".to_owned(), second.clone()));
        }
        fields.push((":path".to_owned(), self.path.clone()));
        if let Some(host) = &self.host {
            fields.push(("host".to_owned(), host.clone()));
        }
        fields.extend(self.headers.iter().cloned());
        let stated = self
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-length"));
        if let Some(body) = self.body.as_ref().filter(|_| !stated) {
            fields.push(("content-length".to_owned(), body.len().to_string()));
        }
        fields
    }

    /// The request head for the h2 and h3 crates: `:authority` and path in an absolute URI,
    /// plus any separate `Host` and extra headers; why not, when the crate's types reject it.
    pub fn head(&self, version: http::Version) -> Result<http::Request<()>, String> {
        let mut builder = http::Request::builder()
            .method(self.method.as_str())
            .uri(format!(
                "{}://{}{}",
                self.scheme.key(),
                self.authority,
                self.path
            ))
            .version(version);
        if let Some(host) = &self.host {
            builder = builder.header(http::header::HOST, host.as_str());
        }
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        // Clients such as curl and browsers state the length of a body they know; some servers
        // (lighttpd) refuse an HTTP/2 body without it, which would hide what they do with it.
        let stated = self
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-length"));
        if let Some(body) = self.body.as_ref().filter(|_| !stated) {
            builder = builder.header(http::header::CONTENT_LENGTH, body.len());
        }
        builder
            .body(())
            .map_err(|error| format!("cannot express the request in {version:?}: {error}"))
    }

    /// The HTTP/1.1 request target: the path, or `scheme://authority/path` in absolute form.
    pub fn request_target(&self) -> String {
        match self.form {
            TargetForm::Origin => self.path.clone(),
            TargetForm::Absolute => {
                format!("{}://{}{}", self.scheme.key(), self.authority, self.path)
            }
        }
    }

    /// The HTTP/1.1 `Host`: the authority, unless an absolute-form target travels with a
    /// separate `Host`; none for a request without an authority field.
    pub fn host_header(&self) -> Option<&str> {
        match (self.form, &self.host) {
            (TargetForm::Absolute, Some(host)) => Some(host),
            _ if self.authority_field == AuthorityField::Absent => None,
            _ => Some(&self.authority),
        }
    }
}

/// How to open one connection.
#[derive(Debug)]
pub struct ConnectRequest<'a> {
    pub address: SocketAddr,
    /// `None` sends no SNI.
    pub sni: Option<&'a str>,
    pub protocol: Protocol,
    /// Present the client certificate this mTLS tenant accepts.
    pub client_certificate: Option<Role>,
    pub tickets: Arc<ConnectionTickets>,
    /// The one TLS version to offer; `None` offers TLS 1.3 and 1.2.
    pub tls: Option<TlsVersion>,
    /// HTTP/2 only: drive the connection by hand, because it carries a request the h2 crate
    /// cannot send ([`WireRequest::needs_own_framing`]).
    pub own_framing: bool,
}

/// Why a connection could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// The target refused the handshake in words (a TLS alert, a GOAWAY, a QUIC close): an
    /// observation.
    Refused(String),
    /// The target does not speak the protocol (ALPN): the case does not apply.
    Unsupported(String),
    /// The target's certificate failed verification against what the harness trusts.
    Untrusted(String),
    /// The harness could not get a connection to test with: unreachable, untrusted, or the
    /// target dropped it or broke the protocol while setting it up.
    Failed(String),
}

/// An open connection of any protocol.
#[derive(Debug)]
pub enum Connection {
    Http1(Box<h1::Http1Connection>),
    Http2(h2::Http2Connection),
    /// HTTP/2 written by hand, one request at a time.
    Http2Raw(Box<raw_h2::RawHttp2Connection>),
    Http3(Box<h3::Http3Connection>),
}

impl Connection {
    /// Sends one request and waits for its outcome (no deadline here; the runner sets it).
    pub async fn send(&mut self, request: &WireRequest) -> ExchangeOutcome {
        match self.multiplexer() {
            Some(multiplexer) => multiplexer.send(request).await,
            None => match self {
                Self::Http1(connection) => connection.send(request).await,
                Self::Http2Raw(connection) => connection.send(request).await,
                // Invariant: only these two have no multiplexer.
                Self::Http2(_) | Self::Http3(_) => {
                    unreachable!("multiplexed protocols have a sender")
                }
            },
        }
    }

    /// The ORIGIN frames the target has sent on this connection (HTTP/2, or HTTP/3's control
    /// stream).
    pub fn origin_frames(&self) -> Vec<misdirect_core::wire::h2::OriginFrame> {
        match self {
            Self::Http2(connection) => connection.origin_frames(),
            Self::Http2Raw(connection) => connection.origin_frames(),
            Self::Http3(connection) => connection.origin_frames(),
            Self::Http1(_) => Vec::new(),
        }
    }

    /// Waits (briefly) until what the server sent beside the responses has been read: HTTP/3's
    /// control stream is independent of the request streams.
    pub async fn settle(&self, deadline: Duration) {
        if let Self::Http3(connection) = self {
            connection.control_read(deadline).await;
        }
    }

    /// The origins the target's ORIGIN frames (stream 0, no flags) list, or `None` before any
    /// such frame: then the Origin Set is not in use (RFC 8336 §2.3).
    pub fn origin_set(&self) -> Option<Vec<String>> {
        misdirect_core::wire::h2::origin_set(&self.origin_frames())
    }

    /// Why the connection can carry no further request (HTTP/1.1 after the target closed it).
    pub fn closed(&self) -> Option<&str> {
        match self {
            Self::Http1(connection) => connection.closed(),
            Self::Http2(_) | Self::Http2Raw(_) | Self::Http3(_) => None,
        }
    }

    /// A handle that sends requests concurrently, for protocols that multiplex (HTTP/2 written
    /// by hand sends one at a time).
    pub fn multiplexer(&self) -> Option<Multiplexer> {
        match self {
            Self::Http1(_) | Self::Http2Raw(_) => None,
            Self::Http2(connection) => Some(Multiplexer::Http2(connection.sender())),
            Self::Http3(connection) => Some(Multiplexer::Http3(connection.sender())),
        }
    }
}

/// A cloneable handle that sends requests on one multiplexed connection.
#[derive(Debug, Clone)]
pub enum Multiplexer {
    Http2(h2::Http2Sender),
    Http3(h3::Http3Sender),
}

impl Multiplexer {
    pub async fn send(self, request: &WireRequest) -> ExchangeOutcome {
        match self {
            Self::Http2(sender) => sender.send(request).await,
            Self::Http3(sender) => sender.send(request).await,
        }
    }
}

/// Opens a TCP connection, runs the TLS handshake with the requested SNI, ALPN, client
/// certificate and ticket, and sets up the protocol.
pub async fn connect(
    credentials: &Credentials,
    request: ConnectRequest<'_>,
    deadline: Duration,
) -> Result<(Connection, Established), ConnectError> {
    // Which part of setting the connection up a deadline cut short, for the reason.
    let phase = std::sync::Mutex::new("TLS handshake");
    let enter = |name: &'static str| {
        *phase
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = name;
    };
    let attempt = async {
        let config = credentials
            .client_config(
                request.protocol.alpn(),
                request.client_certificate,
                request.tickets.clone(),
                request.tls,
            )
            .map_err(|error| ConnectError::Failed(error.to_string()))?;
        if request.protocol == Protocol::Http3 {
            enter("QUIC handshake and HTTP/3 setup");
            let (connection, established) = h3::Http3Connection::connect(
                config,
                request.address,
                request.sni,
                &credentials.quic,
            )
            .await?;
            return Ok((Connection::Http3(Box::new(connection)), established));
        }
        let server_name = match request.sni {
            Some(name) => ServerName::try_from(name.to_owned())
                .map_err(|error| ConnectError::Failed(format!("invalid SNI `{name}`: {error}")))?,
            // rustls sends no SNI for an IP address.
            None => ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into()),
        };
        let tcp = TcpStream::connect(request.address).await.map_err(|error| {
            ConnectError::Failed(format!("cannot reach {}: {error}", request.address))
        })?;
        // Requests are small and latency matters more than throughput on loopback.
        let _ = tcp.set_nodelay(true);
        let tls = TlsConnector::from(Arc::new(config))
            .connect(server_name, tcp)
            .await
            .map_err(classify_handshake_error)?;
        let established = describe(&tls);
        let expected_alpn = String::from_utf8_lossy(request.protocol.alpn()).into_owned();
        // A server without ALPN speaks HTTP/1.1 (RFC 7301 §3.1 leaves the default to the
        // application, and HTTP/1.1 over TLS predates ALPN).
        let http1_by_default = request.protocol == Protocol::Http1 && established.alpn.is_none();
        if !http1_by_default && established.alpn.as_deref() != Some(expected_alpn.as_str()) {
            return Err(ConnectError::Unsupported(format!(
                "the target negotiated ALPN {} instead of {expected_alpn}",
                established.alpn.as_deref().unwrap_or("(none)")
            )));
        }
        enter("HTTP/2 setup (SETTINGS and a PING answered)");
        let connection = match request.protocol {
            Protocol::Http1 => Connection::Http1(Box::new(h1::Http1Connection::new(tls))),
            Protocol::Http2 | Protocol::Http3 if request.own_framing => {
                Connection::Http2Raw(Box::new(raw_h2::RawHttp2Connection::handshake(tls).await?))
            }
            Protocol::Http2 | Protocol::Http3 => {
                Connection::Http2(h2::Http2Connection::handshake(tls).await?)
            }
        };
        Ok((connection, established))
    };
    tokio::time::timeout(deadline, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(ConnectError::Failed(format!(
                "no {} within {} ms",
                phase
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                deadline.as_millis()
            )))
        })
}

fn describe(tls: &TlsStream<TcpStream>) -> Established {
    let (_, session) = tls.get_ref();
    Established {
        alpn: session
            .alpn_protocol()
            .map(|alpn| String::from_utf8_lossy(alpn).into_owned()),
        tls_version: match session.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2".to_owned(),
            other => format!("{other:?}"),
        },
        peer_sans: session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(tls::subject_alt_names)
            .unwrap_or_default(),
        resumed: session.handshake_kind() == Some(HandshakeKind::Resumed),
    }
}

fn classify_handshake_error(error: std::io::Error) -> ConnectError {
    use std::io::ErrorKind;
    if let Some(tls_error) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return match tls_error {
            rustls::Error::AlertReceived(alert) => {
                ConnectError::Refused(format!("TLS alert {alert:?}"))
            }
            rustls::Error::InvalidCertificate(reason) => ConnectError::Untrusted(format!(
                "the target's certificate is not trusted ({reason:?}); check the CA the harness trusts"
            )),
            other => ConnectError::Failed(format!(
                "the target violated TLS during the handshake: {other}"
            )),
        };
    }
    match error.kind() {
        ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe => {
            ConnectError::Failed(format!(
                "the target dropped the connection during the TLS handshake without an alert ({error}); that is no refusal"
            ))
        }
        _ => ConnectError::Failed(format!("TLS handshake failed: {error}")),
    }
}

/// Turns a read or write error on an established connection into an outcome: a TLS alert is the
/// target closing the connection in words; a reset or any other failure is a dropped connection.
fn closed_by(error: &std::io::Error) -> ExchangeOutcome {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::AlertReceived(alert)) => ExchangeOutcome::ConnectionClosed {
            detail: format!("TLS alert {alert:?}"),
        },
        Some(tls_error) => ExchangeOutcome::Violation {
            detail: format!("the target violated TLS: {tls_error}"),
        },
        None => ExchangeOutcome::Dropped {
            detail: error.to_string(),
        },
    }
}

/// How long, after a write failed, the clients wait to read what the target sent last (a
/// response or a TLS alert it sent before closing): long enough for bytes already on their way,
/// short enough not to matter where there are none.
const LAST_WORDS: Duration = Duration::from_millis(200);

/// Awaits an exchange for at most `deadline`; past it, the outcome is a timeout.
pub async fn bounded(
    deadline: Duration,
    exchange: impl Future<Output = ExchangeOutcome>,
) -> ExchangeOutcome {
    tokio::time::timeout(deadline, exchange)
        .await
        .unwrap_or(ExchangeOutcome::TimedOut { after: deadline })
}

/// The response fields a verdict can depend on, before the body is attached.
#[derive(Debug, Default)]
struct ResponseFields {
    tenant: Option<String>,
    cache_control: Option<String>,
    expires: Option<String>,
    date: Option<String>,
    alt_svc: Option<String>,
    /// Those of the identifying headers present, for the response's identity.
    identifying: Vec<(String, String)>,
}

impl ResponseFields {
    /// Collects the fields from a header map, as the h2 and h3 crates deliver it.
    fn from_headers(headers: &http::HeaderMap) -> Self {
        Self::from_lookup(|name| {
            headers
                .get(name)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        })
    }

    /// Collects the fields through a case-insensitive lookup by name, each cut to a size that
    /// its use needs (a tenant's name to 64 characters, the others to 1 KiB), so that what a
    /// target sends ends up in reports only as much as it matters.
    fn from_lookup(field: impl Fn(&str) -> Option<String>) -> Self {
        let cut =
            |name: &str, most: usize| field(name).map(|value| value.chars().take(most).collect());
        Self {
            tenant: cut(misdirect_core::deployment::TENANT_HEADER, 64),
            cache_control: cut("cache-control", 1024),
            expires: cut("expires", 1024),
            date: cut("date", 1024),
            alt_svc: cut("alt-svc", 1024),
            identifying: Identity::HEADERS
                .iter()
                .filter_map(|name| Some(((*name).to_owned(), cut(name, 256)?)))
                .collect(),
        }
    }

    /// The tenant comes from its header, or else from `tenant=<label>` anywhere in the body, so
    /// that servers that cannot add headers to every response can still say who answered.
    fn into_response(self, status: u16, body: &[u8]) -> misdirect_core::observe::Response {
        let text = String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
        let tenant = self.tenant.or_else(|| tenant_in(&text));
        misdirect_core::observe::Response {
            status,
            tenant,
            cache_control: self.cache_control,
            expires: self.expires,
            date: self.date,
            alt_svc: self.alt_svc,
            reset_after: None,
            body_excerpt: text.chars().take(160).collect(),
            identity: Identity::new(self.identifying, body),
        }
    }
}

/// The first `tenant=<label>` in a text, where `tenant` starts a word and the label is made of
/// ASCII letters, digits and `-`.
fn tenant_in(text: &str) -> Option<String> {
    text.match_indices("tenant=").find_map(|(at, marker)| {
        let starts_word = text[..at]
            .chars()
            .next_back()
            .is_none_or(|before| !before.is_ascii_alphanumeric() && before != '-' && before != '_');
        let label: String = text[at + marker.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        (starts_word && !label.is_empty()).then_some(label)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_found_in_markup() {
        assert_eq!(tenant_in("<p>tenant=alpha</p>"), Some("alpha".into()));
        assert_eq!(
            tenant_in("vhost: tenant=bravo-2 here"),
            Some("bravo-2".into())
        );
        assert_eq!(
            tenant_in("subtenant=x tenant=charlie"),
            Some("charlie".into())
        );
        assert_eq!(tenant_in("tenant= nobody"), None);
    }
}
