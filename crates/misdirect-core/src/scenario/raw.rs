//! The serde mirror of a scenario file: exactly what the YAML may say, with a span on every value
//! a diagnostic may need to point at. Unknown keys are errors. Nothing here is validated: that is
//! `load`'s job, which turns this into the model.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

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
    pub(super) expect: Vec<RawClientExpectation>,
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
pub(super) struct RawClientExpectation {
    pub(super) requirement: Spanned<String>,
    #[serde(default)]
    pub(super) coalesced_only_covered: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) retried_on_new_connection: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) not_retried_on_same_connection: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) at_most_requests: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) body_replayed: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) coalesced_only_in_origin_set: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) connection_reused: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequirement {
    pub(super) id: Spanned<String>,
    pub(super) level: Spanned<String>,
    pub(super) section: String,
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
    pub(super) client_certificate: bool,
    #[serde(default)]
    pub(super) resume: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) protocol: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) via_alt_svc: Option<Spanned<String>>,
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
    pub(super) form: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) path: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) body: Option<String>,
    #[serde(default)]
    pub(super) expect: Vec<RawExpectation>,
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpectation {
    pub(super) requirement: Spanned<String>,
    #[serde(default)]
    pub(super) protocols: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub(super) if_advertised: bool,
    #[serde(default)]
    pub(super) served_by: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) still_served_by: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) tenant_if_served: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) not_served_by: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) refused: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) uncovered_refused: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) status: Option<Spanned<RawStatus>>,
    #[serde(default)]
    pub(super) malformed: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) not_cacheable: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) certificate_covers: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) advertised_served_by: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) advertised_covered: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) reached_upstream: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) reached_no_upstream: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) upstream_sni: Option<Spanned<String>>,
}

/// `status: 421` or `status: [400, 421]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawStatus {
    One(u16),
    Any(Vec<u16>),
}
