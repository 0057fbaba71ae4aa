//! What the harness saw on the wire, as plain data: per-connection facts, per-request outcomes,
//! and the transcript attached to every verdict. Produced by the runner, read by `check` and the
//! reporters; nothing here performs I/O.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything observed during one case.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Observations {
    pub connections: Vec<ConnectionRecord>,
    pub exchanges: Vec<Exchange>,
    /// What misdirect's mock upstreams saw (gateway scenarios).
    pub upstream_requests: Vec<UpstreamRequest>,
    /// What the embedded target saw as the origin of a client under test (client scenarios).
    pub served: Vec<ServedRequest>,
    /// How a client under test run as a command ended, where one was.
    pub command: Option<CommandOutcome>,
}

/// How a command run as the client under test ended: what to show when it sent nothing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CommandOutcome {
    /// The exit code; `None` when it was killed (by the deadline, say) or could not start.
    pub status: Option<i32>,
    /// The end of what it wrote to stderr.
    pub stderr: String,
}

impl fmt::Display for CommandOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(code) => write!(f, "the command exited with {code}")?,
            None => write!(f, "the command was stopped or did not start")?,
        }
        let stderr = self.stderr.trim();
        if stderr.is_empty() {
            write!(f, " and wrote nothing to stderr")
        } else {
            write!(f, "; stderr: {stderr}")
        }
    }
}

impl Observations {
    pub fn connection(&self, name: &str) -> Option<&ConnectionRecord> {
        self.connections.iter().find(|record| record.name == name)
    }
}

impl ConnectionRecord {
    /// Why the certificate presented on this connection disqualifies it, if it does: it does not
    /// cover the SNI sent. Every SNI a scenario sends names a role the target serves, so that
    /// is a setup mistake, and what the target answers on such a connection proves nothing.
    pub fn certificate_mismatch(&self) -> Option<String> {
        let ConnectionResult::Established(established) = &self.result else {
            return None;
        };
        let sni = self.sni.as_deref()?;
        if established
            .peer_sans
            .iter()
            .any(|san| crate::deployment::san_covers(san, sni))
        {
            return None;
        }
        Some(format!(
            "the certificate presented for SNI {sni} covers only [{}]: the target is set up wrong for that name, so what it answers on this connection proves nothing",
            established.peer_sans.join(", ")
        ))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectionRecord {
    pub name: String,
    pub sni: Option<String>,
    /// The earlier connection whose TLS session this one was asked to resume.
    pub resume_source: Option<String>,
    /// Whether a session ticket from `resume_source` was offered in the ClientHello.
    pub resumption_offered: bool,
    pub result: ConnectionResult,
    /// ORIGIN frames the target sent on this connection (HTTP/2), as of the end of the case.
    pub origin_frames: Vec<crate::wire::h2::OriginFrame>,
}

#[cfg(test)]
impl ConnectionRecord {
    /// A TLS 1.3 connection `main` with SNI a.test, established over h2 with a certificate for
    /// `sans`, for tests.
    pub(crate) fn main_with(sans: &[&str]) -> Self {
        Self {
            name: "main".into(),
            sni: Some("a.test".into()),
            resume_source: None,
            resumption_offered: false,
            origin_frames: Vec::new(),
            result: ConnectionResult::Established(Established {
                alpn: Some("h2".into()),
                tls_version: "TLSv1.3".into(),
                peer_sans: sans.iter().map(|san| (*san).to_owned()).collect(),
                resumed: false,
            }),
        }
    }
}

#[cfg(test)]
impl Exchange {
    /// A GET for `authority` on connection `main`, the first request of step `step`, for tests.
    pub(crate) fn on_main(step: usize, authority: &str, outcome: ExchangeOutcome) -> Self {
        Self {
            step,
            request: 0,
            round: 0,
            connection: "main".into(),
            method: "GET".into(),
            authority: authority.into(),
            host: None,
            request_id: None,
            outcome,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConnectionResult {
    Established(Established),
    /// The target refused the handshake in words (a TLS alert, a QUIC close): an observation
    /// about it.
    Refused {
        detail: String,
    },
    /// The harness could not get a usable connection (unreachable, untrusted certificate, a
    /// reset or garbage during the handshake): it could not test.
    Failed {
        detail: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Established {
    pub alpn: Option<String>,
    pub tls_version: String,
    /// DNS names and IP addresses in the subjectAltName of the certificate the target presented.
    pub peer_sans: Vec<String>,
    pub resumed: bool,
}

/// One request and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// Index of the scenario step, of the request within it, and of the round.
    pub step: usize,
    pub request: usize,
    pub round: u32,
    pub connection: String,
    pub method: String,
    /// `:authority` (h2) or the authority of the request target / `Host` (h1), as sent.
    pub authority: String,
    /// A separate `Host` header, as sent.
    pub host: Option<String>,
    /// The ID the harness put on the request for upstreams to record (gateway scenarios).
    pub request_id: Option<String>,
    pub outcome: ExchangeOutcome,
}

/// What became of one request. Only a well-formed answer from the target counts as a refusal:
/// an HTTP status, a stream reset or GOAWAY it sent with its code, a TLS alert or a QUIC close.
/// Whatever the harness's own client decided (a protocol violation it detected, a limit it hit,
/// a connection that vanished without a word) is no observation of a refusal, because a broken
/// or hostile target produces exactly that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExchangeOutcome {
    Response(Response),
    /// HTTP/2 RST_STREAM or HTTP/3 RESET_STREAM from the target, with its error code.
    StreamReset {
        code: u64,
        name: String,
    },
    /// The target ended the connection with an error code after the request was sent and
    /// before a response arrived (HTTP/2 GOAWAY, QUIC CONNECTION_CLOSE): RFC 9113 §5.4.1 lets an
    /// endpoint treat a stream error as a connection error.
    ConnectionError {
        code: u64,
        name: String,
    },
    /// The target closed the connection in its own words after the request was sent and before
    /// a response arrived: a GOAWAY without an error, a TLS alert, TLS close_notify.
    ConnectionClosed {
        detail: String,
    },
    /// The connection vanished after the request without a word from the target: a TCP reset,
    /// or the end of the stream without TLS close_notify. A crashing target does the same.
    Dropped {
        detail: String,
    },
    /// The target had already closed the connection (HTTP/2 GOAWAY), so the request could not
    /// be sent on it: the connection was unusable, but this request was not refused as such.
    Unsendable {
        detail: String,
    },
    /// The target broke the protocol, or went past a limit the harness sets to stay bounded:
    /// what it sent is no answer the harness can read. The detail is a sentence that says what
    /// the target did ("the target violated HTTP/2 framing: …").
    Violation {
        detail: String,
    },
    /// The request could not be sent because the target refused its connection's handshake
    /// with a TLS alert or a QUIC close.
    HandshakeRefused {
        detail: String,
    },
    /// No response within the deadline.
    TimedOut {
        after: Duration,
    },
    /// The harness could not send the request (its connection failed to open, or an I/O error
    /// that says nothing about the target).
    NotSent {
        detail: String,
    },
}

impl ExchangeOutcome {
    /// Whether the target declined to produce content for this request: a 4xx/5xx, a reset or
    /// GOAWAY, a closing TLS alert or a refused handshake. `None` when the outcome says nothing
    /// the target decided about this request (timeout, not sent, unsendable, a violation, a
    /// dropped connection, a status outside 200–599).
    pub fn refused(&self) -> Option<bool> {
        match self {
            Self::Response(response) => match response.status {
                200..=399 => Some(false),
                400..=599 => Some(true),
                _ => None,
            },
            Self::StreamReset { .. }
            | Self::ConnectionError { .. }
            | Self::ConnectionClosed { .. }
            | Self::HandshakeRefused { .. } => Some(true),
            Self::Dropped { .. }
            | Self::Unsendable { .. }
            | Self::Violation { .. }
            | Self::TimedOut { .. }
            | Self::NotSent { .. } => None,
        }
    }

    /// Whether the target served content with a name: a 2xx that a tenant signed.
    pub fn served_by_a_tenant(&self) -> bool {
        matches!(self, Self::Response(response) if (200..300).contains(&response.status) && response.tenant.is_some())
    }
}

impl fmt::Display for ExchangeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Response(response) => write!(f, "{response}"),
            Self::StreamReset { code, name } => write!(f, "stream reset {name} (0x{code:x})"),
            Self::ConnectionError { code, name } => {
                write!(f, "connection ended with error {name} (0x{code:x})")
            }
            Self::ConnectionClosed { detail } => {
                write!(f, "connection closed before a response ({detail})")
            }
            Self::Dropped { detail } => write!(
                f,
                "the connection was dropped without an answer ({detail}); that is no refusal"
            ),
            Self::HandshakeRefused { detail } => write!(f, "handshake refused ({detail})"),
            Self::Unsendable { detail } => {
                write!(
                    f,
                    "not sent: the target had closed the connection ({detail})"
                )
            }
            Self::Violation { detail } => f.write_str(detail),
            Self::TimedOut { after } => write!(f, "no response within {} ms", after.as_millis()),
            Self::NotSent { detail } => write!(f, "not sent ({detail})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Response {
    pub status: u16,
    /// The tenant that named itself (header or `tenant=` in the body), if any.
    pub tenant: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    pub date: Option<String>,
    pub alt_svc: Option<String>,
    /// A stream reset (its code) that followed the response head.
    pub reset_after: Option<u64>,
    /// The first bytes of the body, for the transcript.
    pub body_excerpt: String,
    /// What identifies it when nobody says who sent it (`misdirect audit`).
    pub identity: Identity,
}

/// What identifies a response when nobody says who sent it, as on a live edge: the headers that
/// tend to differ between sites, and a digest of the body as read.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Identity {
    /// Those of [`Identity::HEADERS`] the response has: lower-case names, values cut to 256
    /// characters.
    pub headers: Vec<(String, String)>,
    /// FNV-1a over the body: enough to tell two bodies apart, no cryptography needed.
    pub body_digest: u64,
    pub body_length: usize,
}

impl Identity {
    /// The headers that identify a site rather than one response.
    pub const HEADERS: [&'static str; 4] = [
        "server",
        "content-type",
        "location",
        "content-security-policy",
    ];

    pub fn new(headers: Vec<(String, String)>, body: &[u8]) -> Self {
        Self {
            headers,
            body_digest: body.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
                (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
            }),
            body_length: body.len(),
        }
    }

    /// The value of one of [`Identity::HEADERS`].
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }
}

#[cfg(test)]
impl Response {
    /// A bare response with this status from this tenant, for tests.
    pub(crate) fn named(status: u16, tenant: Option<&str>) -> Self {
        Self {
            status,
            tenant: tenant.map(str::to_owned),
            cache_control: None,
            expires: None,
            date: None,
            alt_svc: None,
            reset_after: None,
            body_excerpt: String::new(),
            identity: Identity::default(),
        }
    }
}

impl Response {
    /// The HTTP/3 alternative this response advertises (RFC 7838 §3), as its host (empty for
    /// the origin's own host) and port.
    pub fn h3_alternative(&self) -> Option<(String, u16)> {
        self.alt_svc.as_deref()?.split(',').find_map(|entry| {
            let (protocol, rest) = entry.split_once('=')?;
            if protocol.trim() != "h3" {
                return None;
            }
            let authority = rest.split(';').next()?.trim().trim_matches('"');
            let (host, port) = authority.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?))
        })
    }

    /// The explicit freshness that would let a cache store and replay this response, if any
    /// (RFC 9111 §3, §4.2.1; RFC 9110 Appendix B.3): `max-age` or `s-maxage` above zero, `public`
    /// (which allows heuristic freshness), or an `Expires` later than `Date`. `no-store` and
    /// `no-cache` rule out replay without revalidation, so they clear it.
    pub fn explicit_freshness(&self) -> Option<String> {
        let cache_control = self.cache_control.as_deref().unwrap_or("");
        let directives: Vec<(String, Option<&str>)> = cache_control
            .split(',')
            .filter_map(|directive| {
                let mut parts = directive.splitn(2, '=');
                let name = parts.next()?.trim().to_ascii_lowercase();
                let value = parts.next().map(|value| value.trim().trim_matches('"'));
                (!name.is_empty()).then_some((name, value))
            })
            .collect();
        let has = |wanted: &str| directives.iter().any(|(name, _)| name == wanted);
        if has("no-store") || has("no-cache") {
            return None;
        }
        let positive = |wanted: &str| {
            directives
                .iter()
                .filter(|(name, _)| name == wanted)
                .filter_map(|(_, value)| value.and_then(|value| value.parse::<u64>().ok()))
                .any(|seconds| seconds > 0)
        };
        if positive("max-age") || positive("s-maxage") || has("public") {
            return Some(format!("Cache-Control: {cache_control}"));
        }
        if has("max-age") || has("s-maxage") {
            // An explicit lifetime of zero overrides Expires.
            return None;
        }
        let expires = self.expires.as_deref()?;
        let date = httpdate::parse_http_date(self.date.as_deref()?).ok()?;
        // An Expires that does not parse means "already expired" (RFC 9111 §5.3).
        let until = httpdate::parse_http_date(expires).ok()?;
        (until > date).then(|| format!("Expires: {expires} later than Date"))
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        match &self.tenant {
            Some(tenant) => write!(f, " from tenant {tenant}"),
            None => f.write_str(" (no tenant named)"),
        }
    }
}

/// What the embedded target saw of one request, for judging a client under test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServedRequest {
    /// Which connection carried it, numbered in the order they were accepted.
    pub connection: u64,
    pub sni: Option<String>,
    /// The names the certificate of that connection covers.
    pub certificate: Vec<String>,
    pub method: String,
    /// `:authority` (HTTP/2, HTTP/3) or the authority of an absolute-form target (HTTP/1.1),
    /// as sent.
    pub authority: Option<String>,
    /// Every `Host` header field, as sent.
    pub host: Vec<String>,
    pub path: String,
    pub body: Vec<u8>,
    pub status: u16,
    /// The HTTP version the client spoke.
    pub protocol: crate::protocol::Protocol,
}

/// The per-case log of what was sent and received, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    pub events: Vec<Event>,
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for event in &self.events {
            writeln!(f, "{event}")?;
        }
        Ok(())
    }
}

/// A duration as seconds (a float), the way the JSON report writes every time.
pub(crate) fn seconds<S: serde::Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(duration.as_secs_f64())
}

/// A duration written as seconds, read back (the JSON report, merged).
pub(crate) fn from_seconds<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    let seconds = f64::deserialize(deserializer)?;
    Duration::try_from_secs_f64(seconds).map_err(serde::de::Error::custom)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Time since the case started.
    #[serde(
        rename = "at_seconds",
        serialize_with = "seconds",
        deserialize_with = "from_seconds"
    )]
    pub at: Duration,
    pub connection: String,
    pub what: String,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>9.3} ms  [{}] {}",
            self.at.as_secs_f64() * 1000.0,
            self.connection,
            self.what
        )
    }
}

/// What one upstream saw of one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpstreamRequest {
    /// The tenant whose upstream it reached.
    pub upstream: String,
    /// Whether the gateway's connection to the upstream was TLS.
    pub tls: bool,
    /// The SNI of the gateway's connection to the upstream.
    pub sni: Option<String>,
    /// The ALPN protocol of that connection.
    pub alpn: Option<String>,
    pub request_id: Option<String>,
    pub method: String,
    pub host: Option<String>,
    pub path: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "Wed, 25 Nov 2026 16:00:00 GMT";
    const LATER: &str = "Sun, 01 Dec 2030 16:00:00 GMT";

    fn response(cache_control: Option<&str>, expires: Option<&str>) -> Response {
        Response {
            cache_control: cache_control.map(str::to_owned),
            expires: expires.map(str::to_owned),
            date: Some(DATE.to_owned()),
            ..Response::named(421, None)
        }
    }

    fn fresh(cache_control: Option<&str>, expires: Option<&str>) -> bool {
        response(cache_control, expires)
            .explicit_freshness()
            .is_some()
    }

    #[test]
    fn explicit_freshness_is_recognised() {
        assert!(fresh(Some("Max-Age=60"), None));
        assert!(fresh(Some("s-maxage=5, private"), None));
        assert!(fresh(Some("public"), None));
        assert!(fresh(None, Some(LATER)));
    }

    #[test]
    fn absent_or_cleared_freshness_is_not_flagged() {
        assert!(!fresh(None, None));
        assert!(!fresh(Some("no-store"), None));
        assert!(!fresh(Some("public, no-store"), None));
        assert!(!fresh(Some("no-cache, max-age=60"), None));
        assert!(!fresh(Some("max-age=0"), None));
        assert!(!fresh(None, Some("0")));
        assert!(!fresh(None, Some("Thu, 01 Jan 1970 00:00:01 GMT")));
        assert!(!fresh(Some("max-age=0"), Some(LATER)));
    }

    #[test]
    fn h3_alternatives_are_parsed() {
        let advertised = |value: &str| Response {
            alt_svc: Some(value.to_owned()),
            ..response(None, None)
        };
        assert_eq!(
            advertised(r#"h3=":4433"; ma=86400"#).h3_alternative(),
            Some((String::new(), 4433))
        );
        assert_eq!(
            advertised(r#"h3-29=":1", h3="alt.test:8443""#).h3_alternative(),
            Some(("alt.test".to_owned(), 8443))
        );
        assert_eq!(advertised(r#"h2=":443""#).h3_alternative(), None);
        assert_eq!(advertised("clear").h3_alternative(), None);
    }

    #[test]
    fn refusals_and_missing_observations_are_told_apart() {
        assert_eq!(
            ExchangeOutcome::Response(response(None, None)).refused(),
            Some(true)
        );
        let served = Response {
            status: 200,
            ..response(None, None)
        };
        assert_eq!(ExchangeOutcome::Response(served).refused(), Some(false));
        let strange = Response {
            status: 999,
            ..response(None, None)
        };
        assert_eq!(ExchangeOutcome::Response(strange).refused(), None);
        let gone = ExchangeOutcome::Unsendable {
            detail: "GOAWAY".into(),
        };
        assert_eq!(gone.refused(), None);
        let timeout = ExchangeOutcome::TimedOut {
            after: Duration::from_secs(1),
        };
        assert_eq!(timeout.refused(), None);
    }

    #[test]
    fn only_the_targets_own_words_are_a_refusal() {
        let said = [
            ExchangeOutcome::StreamReset {
                code: 0x7,
                name: "REFUSED_STREAM".into(),
            },
            ExchangeOutcome::ConnectionError {
                code: 0x1,
                name: "GOAWAY PROTOCOL_ERROR".into(),
            },
            ExchangeOutcome::ConnectionClosed {
                detail: "TLS alert CertificateRequired".into(),
            },
            ExchangeOutcome::HandshakeRefused {
                detail: "TLS alert HandshakeFailure".into(),
            },
        ];
        for outcome in said {
            assert_eq!(outcome.refused(), Some(true), "{outcome}");
        }
        let unsaid = [
            ExchangeOutcome::Dropped {
                detail: "connection reset by peer".into(),
            },
            ExchangeOutcome::Violation {
                detail: "the target violated HTTP/2 framing: too many CONTINUATION frames".into(),
            },
        ];
        for outcome in unsaid {
            assert_eq!(outcome.refused(), None, "{outcome}");
        }
    }
}
