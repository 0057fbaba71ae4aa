//! The checks a scenario's expectations state, one family per file, each check declared once.
//!
//! A family file declares its checks with `family!`: the name a scenario writes, the value it
//! takes (a role, a list of status codes, a count, or `true` for a plain check) and the doc
//! comment that says what it asks. The macro derives from that one list the model enum, its YAML
//! mirror, and the names that error messages offer. Beside the declaration sit the family's
//! words for each check (`describe`) and its judging (`judge`). Adding a check touches its
//! family file, the scenario that uses it, and the fault that proves it can fail.
//!
//! Families: [`server`] (what the target answered), [`origin`] (what its ORIGIN frames promised),
//! [`gateway`] (what reached the mock upstreams), [`client`] (what a client under test sent to
//! the origin). Walking a scenario's steps and adding judgements up into a verdict is
//! `evaluate`'s job, one module up.

pub mod client;
pub mod gateway;
pub mod origin;
pub mod server;

use serde::de::{DeserializeOwned, MapAccess};
use serde_saphyr::Location;

use crate::deployment::{Deployment, Role, normalize_host, parse_authority};
use crate::observe::{Exchange, ExchangeOutcome, Observations, Response};
use crate::protocol::Protocol;

/// What judging one expectation against what was observed gave.
#[derive(Debug)]
pub enum Judgement {
    Met,
    Unmet {
        expected: String,
        observed: String,
    },
    /// The observation this check needs is not there.
    Missing(String),
    NotApplicable(String),
}

/// The value a check takes in a scenario, read from YAML and validated.
pub trait Argument: Sized {
    /// How the value is written.
    type Raw: DeserializeOwned;

    /// How the value is written, in words for the check reference.
    const WRITTEN: &'static str;

    /// The value, or why `raw` is not one; `check` names the check for the message.
    fn build(raw: Self::Raw, check: &str) -> Result<Self, String>;

    /// How the value is written, as a JSON Schema (for `misdirect schema`).
    fn schema() -> serde_json::Value;

    /// The role the value names, so that the loader knows every role a scenario uses.
    fn role(&self) -> Option<Role> {
        None
    }
}

impl Argument for Role {
    type Raw = String;

    const WRITTEN: &'static str = "<role>";

    fn build(raw: String, _check: &str) -> Result<Self, String> {
        raw.parse()
            .map_err(|error: crate::deployment::UnknownRole| error.to_string())
    }

    fn schema() -> serde_json::Value {
        serde_json::json!({ "$ref": "#/definitions/role" })
    }

    fn role(&self) -> Option<Role> {
        Some(*self)
    }
}

/// `status: 421` or `status: [400, 421]`.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum RawStatus {
    One(u16),
    Any(Vec<u16>),
}

impl Argument for Vec<u16> {
    type Raw = RawStatus;

    const WRITTEN: &'static str = "<status> or [<status>, ...]";

    fn build(raw: RawStatus, _check: &str) -> Result<Self, String> {
        let codes = match raw {
            RawStatus::One(code) => vec![code],
            RawStatus::Any(codes) => codes,
        };
        if codes.is_empty() || codes.iter().any(|code| !(100..=599).contains(code)) {
            return Err("status codes lie between 100 and 599".to_owned());
        }
        Ok(codes)
    }

    fn schema() -> serde_json::Value {
        let code = serde_json::json!({ "type": "integer", "minimum": 100, "maximum": 599 });
        serde_json::json!({
            "oneOf": [code, { "type": "array", "items": code, "minItems": 1 }]
        })
    }
}

impl Argument for u32 {
    type Raw = Self;

    const WRITTEN: &'static str = "<count>";

    fn build(raw: Self, check: &str) -> Result<Self, String> {
        if raw == 0 {
            return Err(format!("{check} is at least 1"));
        }
        Ok(raw)
    }

    fn schema() -> serde_json::Value {
        serde_json::json!({ "type": "integer", "minimum": 1 })
    }
}

/// A plain check is written `name: true`.
fn stated(raw: bool) -> Result<(), String> {
    if raw {
        Ok(())
    } else {
        Err("checks are stated positively: write `true` or leave the key out".to_owned())
    }
}

/// A plain check's value as a JSON Schema: `true`, nothing else.
fn stated_schema() -> serde_json::Value {
    serde_json::json!({ "const": true })
}

/// A check's value that is not valid for it, and where it is written.
#[derive(Debug)]
pub struct ArgumentError {
    pub at: Location,
    pub message: String,
}

/// The YAML mirror of a set of checks: reads the value of a check by its name, and builds the
/// check from it.
pub trait RawChecks: Sized {
    /// The checks built from this mirror.
    type Check;

    /// Reads the value of the check `name` from `map`; `None` when no check has that name.
    fn next_value<'de, A: MapAccess<'de>>(
        name: &str,
        map: &mut A,
    ) -> Option<Result<Self, A::Error>>;

    /// Every check's name, for error messages.
    fn names() -> Vec<&'static str>;

    /// The check, or why its value is not valid for it.
    fn build(self) -> Result<Self::Check, ArgumentError>;

    /// The role a built check names, if it names one.
    fn role(check: &Self::Check) -> Option<Role>;
}

/// Declares one family of checks from one list: the model enum (`$family`), its YAML mirror
/// (`$raw`), the checks' documentation (names, values as written, doc comments), and the
/// conversion from one to the other. A check without a value is
/// written `name: true`; a check with one names its [`Argument`] type.
macro_rules! family {
    (@raw) => { bool };
    (@raw $argument:ty) => { <$argument as $crate::check::Argument>::Raw };
    (@bind $family:ident $variant:ident $value:ident) => { $family::$variant };
    (@bind $family:ident $variant:ident $value:ident $argument:ty) => { $family::$variant($value) };
    (@written) => { "true" };
    (@written $argument:ty) => { <$argument as $crate::check::Argument>::WRITTEN };
    (@schema) => { $crate::check::stated_schema };
    (@schema $argument:ty) => { <$argument as $crate::check::Argument>::schema };
    (@role $value:ident) => { None };
    (@role $value:ident $argument:ty) => { $crate::check::Argument::role($value) };
    (@build $family:ident $variant:ident $name:literal $value:ident) => {
        $crate::check::stated($value.value).map(|()| $family::$variant)
    };
    (@build $family:ident $variant:ident $name:literal $value:ident $argument:ty) => {
        <$argument as $crate::check::Argument>::build($value.value, $name).map($family::$variant)
    };
    (
        $(#[doc = $family_doc:literal])*
        $family:ident / $raw:ident {
            $(
                $(#[doc = $doc:literal])*
                $variant:ident $(($argument:ty))? = $name:literal,
            )*
        }
    ) => {
        $(#[doc = $family_doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $family {
            $($(#[doc = $doc])* $variant $(($argument))?,)*
        }

        impl $family {
            /// Every check of the family as a scenario writes it, with its doc comment.
            pub const DOCUMENTED: &[$crate::check::Documented] = &[$($crate::check::Documented {
                name: $name,
                value: family!(@written $($argument)?),
                schema: family!(@schema $($argument)?),
                doc: concat!($($doc, "\n"),*),
            }),*];

            /// The role the check names, if it names one.
            pub fn role(&self) -> Option<$crate::deployment::Role> {
                match self {
                    $(family!(@bind $family $variant value $($argument)?) => family!(@role value $($argument)?),)*
                }
            }
        }

        /// The YAML mirror of the family: each check with its value as written, and where.
        #[derive(Debug)]
        pub enum $raw {
            $($variant(serde_saphyr::Spanned<family!(@raw $($argument)?)>),)*
        }

        impl $crate::check::RawChecks for $raw {
            type Check = $family;

            fn next_value<'de, A: serde::de::MapAccess<'de>>(
                name: &str,
                map: &mut A,
            ) -> Option<Result<Self, A::Error>> {
                match name {
                    $($name => Some(map.next_value().map(Self::$variant)),)*
                    _ => None,
                }
            }

            fn names() -> Vec<&'static str> {
                $family::DOCUMENTED.iter().map(|check| check.name).collect()
            }

            fn build(self) -> Result<$family, $crate::check::ArgumentError> {
                match self {
                    $(Self::$variant(value) => {
                        let at = value.referenced;
                        family!(@build $family $variant $name value $($argument)?)
                            .map_err(|message| $crate::check::ArgumentError { at, message })
                    })*
                }
            }

            fn role(check: &$family) -> Option<$crate::deployment::Role> {
                check.role()
            }
        }
    };
}
use family;

/// One check as the reference lists it: its name, the value it takes, what it asks.
#[derive(Debug, Clone, Copy)]
pub struct Documented {
    pub name: &'static str,
    /// How the value is written: `true`, `<role>`, ...
    pub value: &'static str,
    /// The check's doc comment, one line of source a line.
    pub doc: &'static str,
    /// The value as a JSON Schema, for `misdirect schema`.
    pub schema: fn() -> serde_json::Value,
}

impl Documented {
    /// The doc comment as one paragraph.
    pub fn paragraph(&self) -> String {
        self.doc.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// Every check, by family, from the declarations the loader reads: the reference that
/// `misdirect checks` prints.
pub fn catalogue() -> [(&'static str, &'static [Documented]); 4] {
    [
        (
            "server (what the target answered a request)",
            server::ServerCheck::DOCUMENTED,
        ),
        (
            "origin (what the ORIGIN frames on its connection promised)",
            origin::OriginCheck::DOCUMENTED,
        ),
        (
            "gateway (what reached the mock upstreams)",
            gateway::GatewayCheck::DOCUMENTED,
        ),
        (
            "client (what a client under test sent the origin; under `client: expect:`)",
            client::ClientCheck::DOCUMENTED,
        ),
    ]
}

/// What an expectation about one request asserts: a check of the server, ORIGIN or gateway
/// family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Server(server::ServerCheck),
    Origin(origin::OriginCheck),
    Gateway(gateway::GatewayCheck),
}

/// The YAML mirror of [`Check`].
#[derive(Debug)]
pub enum RawCheck {
    Server(server::RawServerCheck),
    Origin(origin::RawOriginCheck),
    Gateway(gateway::RawGatewayCheck),
}

impl RawChecks for RawCheck {
    type Check = Check;

    fn next_value<'de, A: MapAccess<'de>>(
        name: &str,
        map: &mut A,
    ) -> Option<Result<Self, A::Error>> {
        server::RawServerCheck::next_value(name, map)
            .map(|read| read.map(Self::Server))
            .or_else(|| {
                origin::RawOriginCheck::next_value(name, map).map(|read| read.map(Self::Origin))
            })
            .or_else(|| {
                gateway::RawGatewayCheck::next_value(name, map).map(|read| read.map(Self::Gateway))
            })
    }

    fn names() -> Vec<&'static str> {
        [
            server::RawServerCheck::names(),
            origin::RawOriginCheck::names(),
            gateway::RawGatewayCheck::names(),
        ]
        .concat()
    }

    fn build(self) -> Result<Check, ArgumentError> {
        Ok(match self {
            Self::Server(raw) => Check::Server(raw.build()?),
            Self::Origin(raw) => Check::Origin(raw.build()?),
            Self::Gateway(raw) => Check::Gateway(raw.build()?),
        })
    }

    fn role(check: &Check) -> Option<Role> {
        check.role()
    }
}

/// One request's exchange and everything a check of it may read.
pub struct Exchanged<'a> {
    pub exchange: &'a Exchange,
    pub protocol: Protocol,
    pub deployment: &'a Deployment,
    pub observations: &'a Observations,
    /// Whether the target refused the request (see [`ExchangeOutcome::refused`]).
    pub refused: bool,
    /// What the check asks for, in words.
    pub expected: String,
}

impl Exchanged<'_> {
    fn outcome(&self) -> &ExchangeOutcome {
        &self.exchange.outcome
    }

    /// Unmet, with the request's outcome as what was observed.
    fn unmet(&self) -> Judgement {
        self.unmet_with(self.outcome().to_string())
    }

    fn unmet_with(&self, observed: String) -> Judgement {
        Judgement::Unmet {
            expected: self.expected.clone(),
            observed,
        }
    }
}

impl Check {
    pub fn role(&self) -> Option<Role> {
        match self {
            Self::Server(check) => check.role(),
            Self::Origin(check) => check.role(),
            Self::Gateway(check) => check.role(),
        }
    }

    /// What the check asks for, in words.
    pub fn describe(&self, deployment: &Deployment) -> String {
        match self {
            Self::Server(check) => check.describe(deployment),
            Self::Origin(check) => check.describe(deployment),
            Self::Gateway(check) => check.describe(),
        }
    }

    /// Whether a connection the target closed before the request could go out answers the
    /// check; for every other check it is no observation.
    pub fn reads_a_closed_connection(&self) -> bool {
        matches!(self, Self::Server(server::ServerCheck::StillServedBy(_)))
    }

    /// Whether the check is a positive control, which never counts towards a PASS.
    pub fn is_control(&self) -> bool {
        matches!(self, Self::Server(server::ServerCheck::Control(_)))
    }

    /// Whether the check judges the certificate itself, and so still applies on a connection
    /// whose certificate does not cover its SNI.
    pub fn judges_the_certificate(&self) -> bool {
        matches!(self, Self::Server(server::ServerCheck::CertificateCovers))
    }

    pub fn judge(&self, exchanged: &Exchanged<'_>) -> Judgement {
        match self {
            Self::Server(check) => check.judge(exchanged),
            Self::Origin(check) => check.judge(exchanged),
            Self::Gateway(check) => check.judge(exchanged),
        }
    }
}

/// "served by tenant bravo (sibling role, b.test)", for descriptions.
fn served(role: Role, deployment: &Deployment) -> String {
    match role.tenant() {
        Some(tenant) => format!(
            "served by tenant {tenant} ({role} role, {})",
            deployment.name(role)
        ),
        None => format!("served for {role}, which no tenant is configured for"),
    }
}

/// Met when the response names the role's tenant; a response that names no tenant cannot be
/// judged.
fn named_tenant(response: &Response, role: Role, unmet: Judgement) -> Judgement {
    match (&response.tenant, role.tenant()) {
        (None, _) => unnamed(response),
        (Some(tenant), Some(wanted)) if tenant == wanted => Judgement::Met,
        _ => unmet,
    }
}

/// A response that cannot be judged: who answered is the observation every check needs.
fn unnamed(response: &Response) -> Judgement {
    Judgement::Missing(format!(
        "{} names no tenant: the target must identify its tenant in every response",
        response.status
    ))
}

/// The origins the ORIGIN frames on a connection list, normalised: frames on stream 0 without
/// flags only (RFC 8336 §2.2); `None` when the target sent no such frame.
pub fn advertised_origins(observations: &Observations, connection: &str) -> Option<Vec<String>> {
    let frames = &observations.connection(connection)?.origin_frames;
    Some(
        crate::wire::h2::origin_set(frames)?
            .iter()
            .filter_map(|origin| origin.strip_prefix("https://").map(origin_of))
            .collect(),
    )
}

/// Why the certificate presented on the exchange's connection covers its authority, if it does
/// ("the certificate presented (…) covers c.test"); `None` when it does not, or when no
/// certificate was presented.
pub fn covered_by_certificate(exchange: &Exchange, observations: &Observations) -> Option<String> {
    let host = host_of(&exchange.authority);
    let record = observations.connection(&exchange.connection)?;
    let crate::observe::ConnectionResult::Established(established) = &record.result else {
        return None;
    };
    let sans = &established.peer_sans;
    sans.iter()
        .any(|san| crate::deployment::san_covers(san, &host))
        .then(|| {
            format!(
                "the certificate presented ({}) covers {host}",
                sans.join(", ")
            )
        })
}

/// The `https` origin of an authority in a canonical form: `https://host:port`.
fn origin_of(authority: &str) -> String {
    let port = parse_authority(authority)
        .ok()
        .and_then(|(_, port)| port)
        .unwrap_or(443);
    format!("https://{}:{port}", host_of(authority))
}

/// The host of an authority, normalised; the whole string where it does not parse.
fn host_of(authority: &str) -> String {
    parse_authority(authority).map_or_else(
        |_| normalize_host(authority),
        |(host, _)| normalize_host(host),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_port_and_case() {
        assert_eq!(host_of("A.Test.:8443"), "a.test");
        assert_eq!(host_of("[::1]:443"), "::1");
        assert_eq!(host_of("evil.test@b.test"), "evil.test@b.test");
        assert_eq!(host_of("c.test"), "c.test");
    }

    #[test]
    fn every_check_name_is_unique_across_families() {
        let mut names = RawCheck::names();
        names.extend(client::RawClientCheck::names());
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "a check name is declared twice");
    }

    #[test]
    fn every_check_is_documented_as_declared() {
        for (family, checks) in catalogue() {
            for check in checks {
                assert!(
                    !check.paragraph().is_empty(),
                    "{} ({family}) has no doc",
                    check.name
                );
            }
        }
        let documented: Vec<&str> = catalogue()
            .iter()
            .flat_map(|(_, checks)| checks.iter().map(|check| check.name))
            .collect();
        let mut declared = RawCheck::names();
        declared.extend(client::RawClientCheck::names());
        assert_eq!(documented, declared);
        assert_eq!(server::ServerCheck::DOCUMENTED[0].value, "<role>");
        assert_eq!(
            server::ServerCheck::DOCUMENTED
                .iter()
                .find(|check| check.name == "refused")
                .map(|check| check.value),
            Some("true")
        );
    }

    #[test]
    fn arguments_are_validated() {
        assert_eq!(
            <Vec<u16>>::build(RawStatus::Any(vec![421, 400]), "status"),
            Ok(vec![421, 400])
        );
        assert!(<Vec<u16>>::build(RawStatus::One(99), "status").is_err());
        assert!(<Vec<u16>>::build(RawStatus::Any(Vec::new()), "status").is_err());
        assert_eq!(
            u32::build(0, "at_most_requests"),
            Err("at_most_requests is at least 1".to_owned())
        );
        assert!(Role::build("tenant".to_owned(), "served_by").is_err());
        assert!(stated(false).is_err());
    }
}
