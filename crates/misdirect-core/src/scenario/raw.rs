//! The serde mirror of a scenario file: exactly what the YAML may say, with a span on every value
//! a diagnostic may need to point at. Unknown keys are errors; an expectation's are kept with
//! their spans for `build` to report, since its keys are its checks'. Nothing here is validated:
//! that is `build`'s job, which turns this into the model.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use crate::check::client::RawClientCheck;
use crate::check::{RawCheck, RawChecks};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub(super) title: Spanned<String>,
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) gateway: bool,
    pub(super) requirements: Spanned<Vec<RawRequirement>>,
    pub(super) protocols: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) detects: Vec<RawDetection>,
    #[serde(default)]
    pub(super) steps: Option<Spanned<Vec<RawStep>>>,
    #[serde(default)]
    pub(super) client: Option<Spanned<RawClient>>,
}

/// A client-under-test scenario: how the origin answers, what the client fetches, what must hold.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClient {
    #[serde(default)]
    pub(super) origin: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) origin_frame: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub(super) origin_frame_stream: u32,
    pub(super) fetch: Vec<RawFetch>,
    pub(super) expect: Vec<RawExpectation<RawClientCheck>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFetch {
    pub(super) url: Spanned<String>,
    #[serde(default)]
    pub(super) method: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) body: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequirement {
    pub(super) id: Spanned<String>,
    pub(super) level: Spanned<String>,
    /// Defaults to the catalogue entry's section.
    #[serde(default)]
    pub(super) section: Option<String>,
    /// Why the level differs from the catalogue's, where it does.
    #[serde(default)]
    pub(super) because: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDetection {
    pub(super) fault: Spanned<String>,
    pub(super) verdict: Spanned<String>,
    #[serde(default)]
    pub(super) protocols: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawStep {
    Connect(Box<RawConnect>),
    Send(Box<RawRequest>),
    Burst(RawBurst),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConnect {
    pub(super) name: Spanned<String>,
    pub(super) sni: Spanned<String>,
    #[serde(default)]
    pub(super) client_certificate: Option<Spanned<RawClientCertificate>>,
    #[serde(default)]
    pub(super) resume: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) protocol: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) via_alt_svc: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) tls: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBurst {
    pub(super) on: Spanned<String>,
    #[serde(default)]
    pub(super) rounds: Option<Spanned<u32>>,
    pub(super) requests: Vec<RawRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequest {
    #[serde(default)]
    pub(super) on: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) method: Option<Spanned<String>>,
    pub(super) authority: Spanned<RawAuthority>,
    #[serde(default)]
    pub(super) host: Option<Spanned<RawAuthority>>,
    #[serde(default)]
    pub(super) second_authority: Option<Spanned<RawAuthority>>,
    #[serde(default)]
    pub(super) form: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) scheme: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) path: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) body: Option<String>,
    #[serde(default)]
    pub(super) expect: Vec<RawExpectation<RawCheck>>,
}

/// `authority: primary` or `authority: {role: primary, port: other, uppercase: true}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawAuthority {
    Role(String),
    Detailed(RawAuthorityDetail),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAuthorityDetail {
    pub(super) role: String,
    #[serde(default)]
    pub(super) port: Option<String>,
    #[serde(default)]
    pub(super) uppercase: bool,
    #[serde(default)]
    pub(super) trailing_dot: bool,
    #[serde(default)]
    pub(super) userinfo: Option<String>,
    #[serde(default)]
    pub(super) suffix: Option<String>,
}

/// One expectation: the requirement it cites, where it applies, and its checks (exactly one,
/// which the loader demands), each read by the family that declares it. The valid keys in an
/// error message come from the same declarations.
#[derive(Debug)]
pub(super) struct RawExpectation<C> {
    pub(super) requirement: Spanned<String>,
    pub(super) protocols: Option<Vec<Spanned<String>>>,
    pub(super) if_advertised: Option<Spanned<bool>>,
    pub(super) if_uncovered: Option<Spanned<bool>>,
    pub(super) premise: Option<Spanned<RawPremise>>,
    pub(super) checks: Vec<C>,
    /// The keys of the fields above that the expectation has, where they stand: a client
    /// expectation takes `requirement` only.
    pub(super) fields: Vec<Spanned<String>>,
    /// Keys that are neither fields nor checks, which the loader reports where they stand.
    pub(super) unknown: Vec<Spanned<String>>,
}

/// `client_certificate: true` (the `mtls` tenant's), `false`, or the mTLS role whose client CA
/// issued the certificate to present.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawClientCertificate {
    Stated(bool),
    IssuedFor(String),
}

/// `premise: true`, or `premise: <scenario ID>` naming the case that judges its cause.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawPremise {
    Stated(bool),
    JudgedBy(String),
}

/// The fields an expectation about one request takes.
pub const REQUEST_FIELDS: &[&str] = &[
    "requirement",
    "protocols",
    "if_advertised",
    "if_uncovered",
    "premise",
];
/// The fields a client expectation takes: it is about the whole case.
pub const CLIENT_FIELDS: &[&str] = &["requirement", "protocols"];

impl<C: RawChecks> RawExpectation<C> {
    /// Every key an expectation with these `fields` may have: the fields, then the checks' names.
    pub(super) fn keys(fields: &[&'static str]) -> Vec<&'static str> {
        let mut keys = fields.to_vec();
        keys.extend(C::names());
        keys
    }
}

impl<'de, C: RawChecks> Deserialize<'de> for RawExpectation<C> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ExpectationVisitor(PhantomData))
    }
}

struct ExpectationVisitor<C>(PhantomData<C>);

impl<'de, C: RawChecks> Visitor<'de> for ExpectationVisitor<C> {
    type Value = RawExpectation<C>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an expectation: a requirement and one check")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut requirement = None;
        let mut protocols = None;
        let mut if_advertised = None;
        let mut if_uncovered = None;
        let mut premise = None;
        let mut checks = Vec::new();
        let mut fields = Vec::new();
        let mut unknown = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            if REQUEST_FIELDS.contains(&key.value.as_str()) {
                fields.push(key.clone());
            }
            match key.value.as_str() {
                "requirement" if requirement.is_some() => {
                    return Err(de::Error::duplicate_field("requirement"));
                }
                "requirement" => requirement = Some(map.next_value()?),
                "protocols" if protocols.is_some() => {
                    return Err(de::Error::duplicate_field("protocols"));
                }
                "protocols" => protocols = Some(map.next_value()?),
                "if_advertised" if if_advertised.is_some() => {
                    return Err(de::Error::duplicate_field("if_advertised"));
                }
                "if_advertised" => if_advertised = Some(map.next_value()?),
                "if_uncovered" if if_uncovered.is_some() => {
                    return Err(de::Error::duplicate_field("if_uncovered"));
                }
                "if_uncovered" => if_uncovered = Some(map.next_value()?),
                "premise" if premise.is_some() => {
                    return Err(de::Error::duplicate_field("premise"));
                }
                "premise" => premise = Some(map.next_value()?),
                name => match C::next_value(name, &mut map) {
                    Some(check) => checks.push(check?),
                    None => {
                        map.next_value::<de::IgnoredAny>()?;
                        unknown.push(key);
                    }
                },
            }
        }
        Ok(RawExpectation {
            requirement: requirement.ok_or_else(|| de::Error::missing_field("requirement"))?,
            protocols,
            if_advertised,
            if_uncovered,
            premise,
            checks,
            fields,
            unknown,
        })
    }
}
