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
//!    dynamic, and only status and identifying headers are compared. Content on the shared
//!    connection for a name whose own connections the edge refuses at the handshake (it wants
//!    a client certificate, say) is its SNI policy bypassed: a FAIL (R6066-3-d).
//! 3. Wildcard SANs name no host to ask for, and names past `max_names` are not asked; the plan
//!    says which were left out and why, and [`Plan::fit`] keeps it within the request budget.
//! 4. A refusal proves something only when the edge serves its own host on the same kind of
//!    connection: the host's own answer ([`judge_own`]) is the baseline, and a refusal that
//!    looks exactly like it (the same status, or the edge refusing its host too) is an ERROR,
//!    never a PASS: an edge that serves nothing refuses every name.
//! 5. Without SNI the edge presents its default certificate; a name it does not cover must be
//!    refused on that connection as on any other, and refusing the handshake is refusing too.

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
    /// Asked on a connection made without SNI, whose (default) certificate does not cover it.
    WithoutSni,
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

    /// The most requests the plan takes on each protocol: the host's own, each uncovered
    /// name once, and each covered name on the shared connection and on up to two fresh ones.
    pub fn requests_per_protocol(&self) -> usize {
        1 + self.uncovered.len() + 3 * self.covered.len()
    }

    /// Leaves names and protocols out until the protocols and `extra` further requests (the
    /// probe without SNI) fit in `budget`: covered names first, from the last, then protocols,
    /// from the last, then the user's other hostnames; the made-up name and one protocol stay,
    /// as the one check every audit makes. Returns how many of the `protocols` fit.
    pub fn fit(&mut self, budget: usize, mut protocols: usize, extra: usize) -> usize {
        let total =
            |plan: &Self, protocols: usize| plan.requests_per_protocol() * protocols.max(1) + extra;
        let reason = format!("past --max-requests {budget}");
        while total(self, protocols) > budget {
            if let Some(name) = self.covered.pop() {
                self.left_out.push((name, reason.clone()));
            } else if protocols > 1 {
                protocols -= 1;
            } else if let Some(at) = self
                .uncovered
                .iter()
                .rposition(|(_, why)| *why == Uncovered::Also)
            {
                let (name, _) = self.uncovered.remove(at);
                self.left_out.push((name, reason.clone()));
            } else {
                break;
            }
        }
        protocols.max(1)
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

/// A case of an audit: `audit/<host>/<check>` on one protocol, where the check names the name
/// it asks for when it is the user's or the certificate's (`uncovered/c.example`), and not when
/// misdirect chose it (`uncovered/made-up`, `without-sni`): case IDs stay the same from one
/// audit to the next, for CI's history.
fn case(
    host: &str,
    check: &str,
    protocol: Protocol,
    title: String,
    requirements: Vec<Cited>,
    findings: Vec<Finding>,
) -> CaseResult {
    let verdict = Finding::gravest(&findings);
    let scenario = format!("audit/{host}/{check}");
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

/// A case of an audit that could not be judged: ERROR (could not test) or SKIP (does not
/// apply), with the reason.
pub fn unable(
    host: &str,
    check: &str,
    protocol: Protocol,
    title: String,
    verdict: Verdict,
    reason: String,
) -> CaseResult {
    let findings = vec![finding(verdict, None, "a connection to audit", reason)];
    case(host, check, protocol, title, Vec::new(), findings)
}

/// Step 4: the host itself, asked on its own connection: the baseline every refusal is
/// compared with. Any status but 421 is an answer of its own; 421, a reset or no answer leaves
/// nothing to compare with.
pub fn judge_own(host: &str, protocol: Protocol, outcome: &ExchangeOutcome) -> CaseResult {
    let title = format!("{host} answers for itself on its own connection");
    let findings = match own_status(outcome) {
        Some(_) => Vec::new(),
        None => vec![finding(
            Verdict::Error,
            None,
            "an answer for the URL itself (any status but 421), to compare refusals with",
            format!("{outcome}: give a URL the edge serves"),
        )],
    };
    case(host, "own", protocol, title, Vec::new(), findings)
}

/// The status the edge gave its own host, when it answered with one of its own (not 421).
fn own_status(outcome: &ExchangeOutcome) -> Option<u16> {
    match outcome {
        ExchangeOutcome::Response(response) if response.status != 421 => Some(response.status),
        _ => None,
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

/// Steps 1, 4 and 5: `name`, which the certificate of the connection does not cover, asked on
/// it; `own` is what the host got on its own connection over the same protocol.
pub fn judge_uncovered(
    host: &str,
    name: &str,
    why: &Uncovered,
    protocol: Protocol,
    outcome: &ExchangeOutcome,
    own: &ExchangeOutcome,
) -> CaseResult {
    let title = match why {
        Uncovered::Also => format!(
            "{name} (one of your hostnames, not covered by {host}'s certificate) is refused on {host}'s connection"
        ),
        Uncovered::MadeUp => format!(
            "{name} (a name misdirect made up, not covered by {host}'s certificate) is refused on {host}'s connection"
        ),
        Uncovered::WithoutSni => format!(
            "{name} is refused on a connection made without SNI, whose certificate does not cover it"
        ),
    };
    let must = Cited::from_catalogue("R9110-7.4-b", Level::Must);
    let should = Cited::from_catalogue("R9110-7.4-c", Level::Should);
    let status = match outcome {
        ExchangeOutcome::Response(response) => Some(response.status),
        _ => None,
    };
    let refusal_like_own = match own_status(own) {
        // The edge answered its host with a status of its own: a refusal with the same status
        // may be about the path, not the name; 421 always says "not here".
        Some(own) => status == Some(own) && own != 421,
        // The edge did not answer its own host: no refusal proves anything.
        None => true,
    };
    let handshake_refused = matches!(outcome, ExchangeOutcome::HandshakeRefused { .. });
    let findings = match outcome.refused() {
        Some(false) => vec![finding(
            Verdict::Fail,
            Some(must.clone()),
            "refused: the connection's certificate does not cover the name",
            format!("served: {outcome}"),
        )],
        Some(true) if refusal_like_own && !handshake_refused => vec![finding(
            Verdict::Error,
            None,
            "a refusal unlike the host's own answer",
            format!(
                "{outcome}, and the host itself got {own}: nothing shows that the edge told the names apart"
            ),
        )],
        // Refusing a handshake without SNI refuses every name on it, in the edge's own words.
        Some(true) if handshake_refused && *why == Uncovered::WithoutSni => Vec::new(),
        Some(true) if status == Some(421) => Vec::new(),
        Some(true) => vec![finding(
            Verdict::Warn,
            Some(should.clone()),
            "421, so that clients retry on a connection of the name's own",
            format!("{outcome}"),
        )],
        None => vec![finding(
            Verdict::Error,
            None,
            "an answer from the edge",
            format!("{outcome}"),
        )],
    };
    let check = match why {
        Uncovered::Also => format!("uncovered/{name}"),
        Uncovered::MadeUp => "uncovered/made-up".to_owned(),
        Uncovered::WithoutSni => "without-sni".to_owned(),
    };
    case(host, &check, protocol, title, vec![must, should], findings)
}

/// What one request for a covered name got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// A response of the edge's own (any status but 421).
    Fingerprint(Fingerprint),
    /// The edge refused it in its own words (421, a reset, a refused handshake), in words;
    /// `at_handshake` when it refused the connection itself.
    Refused { said: String, at_handshake: bool },
    /// No answer from the edge (a timeout, a dropped connection): the outcome in words.
    Not(String),
}

impl Answered {
    /// What a request's outcome gives to compare.
    pub fn of(outcome: &ExchangeOutcome) -> Self {
        match outcome {
            ExchangeOutcome::Response(response) if response.status != 421 => {
                Self::Fingerprint(Fingerprint::of(response))
            }
            other if other.refused() == Some(true) => Self::Refused {
                said: other.to_string(),
                at_handshake: matches!(other, ExchangeOutcome::HandshakeRefused { .. }),
            },
            other => Self::Not(other.to_string()),
        }
    }
}

impl fmt::Display for Answered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fingerprint(fingerprint) => write!(f, "{fingerprint}"),
            Self::Refused { said, .. } | Self::Not(said) => f.write_str(said),
        }
    }
}

/// Step 2: `name`, covered by `host`'s certificate, asked on `host`'s connection (`shared`)
/// and on fresh connections made for it (`fresh`, then `again` when they differ). Content on
/// the shared connection for a name whose own connections the edge refuses at the handshake
/// (a client certificate it requires, say) is a policy chosen by SNI bypassed: a FAIL
/// (R6066-3-d).
pub fn judge_covered(
    host: &str,
    name: &str,
    protocol: Protocol,
    (shared, fresh, again): (&Answered, &Answered, Option<&Answered>),
    own: &ExchangeOutcome,
) -> CaseResult {
    let title = format!(
        "{name}, covered by {host}'s certificate, gets on {host}'s connection what a fresh connection gets"
    );
    let should = Cited::from_catalogue("R9110-4.3.3-a", Level::Should);
    let must = Cited::from_catalogue("R6066-3-d", Level::Must);
    let differs = |detail: String| {
        vec![finding(
            Verdict::Warn,
            Some(should.clone()),
            "the answer a fresh connection made for the name gets",
            format!("differs from a fresh connection: {detail}"),
        )]
    };
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
                differs(format!(
                    "{}{} (shared: {shared}; fresh: {fresh})",
                    differences.join(", "),
                    if dynamic {
                        "; bodies not compared, they differ between fresh connections"
                    } else {
                        ""
                    }
                ))
            }
        }
        (
            Answered::Fingerprint(_),
            Answered::Refused {
                said,
                at_handshake: true,
            },
        ) => {
            vec![finding(
                Verdict::Fail,
                Some(must.clone()),
                "refused, as on a connection of the name's own: the edge applies a policy to it by SNI",
                format!("served on {host}'s connection: {shared}; a connection of its own: {said}"),
            )]
        }
        (Answered::Fingerprint(_), Answered::Refused { .. }) => {
            differs(format!("shared: {shared}; fresh: {fresh}"))
        }
        (_, Answered::Not(why)) | (Answered::Not(why), _) => vec![finding(
            Verdict::Error,
            None,
            "an answer on the host's connection and on a fresh connection made for the name",
            why.clone(),
        )],
        // Refusing a covered name on another name's connection is allowed (a MAY).
        (Answered::Refused { said, .. }, Answered::Fingerprint(_)) => vec![finding(
            Verdict::Info,
            None,
            "the name served on the host's connection, or refused there",
            format!("not served on {host}'s connection: {said}"),
        )],
        // Refused everywhere, in the edge's own words, by an edge that serves its host.
        (Answered::Refused { .. }, Answered::Refused { .. }) if own_status(own).is_some() => {
            Vec::new()
        }
        (Answered::Refused { said, .. }, Answered::Refused { .. }) => vec![finding(
            Verdict::Error,
            None,
            "an edge that serves its own host, for refusals to mean something",
            format!("{said} on both connections, and the host itself got {own}"),
        )],
    };
    case(
        host,
        &format!("covered/{name}"),
        protocol,
        title,
        vec![should, must],
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
        let judge = |why: &Uncovered, outcome, own| {
            judge_uncovered("a.test", "c.test", why, Protocol::Http2, &outcome, &own).verdict
        };
        let also = |outcome| judge(&Uncovered::Also, outcome, response(200));
        assert_eq!(also(response(421)), Verdict::Pass);
        assert_eq!(also(response(404)), Verdict::Warn);
        assert_eq!(also(response(200)), Verdict::Fail);
        assert_eq!(
            also(ExchangeOutcome::TimedOut {
                after: std::time::Duration::from_secs(1)
            }),
            Verdict::Error
        );
        let refused = || ExchangeOutcome::HandshakeRefused {
            detail: "TLS alert UnrecognisedName".to_owned(),
        };
        assert_eq!(also(refused()), Verdict::Warn);
        assert_eq!(
            judge(&Uncovered::WithoutSni, refused(), response(200)),
            Verdict::Pass
        );
    }

    #[test]
    fn a_refusal_proves_nothing_when_the_edge_refuses_its_host_alike() {
        let judge = |outcome, own| {
            judge_uncovered(
                "a.test",
                "c.test",
                &Uncovered::MadeUp,
                Protocol::Http2,
                &outcome,
                &own,
            )
            .verdict
        };
        // The host's URL is a 404: a 421 still tells the names apart, another 404 does not.
        assert_eq!(judge(response(421), response(404)), Verdict::Pass);
        assert_eq!(judge(response(404), response(404)), Verdict::Error);
        assert_eq!(judge(response(403), response(404)), Verdict::Warn);
        // An edge that refuses its own host with 421 proves nothing by refusing others.
        assert_eq!(judge(response(421), response(421)), Verdict::Error);
        assert_eq!(judge(response(200), response(421)), Verdict::Fail);
        let own = |outcome| judge_own("a.test", Protocol::Http2, &outcome).verdict;
        assert_eq!(own(response(404)), Verdict::Pass);
        assert_eq!(own(response(421)), Verdict::Error);
    }

    #[test]
    fn the_plan_fits_the_budget_covered_names_first() {
        let mut plan = Plan::new(
            "a.test",
            &sans(&["a.test", "b.test", "d.test", "e.test"]),
            &sans(&["c.test", "x.test"]),
            "01",
            10,
        );
        assert_eq!(plan.requests_per_protocol(), 1 + 3 + 9);
        assert_eq!(plan.fit(22, 2, 1), 2);
        assert_eq!(plan.covered, sans(&["b.test", "d.test"]));
        // Protocols go before the user's names.
        assert_eq!(plan.fit(8, 2, 1), 1);
        assert_eq!(plan.uncovered.len(), 3);
        assert_eq!(plan.fit(4, 2, 1), 1);
        assert!(plan.covered.is_empty());
        assert_eq!(
            plan.uncovered
                .iter()
                .map(|(name, _)| name.as_str())
                .collect::<Vec<_>>(),
            ["c.test", "misdirect-01.test"]
        );
        assert!(
            plan.left_out
                .iter()
                .any(|(name, why)| name == "x.test" && why == "past --max-requests 4")
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
            judge_covered(
                "a.test",
                "b.test",
                Protocol::Http2,
                (shared, fresh, again),
                &response(200),
            )
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
        let refused = Answered::of(&response(421));
        assert_eq!(judge(&refused, &bravo, None).verdict, Verdict::Info);
        assert_eq!(judge(&bravo, &refused, None).verdict, Verdict::Warn);
        assert_eq!(judge(&refused, &refused, None).verdict, Verdict::Pass);
        // An edge that refuses everything proves nothing by refusing a name twice.
        let refuses_everything = judge_covered(
            "a.test",
            "b.test",
            Protocol::Http2,
            (&refused, &refused, None),
            &response(421),
        );
        assert_eq!(refuses_everything.verdict, Verdict::Error);
        // A name whose own connections need what the shared one did not present (a client
        // certificate): served on the shared connection, the policy is bypassed.
        let certificate_required = Answered::of(&ExchangeOutcome::HandshakeRefused {
            detail: "TLS alert CertificateRequired".to_owned(),
        });
        assert_eq!(
            judge(&bravo, &certificate_required, None).verdict,
            Verdict::Fail
        );
        assert_eq!(
            judge(&refused, &certificate_required, None).verdict,
            Verdict::Pass
        );
        let silent = Answered::of(&ExchangeOutcome::TimedOut {
            after: std::time::Duration::from_secs(1),
        });
        assert_eq!(judge(&bravo, &silent, None).verdict, Verdict::Error);
        assert_eq!(judge(&silent, &bravo, None).verdict, Verdict::Error);
    }
}
