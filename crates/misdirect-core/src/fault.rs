//! The embedded target's deliberate defects. Each breaks one requirement the suites check, and
//! scenarios name the faults that must drive them to a verdict (`detects:`), so that no check
//! exists that has not been seen to fail.

use std::fmt;
use std::str::FromStr;

/// Who carries a fault out: the part of the embedded target (or of the reference client) whose
/// code a fault changes, so that a reader knows where to look and the runner which side to hand
/// it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Actor {
    /// The origin's request decisions (`policy`), shared by the HTTP/1.1, HTTP/2 and HTTP/3 shells.
    Policy,
    /// The TLS or QUIC shell below the policy: session cache, certificate choice.
    TlsShell,
    /// The embedded target's gateway mode: how it forwards to the tenants' upstreams.
    Gateway,
    /// The reference client, when it plays the client under test.
    Client,
    /// The embedded target under concurrent load: a defect that shows only when many requests
    /// are in flight at once, which no scenario sends; `misdirect soak` proves it instead.
    Load,
}

impl Actor {
    pub fn key(self) -> &'static str {
        match self {
            Self::Policy => "origin policy",
            Self::TlsShell => "TLS/QUIC shell",
            Self::Gateway => "gateway",
            Self::Client => "client under test",
            Self::Load => "under load",
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

macro_rules! faults {
    ($($variant:ident = $key:literal by $actor:ident: $description:literal,)*) => {
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

            /// Who carries the fault out.
            pub fn actor(self) -> Actor {
                match self {
                    $(Self::$variant => Actor::$actor,)*
                }
            }
        }
    };
}

faults! {
    NoCertificateCheck = "no-certificate-check" by Policy:
        "serves any configured authority, whether or not the connection's certificate covers it",
    RouteBySni = "route-by-sni" by Policy:
        "routes each request to the tenant named by the connection's SNI instead of its authority",
    StickyRouting = "sticky-routing" by Policy:
        "routes every request on a connection to the tenant its first request chose",
    DefaultTenant = "default-tenant" by Policy:
        "serves names no tenant is configured for from the default tenant instead of refusing them",
    DefaultVirtualHost = "default-virtual-host" by Policy:
        "serves a name that no tenant is configured for and no certificate covers from the default tenant, checking the certificate only for configured names (Apache's default virtual host)",
    UserinfoConfusion = "userinfo-confusion" by Policy:
        "accepts userinfo in the authority and reads it as the host for the certificate check, routing by the real host (`a.test@c.test` is checked as a.test and served by c.test's tenant)",
    RoutesByUserinfo = "routes-by-userinfo" by Policy:
        "accepts userinfo in the authority, checks the certificate against the host and routes by the userinfo (`c.test@a.test` is checked as a.test and served by c.test's tenant)",
    FirstHostWins = "first-host-wins" by Policy:
        "serves an HTTP/1.1 request with several Host header lines by the first instead of answering 400",
    MissingHostDefault = "missing-host-default" by Policy:
        "serves a request that names no authority (no Host line, no :authority, or an empty one) from the default tenant instead of refusing it",
    SplitAuthority = "split-authority" by Policy:
        "accepts a request with two :authority fields, checks the certificate against the first and routes by the last",
    AuthorityPrefixMatch = "authority-prefix-match" by Policy:
        "cuts the authority at the first `/`, `?`, `#` or space and serves what precedes it, instead of refusing an authority no URI can hold",
    Status404 = "status-404" by Policy:
        "rejects misdirected requests with 404 instead of 421",
    Status400 = "status-400" by Policy:
        "rejects misdirected requests with 400 instead of 421",
    CloseAfter421 = "close-after-421" by Policy:
        "closes the connection (HTTP/2 GOAWAY) after every 421",
    MtlsCoalescingBypass = "mtls-coalescing-bypass" by Policy:
        "enforces the client-certificate requirement only in the handshake, not on coalesced requests",
    TlsVersionInHandshakeOnly = "tls-version-in-handshake-only" by Policy:
        "enforces a tenant's TLS 1.3-only policy in the handshake for its own name, not on requests coalesced onto a TLS 1.2 connection",
    ClientCaShared = "client-ca-shared" by Policy:
        "accepts a client certificate from either mTLS tenant's CA for both, as one client CA pool for every virtual host does",
    ResumptionBypass = "resumption-bypass" by TlsShell:
        "resumes TLS sessions under another SNI and trusts the handshake's client-certificate policy (CVE-2025-23419 class)",
    CaseSensitivePolicy = "case-sensitive-policy" by Policy:
        "looks up the client-certificate policy case-sensitively while routing case-insensitively",
    CaseSensitiveMatch = "case-sensitive-match" by Policy:
        "matches the authority against the certificate case-sensitively, refusing A.TEST on an a.test connection",
    TrailingDot = "trailing-dot" by Policy:
        "misses the client-certificate policy for a name with a trailing dot, while routing ignores the dot",
    IgnoresScheme = "ignores-scheme" by Policy:
        "serves a request for an `http` URI over TLS as if it were for the `https` origin",
    IgnoresPort = "ignores-port" by Policy:
        "serves an authority whose port is not the one the connection arrived on",
    StrictPort = "strict-port" by Policy:
        "compares the authority including its port with the SNI, refusing every request that names a port",
    PortAsText = "port-as-text" by Policy:
        "compares the authority's port as text, refusing a port written another way (`:04433`)",
    PortWraps = "port-wraps" by Policy:
        "reads the authority's port modulo 65536, serving `a.test:69969` as `a.test:4433`",
    Cacheable421 = "cacheable-421" by Policy:
        "marks 421 responses cacheable (Cache-Control: public, max-age=3600)",
    TrustsHostHeader = "trusts-host-header" by Policy:
        "decides on the Host header even where :authority or an absolute-form target names the origin",
    ChecksHostRoutesAuthority = "checks-host-routes-authority" by Policy:
        "checks the certificate against the Host header but routes by :authority or the absolute-form target, when both are present",
    ComparesHostAsText = "compares-host-as-text" by Policy:
        "compares an HTTP/2 Host with :authority as text, so that A.TEST:443 and a.test (the same entity) make a request malformed",
    AcceptsMismatchedHost = "accepts-mismatched-host" by Policy:
        "serves HTTP/2 requests whose Host header differs from :authority instead of treating them as malformed",
    NoSniBypass = "no-sni-bypass" by Policy:
        "skips every authority check on connections without SNI",
    ChecksGetOnly = "checks-get-only" by Policy:
        "checks the authority only for GET and HEAD requests",
    OriginAdvertisesRefused = "origin-advertises-refused" by Policy:
        "lists every name of its certificate in its HTTP/2 ORIGIN frame but serves only the SNI name",
    OriginGrantsUncovered = "origin-grants-uncovered" by Policy:
        "lists a name its certificate does not cover in its ORIGIN frames (HTTP/2 and HTTP/3), and serves it as if the frame granted authority",
    GatewayHostFromSni = "gateway-host-from-sni" by Gateway:
        "as a gateway, sends the connection's SNI name upstream as Host instead of the request's authority",
    GatewayForwardsMisdirected = "gateway-forwards-misdirected" by Gateway:
        "as a gateway, forwards every request to its tenant's upstream before deciding, so refused requests reach a backend",
    GatewayNoUpstreamSni = "gateway-no-upstream-sni" by Gateway:
        "as a gateway, connects to the upstreams without SNI",
    GatewayRelaysBackend421 = "gateway-relays-backend-421" by Gateway:
        "passes a backend's 421 on to the client instead of retrying on a fresh upstream connection, so the client retries a connection that was never the problem",
    GatewayRelaysOriginFrame = "gateway-relays-origin-frame" by Gateway:
        "lists in its own HTTP/2 ORIGIN frame the origins its upstream's ORIGIN frame listed, as a proxy that passes the frame on does",
    GatewayStoresBackend421 = "gateway-stores-backend-421" by Gateway:
        "passes a backend's 421 on and keeps it in its shared cache, although nothing in it allows storing, so later requests for that target get the 421 without reaching the backend",
    CacheKeyWithoutHost = "cache-key-without-host" by Gateway:
        "keys its shared cache by the path alone, so one tenant's stored response answers another tenant's request for the same path",
    ClientCoalescesUncovered = "client-coalesces-uncovered" by Client:
        "as the client under test, reuses any open connection for any origin, whatever its certificate covers",
    ClientRetriesSameConnection = "client-retries-same-connection" by Client:
        "as the client under test, retries a 421 on the connection that refused it",
    ClientRetriesForever = "client-retries-forever" by Client:
        "as the client under test, retries a 421 again and again (eight times here)",
    ClientDropsBodyOnRetry = "client-drops-body-on-retry" by Client:
        "as the client under test, retries a 421 without the request body",
    ClientRejectsMisplacedOrigin = "client-rejects-misplaced-origin" by Client:
        "as the client under test, abandons an HTTP/2 connection that carries an ORIGIN frame on a stream other than 0",
    ClientIgnoresOrigin = "client-ignores-origin" by Client:
        "as the client under test, reuses HTTP/2 connections by certificate alone, ignoring ORIGIN frames",
    ClientNeverReuses = "client-never-reuses" by Client:
        "as the client under test, opens a new connection for every request, even to an origin it already has a connection to",
    ClientForgets421 = "client-forgets-421" by Client:
        "as the reference client, forgets which connections refused an origin with 421 and sends later requests for it there again",
    ClientOmitsAuthority = "client-omits-authority" by Client:
        "as the reference client, names no origin in its requests: no Host over HTTP/1.1, no :authority over HTTP/2 and HTTP/3",
    ClientStaleHost = "client-stale-host" by Client:
        "as the reference client, adds a Host field naming the origin an HTTP/2 connection was opened for, which contradicts :authority on every request coalesced onto it",
    QuicIgnoresSni = "quic-ignores-sni" by TlsShell:
        "presents the default certificate on QUIC whatever the SNI (HTTP/3 only)",
    H3Mismatch421 = "h3-mismatch-421" by Policy:
        "answers HTTP/3 requests whose Host differs from :authority with 421 instead of resetting them as malformed (HTTP/3 only)",
    H3NoCertificateCheck = "h3-no-certificate-check" by Policy:
        "skips the certificate check on its HTTP/3 endpoint only, as an edge whose QUIC side lacks the 421 logic",
    DefaultTenantWhenBusy = "default-tenant-when-busy" by Load:
        "hands a request to the default tenant (the primary's) when more than eight are in flight at once, whatever its authority, as a worker pool that falls back when full",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_a_unique_key_a_description_and_parses_back() {
        let mut keys = std::collections::BTreeSet::new();
        for fault in Fault::ALL {
            assert!(keys.insert(fault.key()), "{fault} declared twice");
            assert!(!fault.description().is_empty());
            assert_eq!(fault.key().parse::<Fault>(), Ok(*fault));
        }
        assert_eq!(
            "no-such-fault".parse::<Fault>(),
            Err(UnknownFault("no-such-fault".to_owned()))
        );
    }

    #[test]
    fn client_faults_are_the_client_under_tests() {
        assert_eq!(Fault::ClientRetriesForever.actor(), Actor::Client);
        assert_eq!(Fault::ResumptionBypass.actor(), Actor::TlsShell);
        assert_eq!(Fault::GatewayNoUpstreamSni.actor(), Actor::Gateway);
        assert_eq!(Fault::NoCertificateCheck.actor(), Actor::Policy);
        assert!(
            Fault::ALL
                .iter()
                .filter(|fault| fault.actor() == Actor::Client)
                .all(|fault| fault.key().starts_with("client-"))
        );
    }
}
