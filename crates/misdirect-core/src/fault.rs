//! The embedded target's deliberate defects. Each breaks one requirement the suites check, and
//! scenarios name the faults that must drive them to a verdict (`detects:`), so that no check
//! exists that has not been seen to fail.

use std::fmt;
use std::str::FromStr;

macro_rules! faults {
    ($($variant:ident = $key:literal: $description:literal,)*) => {
        /// A deliberate defect of the embedded target; each breaks one requirement the suites check.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Fault {
            $(#[doc = $description] $variant,)*
        }

        impl Fault {
            pub const ALL: &[Self] = &[$(Self::$variant,)*];

            /// The name used on the command line (`--target embedded:<name>`) and in scenarios.
            pub fn key(self) -> &'static str {
                match self {
                    $(Self::$variant => $key,)*
                }
            }

            pub fn description(self) -> &'static str {
                match self {
                    $(Self::$variant => $description,)*
                }
            }
        }
    };
}

faults! {
    NoCertificateCheck = "no-certificate-check":
        "serves any configured authority, whether or not the connection's certificate covers it",
    RouteBySni = "route-by-sni":
        "routes each request to the tenant named by the connection's SNI instead of its authority",
    StickyRouting = "sticky-routing":
        "routes every request on a connection to the tenant its first request chose",
    DefaultTenant = "default-tenant":
        "serves names no tenant is configured for from the default tenant instead of refusing them",
    Status404 = "status-404":
        "rejects misdirected requests with 404 instead of 421",
    Status400 = "status-400":
        "rejects misdirected requests with 400 instead of 421",
    CloseAfter421 = "close-after-421":
        "closes the connection (HTTP/2 GOAWAY) after every 421",
    MtlsCoalescingBypass = "mtls-coalescing-bypass":
        "enforces the client-certificate requirement only in the handshake, not on coalesced requests",
    ResumptionBypass = "resumption-bypass":
        "resumes TLS sessions under another SNI and trusts the handshake's client-certificate policy (CVE-2025-23419 class)",
    CaseSensitivePolicy = "case-sensitive-policy":
        "looks up the client-certificate policy case-sensitively while routing case-insensitively",
    CaseSensitiveMatch = "case-sensitive-match":
        "matches the authority against the certificate case-sensitively, refusing A.TEST on an a.test connection",
    TrailingDot = "trailing-dot":
        "misses the client-certificate policy for a name with a trailing dot, while routing ignores the dot",
    IgnoresPort = "ignores-port":
        "serves an authority whose port is not the one the connection arrived on",
    StrictPort = "strict-port":
        "compares the authority including its port with the SNI, refusing every request that names a port",
    Cacheable421 = "cacheable-421":
        "marks 421 responses cacheable (Cache-Control: public, max-age=3600)",
    TrustsHostHeader = "trusts-host-header":
        "decides on the Host header even where :authority or an absolute-form target names the origin",
    AcceptsMismatchedHost = "accepts-mismatched-host":
        "serves HTTP/2 requests whose Host header differs from :authority instead of treating them as malformed",
    NoSniBypass = "no-sni-bypass":
        "skips every authority check on connections without SNI",
    ChecksGetOnly = "checks-get-only":
        "checks the authority only for GET and HEAD requests",
    OriginAdvertisesRefused = "origin-advertises-refused":
        "lists every name of its certificate in its HTTP/2 ORIGIN frame but serves only the SNI name",
    OriginGrantsUncovered = "origin-grants-uncovered":
        "lists a name its certificate does not cover in its HTTP/2 ORIGIN frame, and serves it as if the frame granted authority",
    GatewayForwardsMisdirected = "gateway-forwards-misdirected":
        "as a gateway, forwards every request to its tenant's upstream before deciding, so refused requests reach a backend",
    GatewayNoUpstreamSni = "gateway-no-upstream-sni":
        "as a gateway, connects to the upstreams without SNI",
    ClientCoalescesUncovered = "client-coalesces-uncovered":
        "as the client under test, reuses any open connection for any origin, whatever its certificate covers",
    ClientRetriesSameConnection = "client-retries-same-connection":
        "as the client under test, retries a 421 on the connection that refused it",
    ClientRetriesForever = "client-retries-forever":
        "as the client under test, retries a 421 again and again (eight times here)",
    ClientDropsBodyOnRetry = "client-drops-body-on-retry":
        "as the client under test, retries a 421 without the request body",
    ClientRejectsMisplacedOrigin = "client-rejects-misplaced-origin":
        "as the client under test, abandons an HTTP/2 connection that carries an ORIGIN frame on a stream other than 0",
    ClientIgnoresOrigin = "client-ignores-origin":
        "as the client under test, reuses HTTP/2 connections by certificate alone, ignoring ORIGIN frames",
    QuicIgnoresSni = "quic-ignores-sni":
        "presents the default certificate on QUIC whatever the SNI (HTTP/3 only)",
    H3Mismatch421 = "h3-mismatch-421":
        "answers HTTP/3 requests whose Host differs from :authority with 421 instead of resetting them as malformed (HTTP/3 only)",
    H3NoCertificateCheck = "h3-no-certificate-check":
        "skips the certificate check on its HTTP/3 endpoint only, as an edge whose QUIC side lacks the 421 logic",
}

impl Fault {
    /// Whether the fault is one of the embedded client's, not of the embedded server's.
    pub fn is_client_fault(self) -> bool {
        matches!(
            self,
            Self::ClientCoalescesUncovered
                | Self::ClientRetriesSameConnection
                | Self::ClientRetriesForever
                | Self::ClientDropsBodyOnRetry
                | Self::ClientIgnoresOrigin
                | Self::ClientRejectsMisplacedOrigin
        )
    }
}

/// A fault name that names no fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault `{0}` (`misdirect faults` lists them)")]
pub struct UnknownFault(pub String);

impl FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|fault| fault.key() == s)
            .ok_or_else(|| UnknownFault(s.to_owned()))
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}
