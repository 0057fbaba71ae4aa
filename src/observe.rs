//! What the harness saw on the wire, as plain data: per-connection facts, per-request outcomes,
//! and the transcript attached to every verdict. Produced by the runner, read by `check` and the
//! reporters; nothing here performs I/O.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// Everything observed during one case.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Observations {
    pub connections: Vec<ConnectionRecord>,
    pub exchanges: Vec<Exchange>,
}

impl Observations {
    pub fn connection(&self, name: &str) -> Option<&ConnectionRecord> {
        self.connections.iter().find(|record| record.name == name)
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
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConnectionResult {
    Established(Established),
    /// The target refused the handshake (a TLS alert or a reset): an observation about it.
    Refused {
        detail: String,
    },
    /// The harness could not get a usable connection (unreachable, untrusted certificate, no
    /// common ALPN): it could not test.
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
    pub client_certificate_sent: bool,
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
    pub outcome: ExchangeOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExchangeOutcome {
    Response(Response),
    /// HTTP/2 RST_STREAM (or a stream error) from the target.
    StreamReset {
        code: u32,
        name: String,
    },
    /// The connection ended (EOF, GOAWAY, TLS alert) before a response arrived.
    ConnectionClosed {
        detail: String,
    },
    /// The request could not be sent because its connection was refused at the handshake.
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
    /// Whether the target declined to produce content: a 4xx/5xx, a reset, a closed connection
    /// or a refused handshake. `None` when nothing was observed (timeout, not sent).
    pub fn refused(&self) -> Option<bool> {
        match self {
            Self::Response(response) => Some(response.status >= 400),
            Self::StreamReset { .. }
            | Self::ConnectionClosed { .. }
            | Self::HandshakeRefused { .. } => Some(true),
            Self::TimedOut { .. } | Self::NotSent { .. } => None,
        }
    }
}

impl fmt::Display for ExchangeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Response(response) => write!(f, "{response}"),
            Self::StreamReset { code, name } => write!(f, "stream reset {name} (0x{code:x})"),
            Self::ConnectionClosed { detail } => {
                write!(f, "connection closed before a response ({detail})")
            }
            Self::HandshakeRefused { detail } => write!(f, "handshake refused ({detail})"),
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
    /// The first bytes of the body, for the transcript.
    pub body_excerpt: String,
}

impl Response {
    /// Whether the response carries explicit freshness, which makes a 421 storable
    /// (RFC 9111 §3, RFC 9110 Appendix B.3).
    pub fn explicit_freshness(&self) -> Option<String> {
        if let Some(expires) = &self.expires {
            return Some(format!("Expires: {expires}"));
        }
        let cache_control = self.cache_control.as_deref()?;
        let has_directive = cache_control.split(',').any(|directive| {
            let name = directive
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            matches!(name.as_str(), "max-age" | "s-maxage" | "public")
        });
        has_directive.then(|| format!("Cache-Control: {cache_control}"))
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

/// The per-case log of what was sent and received, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Time since the case started.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn response(cache_control: Option<&str>, expires: Option<&str>) -> Response {
        Response {
            status: 421,
            tenant: None,
            cache_control: cache_control.map(str::to_owned),
            expires: expires.map(str::to_owned),
            body_excerpt: String::new(),
        }
    }

    #[test]
    fn explicit_freshness_is_recognised() {
        assert_eq!(response(None, None).explicit_freshness(), None);
        assert_eq!(response(Some("no-store"), None).explicit_freshness(), None);
        assert!(
            response(Some("no-cache, Max-Age=60"), None)
                .explicit_freshness()
                .is_some()
        );
        assert!(
            response(Some("public"), None)
                .explicit_freshness()
                .is_some()
        );
        assert!(
            response(None, Some("Thu, 01 Dec 2030 16:00:00 GMT"))
                .explicit_freshness()
                .is_some()
        );
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
        let timeout = ExchangeOutcome::TimedOut {
            after: Duration::from_secs(1),
        };
        assert_eq!(timeout.refused(), None);
    }
}
