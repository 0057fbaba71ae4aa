//! The scenario model: what one YAML file asks the harness to do and to expect.
//!
//! Built only by `load` and `build` from the serde mirror in `raw`, so a `Scenario` that exists is valid:
//! every connection a step uses was opened before, every expectation cites a requirement the
//! scenario declares, every role and fault name is known. Spans stay on everything a diagnostic
//! or a finding may point at.

mod build;
mod load;
mod raw;
pub mod span;

use serde::Serialize;

pub use load::{load_file, load_paths, load_str, read_yaml};
pub use raw::{CLIENT_FIELDS, REQUEST_FIELDS};
pub use span::{LoadError, Source, Span, position_after, span_of};

use crate::check::Check;
use crate::check::client::ClientCheck;
use crate::deployment::Role;
use crate::fault::Fault;
use crate::protocol::Protocol;
use crate::verdict::{Level, Verdict};

/// One requirement of the catalogue, as a scenario cites it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Catalogue ID, e.g. `R9110-7.4-b`.
    pub id: String,
    pub level: Level,
    /// Where the requirement is written, e.g. `RFC 9110 §7.4`.
    pub section: String,
    /// Why the scenario judges it at another level than the catalogue's, where it does.
    pub because: Option<String>,
}

/// A scenario's claim that an embedded faulty variant makes it end with `verdict`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    pub fault: Fault,
    pub verdict: Verdict,
    /// Protocols the claim holds for; empty means all of the scenario's.
    pub protocols: Vec<Protocol>,
    pub span: Span,
}

impl Detection {
    pub fn applies_to(&self, protocol: Protocol) -> bool {
        self.protocols.is_empty() || self.protocols.contains(&protocol)
    }
}

/// One scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// Stable ID: the path below the suites folder without `.yaml`, e.g. `server/own-authority`.
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    /// The target is a gateway in front of misdirect's mock upstreams, one per tenant.
    pub gateway: bool,
    pub requirements: Vec<Requirement>,
    pub protocols: Vec<Protocol>,
    pub detects: Vec<Detection>,
    /// Server-side scenarios: what the harness does to the target.
    pub steps: Vec<Step>,
    /// Client-side scenarios: the harness plays the origin for a client under test.
    pub client: Option<ClientPlan>,
    /// Every role the scenario names: a target that maps no name to one of them cannot run it.
    pub roles: Vec<Role>,
    pub span: Span,
}

/// What a client under test is asked to do, against an origin that answers as scripted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPlan {
    pub origin: crate::origin_script::OriginScript,
    /// The roles the origin's HTTP/2 ORIGIN frames list (empty: an empty frame); `None` leaves
    /// the frame to the policy.
    pub origin_frame: Option<Vec<Role>>,
    /// The HTTP/2 stream those frames go on (0 unless the scenario tests a misplaced frame).
    pub origin_frame_stream: u32,
    pub fetches: Vec<Fetch>,
    pub expect: Vec<ClientExpectation>,
}

/// One request the client under test is asked to make, to `https://<role's name>:<port>/fetch/<n>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    pub role: Role,
    pub method: String,
    pub body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientExpectation {
    /// Index into [`Scenario::requirements`].
    pub requirement: usize,
    pub check: ClientCheck,
    /// Protocols this expectation applies to; empty means all of the scenario's.
    pub protocols: Vec<Protocol>,
    pub span: Span,
}

impl Scenario {
    /// The suite a scenario belongs to: the first component of its ID.
    pub fn suite(&self) -> &str {
        self.id.split_once('/').map_or("suites", |(suite, _)| suite)
    }

    /// The scenario's name inside its suite.
    pub fn name(&self) -> &str {
        self.id
            .split_once('/')
            .map_or(self.id.as_str(), |(_, name)| name)
    }

    pub fn requirement(&self, index: usize) -> &Requirement {
        &self.requirements[index]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Connect(Connect),
    Send(Send),
}

/// Open a connection of the case's protocol and give it a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub name: String,
    /// The role whose name goes into SNI; `None` sends no SNI at all.
    pub sni: Option<Role>,
    /// Present the client certificate that the client CA of this mTLS tenant issued.
    pub client_certificate: Option<Role>,
    /// Offer the TLS session ticket that this earlier connection received.
    pub resume: Option<String>,
    /// How to reach the target, when not over the case's protocol at its address.
    pub route: Route,
    /// The one TLS version to offer; `None` offers TLS 1.3 and 1.2.
    pub tls: Option<TlsVersion>,
}

/// A TLS version a connection can be held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TlsVersion {
    /// TLS 1.2, whose resumption (session IDs and tickets) RFC 6066 §3 binds to the SNI.
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

impl TlsVersion {
    pub fn key(self) -> &'static str {
        match self {
            Self::Tls12 => "1.2",
            Self::Tls13 => "1.3",
        }
    }
}

/// Which protocol and endpoint a connection uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The case's protocol at the target's address.
    Case,
    /// This protocol at the target's address (e.g. HTTP/2 to learn an Alt-Svc).
    Protocol(Protocol),
    /// HTTP/3 at the alternative that `Alt-Svc` advertised on this earlier connection.
    AltSvc(String),
}

/// Send requests on a named connection: one after another, or (HTTP/2) all at once per round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Send {
    pub connection: String,
    pub requests: Vec<Request>,
    /// Whether the requests of a round go out together (a burst); HTTP/1.1 still sends them in turn.
    pub concurrent: bool,
    pub rounds: u32,
}

/// How the request target is written in HTTP/1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetForm {
    /// `GET /path HTTP/1.1` with the authority in `Host`.
    Origin,
    /// `GET https://authority/path HTTP/1.1`, with `Host` as given separately.
    Absolute,
}

/// The scheme of the request's target URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    Https,
    /// An `http` URI over TLS, which a server serves only if it opted in (RFC 8164).
    Http,
}

impl Scheme {
    pub fn key(self) -> &'static str {
        match self {
            Self::Https => "https",
            Self::Http => "http",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// `:scheme` (h2, h3), or the scheme of an absolute-form target (h1).
    pub scheme: Scheme,
    /// `:authority` (h2) or `Host` / the absolute-form target (h1).
    pub authority: Authority,
    /// An extra `Host` header (h2), or the `Host` header beside an absolute-form target (h1).
    pub host: Option<Authority>,
    /// A second `:authority` field after the first (h2, h3), which makes the request malformed.
    pub second_authority: Option<Authority>,
    pub form: TargetForm,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub expect: Vec<Expectation>,
}

/// Which port an authority carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortForm {
    /// The target's port, elided when it is the default port 443.
    Target,
    /// The target's port, written even when it is 443 (`a.test:443`): the same origin.
    Explicit,
    /// A port the target does not serve this origin on.
    Other,
    /// The target's port written with a leading zero (same origin, RFC 9110 §4.3.1).
    LeadingZero,
    /// No port at all, meaning 443.
    Omitted,
    /// The target's port plus 65536: beyond the 16 bits of a TCP port, the same port to a
    /// parser that wraps around.
    Overflowing,
}

/// What an authority names: a role's name, or the target's IP address (which no certificate
/// of the deployment covers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthorityHost {
    Role(Role),
    Address,
    /// No authority at all: no Host line (HTTP/1.1), neither `:authority` nor `Host` (HTTP/2,
    /// HTTP/3).
    Nothing,
    /// An authority field with an empty value.
    Empty,
}

/// The word a scenario writes for [`AuthorityHost::Address`].
pub const ADDRESS: &str = "address";
/// The word a scenario writes for [`AuthorityHost::Nothing`].
pub const NO_AUTHORITY: &str = "none";
/// Stands in a request's path for a segment of the case's own in the run, so that cases that
/// share a caching server never share its entries (`/cached/{case}/page`).
pub const CASE_SEGMENT: &str = "{case}";
/// The word a scenario writes for [`AuthorityHost::Empty`].
pub const EMPTY_AUTHORITY: &str = "empty";

/// An authority described by role, so that it means the same on every target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Authority {
    pub host: AuthorityHost,
    pub port: PortForm,
    pub uppercase: bool,
    pub trailing_dot: bool,
    /// A role's name put before the host as the deprecated userinfo (`a.test@c.test`), which
    /// a sender must not generate and a recipient should treat as an error (RFC 9110 §4.2.4).
    pub userinfo: Option<Role>,
    /// Characters written after the authority (`/x`, `#`, `?`), which no authority may hold:
    /// a parser that joins it with the path, or cuts it at the delimiter, reads another URI.
    pub suffix: Option<String>,
}

impl Authority {
    pub fn of(role: Role) -> Self {
        Self {
            host: AuthorityHost::Role(role),
            port: PortForm::Target,
            uppercase: false,
            trailing_dot: false,
            userinfo: None,
            suffix: None,
        }
    }
}

/// One expectation about one request's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// Index into [`Scenario::requirements`].
    pub requirement: usize,
    pub check: Check,
    /// Protocols this expectation applies to; empty means all of the scenario's.
    pub protocols: Vec<Protocol>,
    /// Judged only on a connection whose target sent ORIGIN frames; not applicable otherwise.
    pub if_advertised: bool,
    /// Judged only where the certificate presented on the request's connection does not cover
    /// its authority (a refusal the target owes); not applicable otherwise.
    pub if_uncovered: bool,
    /// The case asks its question only if this holds: unmet, the case is SKIP, not judged.
    pub premise: Option<Premise>,
    pub span: Span,
}

/// What a case presupposes, for instance that the target sent a 421 at all: a target that never
/// does is judged for that by another case, not twice under this one's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Premise {
    /// The ID of the scenario that judges why the premise did not hold, if another does.
    pub judged_by: Option<String>,
}

impl Expectation {
    pub fn applies_to(&self, protocol: Protocol) -> bool {
        self.protocols.is_empty() || self.protocols.contains(&protocol)
    }
}
