//! `misdirect audit`'s plan and judgement: which names to ask a live edge for, on which
//! connection, from nothing but the URL and the certificate the edge presented, and what each
//! answer means. An audit has no roles, no tenants that name themselves and no PKI of
//! misdirect's, so it judges only what the certificate and the edge's own answers say:
//!
//! 1. A name the certificate of a connection does not cover must be refused on it (RFC 9110
//!    §7.4): content for it is a FAIL (R9110-7.4-b); a refusal other than 421 is a WARN
//!    (R9110-7.4-c). The names asked are the user's other hostnames (`--also`) and a label
//!    misdirect makes up under the host's parent domain, never covered by the certificate.
//! 2. A name the certificate covers may be served on the host's connection. Who answered is
//!    unknowable, so the answer is compared with the answer on a fresh connection made for that
//!    name (status, identifying headers, body digest), and again on a second fresh connection
//!    when they differ: content that a fresh connection gives twice and the shared connection
//!    does not is reported as "differs from a fresh connection" (WARN, R9110-4.3.3-a judged at
//!    SHOULD), never as another tenant's; content that differs between two fresh connections is
//!    dynamic, and only status and identifying headers are compared.
//! 3. Wildcard SANs name no host to ask for, and names past `max_names` are not asked; the plan
//!    says which were left out and why.

use std::fmt;

use crate::deployment::{normalize_host, san_covers};
use crate::observe::{ExchangeOutcome, Identity, Response};
use crate::outcome::{CaseResult, Cited, Finding};
use crate::protocol::Protocol;
use crate::verdict::{Level, Verdict};

/// Why a name that must be refused is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uncovered {
    /// One of the user's own hostnames (`--also`).
    Also,
    /// A label misdirect made up under the host's parent domain.
    MadeUp,
}

/// The names an audit asks for, from the host and the certificate its connection presented.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Names the certificate covers, besides the host: asked on the host's connection and on
    /// fresh connections of their own.
    pub covered: Vec<String>,
    /// Names it does not cover: asked on the host's connection, to be refused.
    pub uncovered: Vec<(String, Uncovered)>,
    /// Names not asked, with the reason.
    pub left_out: Vec<(String, String)>,
}

impl Plan {
    /// Plans an audit of `host`, whose connection presented `sans`; `also` are the user's other
    /// hostnames, `nonce` a random label part (hex) for the made-up name; at most `max_names`
    /// covered names are asked.
    pub fn new(
        host: &str,
        sans: &[String],
        also: &[String],
        nonce: &str,
        max_names: usize,
    ) -> Self {
        let host = normalize_host(host);
        let mut plan = Self::default();
        for san in sans {
            let name = normalize_host(san);
            if name == host || plan.covered.contains(&name) {
                continue;
            }
            if name.starts_with("*.") {
                plan.left_out.push((
                    name,
                    "a wildcard names no host to ask for; the made-up name tests what it does not cover".to_owned(),
                ));
            } else if name.parse::<core::net::IpAddr>().is_ok() {
                plan.left_out
                    .push((name, "an IP address SAN; names are asked for".to_owned()));
            } else if plan.covered.len() >= max_names {
                plan.left_out
                    .push((name, format!("past --max-names {max_names}")));
            } else {
                plan.covered.push(name);
            }
        }
        let covers = |name: &str| sans.iter().any(|san| san_covers(san, name));
        for name in also {
            let name = normalize_host(name);
            if name == host || plan.uncovered.iter().any(|(known, _)| *known == name) {
                continue;
            }
            if covers(&name) {
                if !plan.covered.contains(&name) {
                    plan.covered.push(name);
                }
            } else {
                plan.uncovered.push((name, Uncovered::Also));
            }
        }
        if let Some(made_up) = made_up_name(&host, nonce, covers) {
            plan.uncovered.push((made_up, Uncovered::MadeUp));
        }
        plan
    }
}

/// A name under the host's parent domain that the certificate does not cover: one made-up
/// label, or two where a wildcard covers one.
fn made_up_name(host: &str, nonce: &str, covers: impl Fn(&str) -> bool) -> Option<String> {
    let parent = host.split_once('.').map_or(host, |(_, parent)| parent);
    let label = format!("misdirect-{nonce}");
    [
        format!("{label}.{parent}"),
        format!("{label}.{label}.{parent}"),
    ]
    .into_iter()
    .find(|name| !covers(name))
}

/// What identifies an answer: its status, the tenant it names if it names one, and the
/// response's [`Identity`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub status: u16,
    pub tenant: Option<String>,
    pub identity: Identity,
}

impl Fingerprint {
    pub fn of(response: &Response) -> Self {
        Self {
            status: response.status,
            tenant: response.tenant.clone(),
            identity: response.identity.clone(),
        }
    }

    /// How `self` differs from `other`, in words; empty when it does not. With `bodies`
    /// false, only status, tenant marker and identifying headers are compared.
    fn differences(&self, other: &Self, bodies: bool) -> Vec<String> {
        let mut differences = Vec::new();
        if self.status != other.status {
            differences.push(format!(
                "status {} instead of {}",
                self.status, other.status
            ));
        }
        if self.tenant != other.tenant {
            differences.push(format!(
                "tenant marker {} instead of {}",
                self.tenant.as_deref().unwrap_or("(none)"),
                other.tenant.as_deref().unwrap_or("(none)")
            ));
        }
        for name in Identity::HEADERS {
            let (mine, theirs) = (self.identity.header(name), other.identity.header(name));
            if mine != theirs {
                differences.push(format!(
                    "{name} {} instead of {}",
                    mine.unwrap_or("(none)"),
                    theirs.unwrap_or("(none)")
                ));
            }
        }
        if bodies && self.identity.body_digest != other.identity.body_digest {
            differences.push(format!(
                "a body of {} bytes unlike the {} bytes",
                self.identity.body_length, other.identity.body_length
            ));
        }
        differences
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.status)?;
        if let Some(tenant) = &self.tenant {
            write!(f, ", tenant marker {tenant}")?;
        }
        for (name, value) in &self.identity.headers {
            write!(f, ", {name}: {value}")?;
        }
        write!(
            f,
            ", body {} bytes #{:016x}",
            self.identity.body_length, self.identity.body_digest
        )
    }
}

/// A case of an audit: `audit/<host>/<check>/<name>` on one protocol.
fn case(
    host: &str,
    check: &str,
    name: &str,
    protocol: Protocol,
    title: String,
    requirements: Vec<Cited>,
    findings: Vec<Finding>,
) -> CaseResult {
    let verdict = Finding::gravest(&findings);
    let scenario = format!("audit/{host}/{check}/{name}");
    CaseResult {
        name: format!("{scenario} [{}]", protocol.key()),
        scenario,
        suite: "audit".to_owned(),
        title,
        description: None,
        protocol,
        requirements,
        location: "misdirect audit".to_owned(),
        verdict,
        findings,
        duration: std::time::Duration::ZERO,
        transcript: crate::observe::Transcript::default(),
    }
}

fn finding(
    verdict: Verdict,
    requirement: Option<Cited>,
    expected: &str,
    observed: String,
) -> Finding {
    Finding {
        verdict,
        requirement,
        expected: expected.to_owned(),
        observed,
        location: None,
    }
}

/// Step 1: `name`, which the certificate of `host`'s connection does not cover, asked on it.
pub fn judge_uncovered(
    host: &str,
    name: &str,
    why: &Uncovered,
    protocol: Protocol,
    outcome: &ExchangeOutcome,
) -> CaseResult {
    let asked = match why {
        Uncovered::Also => "one of your hostnames",
        Uncovered::MadeUp => "a name misdirect made up",
    };
    let title = format!(
        "{name} ({asked}, not covered by {host}'s certificate) is refused on {host}'s connection"
    );
    let must = Cited::from_catalogue("R9110-7.4-b", Level::Must);
    let should = Cited::from_catalogue("R9110-7.4-c", Level::Should);
    let findings = match outcome.refused() {
        Some(false) => vec![finding(
            Verdict::Fail,
            Some(must.clone()),
            "refused: the connection's certificate does not cover the name",
            format!("served: {outcome}"),
        )],
        Some(true) => match outcome {
            ExchangeOutcome::Response(response) if response.status == 421 => Vec::new(),
            _ => vec![finding(
                Verdict::Warn,
                Some(should.clone()),
                "421, so that clients retry on a connection of the name's own",
                format!("{outcome}"),
            )],
        },
        None => vec![finding(
            Verdict::Error,
            None,
            "an answer from the edge",
            format!("{outcome}"),
        )],
    };
    case(
        host,
        "uncovered",
        name,
        protocol,
        title,
        vec![must, should],
        findings,
    )
}

/// What one request for a covered name got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    Fingerprint(Fingerprint),
    /// No answer that can be compared: the outcome in words.
    Not(String),
}

/// Step 2: `name`, covered by `host`'s certificate, asked on `host`'s connection (`shared`)
/// and on fresh connections made for it (`fresh`, then `again` when they differ).
pub fn judge_covered(
    host: &str,
    name: &str,
    protocol: Protocol,
    shared: &Answered,
    fresh: &Answered,
    again: Option<&Answered>,
) -> CaseResult {
    let title = format!(
        "{name}, covered by {host}'s certificate, gets on {host}'s connection what a fresh connection gets"
    );
    let should = Cited::from_catalogue("R9110-4.3.3-a", Level::Should);
    let findings = match (shared, fresh) {
        (Answered::Fingerprint(shared), Answered::Fingerprint(fresh)) => {
            let dynamic = match again {
                Some(Answered::Fingerprint(again)) => !fresh.differences(again, true).is_empty(),
                _ => false,
            };
            let differences = shared.differences(fresh, !dynamic);
            if differences.is_empty() {
                Vec::new()
            } else {
                vec![finding(
                    Verdict::Warn,
                    Some(should.clone()),
                    "the answer a fresh connection made for the name gets",
                    format!(
                        "differs from a fresh connection: {}{} (shared: {shared}; fresh: {fresh})",
                        differences.join(", "),
                        if dynamic {
                            "; bodies not compared, they differ between fresh connections"
                        } else {
                            ""
                        }
                    ),
                )]
            }
        }
        (_, Answered::Not(why)) => vec![finding(
            Verdict::Error,
            None,
            "an answer on a fresh connection made for the name, to compare with",
            why.clone(),
        )],
        // Refusing a covered name on another name's connection is allowed (a MAY).
        (Answered::Not(why), Answered::Fingerprint(_)) => vec![finding(
            Verdict::Info,
            None,
            "the name served on the host's connection, or refused there",
            format!("not served on {host}'s connection: {why}"),
        )],
    };
    case(
        host,
        "covered",
        name,
        protocol,
        title,
        vec![should],
        findings,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sans(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn the_plan_asks_covered_names_and_made_up_and_other_names() {
        let plan = Plan::new(
            "www.example.com",
            &sans(&[
                "www.example.com",
                "api.example.com",
                "*.cdn.example.com",
                "192.0.2.1",
            ]),
            &sans(&["shop.example.net", "API.example.com."]),
            "0a1b",
            10,
        );
        assert_eq!(plan.covered, sans(&["api.example.com"]));
        assert_eq!(
            plan.uncovered,
            vec![
                ("shop.example.net".to_owned(), Uncovered::Also),
                ("misdirect-0a1b.example.com".to_owned(), Uncovered::MadeUp),
            ]
        );
        assert_eq!(plan.left_out.len(), 2);
    }

    #[test]
    fn the_made_up_name_escapes_a_wildcard_and_the_maximum_holds() {
        let plan = Plan::new(
            "www.example.com",
            &sans(&["*.example.com", "a.example.org", "b.example.org"]),
            &[],
            "ff",
            1,
        );
        assert_eq!(plan.covered, sans(&["a.example.org"]));
        assert_eq!(
            plan.uncovered,
            vec![(
                "misdirect-ff.misdirect-ff.example.com".to_owned(),
                Uncovered::MadeUp
            )]
        );
        assert!(
            plan.left_out
                .iter()
                .any(|(name, why)| name == "b.example.org" && why.contains("--max-names"))
        );
    }

    fn response(status: u16) -> ExchangeOutcome {
        ExchangeOutcome::Response(Response::named(status, None))
    }

    #[test]
    fn an_uncovered_name_must_be_refused_ideally_with_421() {
        let judge = |outcome| {
            judge_uncovered(
                "a.test",
                "c.test",
                &Uncovered::Also,
                Protocol::Http2,
                &outcome,
            )
            .verdict
        };
        assert_eq!(judge(response(421)), Verdict::Pass);
        assert_eq!(judge(response(404)), Verdict::Warn);
        assert_eq!(judge(response(200)), Verdict::Fail);
        assert_eq!(
            judge(ExchangeOutcome::TimedOut {
                after: std::time::Duration::from_secs(1)
            }),
            Verdict::Error
        );
    }

    #[test]
    fn a_covered_name_is_compared_with_fresh_connections() {
        let page = |body: &[u8], server: &str| {
            Answered::Fingerprint(Fingerprint {
                status: 200,
                tenant: None,
                identity: Identity::new(vec![("server".to_owned(), server.to_owned())], body),
            })
        };
        let judge = |shared: &Answered, fresh: &Answered, again: Option<&Answered>| {
            judge_covered("a.test", "b.test", Protocol::Http2, shared, fresh, again)
        };
        let bravo = page(b"tenant=bravo", "edge");
        assert_eq!(judge(&bravo, &bravo, None).verdict, Verdict::Pass);
        let alpha = page(b"tenant=alpha", "edge");
        let differs = judge(&alpha, &bravo, Some(&bravo));
        assert_eq!(differs.verdict, Verdict::Warn);
        assert!(
            differs.findings[0]
                .observed
                .starts_with("differs from a fresh connection")
        );
        assert!(!differs.findings[0].observed.contains("tenant "));
        // Bodies that differ between two fresh connections are dynamic: headers alone count.
        let dynamic = judge(&alpha, &bravo, Some(&page(b"tenant=bravo 2", "edge")));
        assert_eq!(dynamic.verdict, Verdict::Pass);
        let other_server = judge(&page(b"x", "other"), &bravo, Some(&page(b"y", "edge")));
        assert_eq!(other_server.verdict, Verdict::Warn);
        let refused = Answered::Not("421".to_owned());
        assert_eq!(judge(&refused, &bravo, None).verdict, Verdict::Info);
        assert_eq!(judge(&bravo, &refused, None).verdict, Verdict::Error);
    }
}
