//! Verdicts from observations: pure, synchronous and deterministic.
//!
//! Each expectation that applies to the case's protocol is judged against the exchange it is
//! about. An unmet expectation becomes a finding whose verdict follows the cited requirement's
//! level; an expectation without the observation it needs becomes an ERROR, never a PASS; one
//! that cannot apply to this target is not applicable, and a case where nothing applied is SKIP.

use crate::deployment::fetch_path;
use crate::deployment::{Deployment, Role, normalize_host, parse_authority, san_covers};
use crate::observe::{ConnectionResult, Exchange, ExchangeOutcome, Observations, ServedRequest};
use crate::outcome::{Cited, Finding};
use crate::protocol::Protocol;
use crate::scenario::{Check, ClientCheck, ClientPlan, Expectation, Scenario, Step};
use crate::verdict::Verdict;

/// HTTP/2 error code PROTOCOL_ERROR (RFC 9113 §7) and HTTP/3 H3_MESSAGE_ERROR (RFC 9114 §8.1):
/// the stream errors for a malformed request. The code spaces do not overlap.
const PROTOCOL_ERROR: u64 = 0x1;
const H3_MESSAGE_ERROR: u64 = 0x10e;

/// A case's verdict and the findings behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
}

/// Judges `observations` of one run of `scenario` over `protocol`.
pub fn evaluate(
    scenario: &Scenario,
    protocol: Protocol,
    deployment: &Deployment,
    observations: &Observations,
) -> Evaluation {
    evaluate_steps(
        scenario,
        protocol,
        deployment,
        observations,
        scenario.steps.len(),
    )
}

/// Judges only the first `steps` steps: for a case that stopped early because the rest does not
/// apply to the target, what was already observed still counts.
pub fn evaluate_steps(
    scenario: &Scenario,
    protocol: Protocol,
    deployment: &Deployment,
    observations: &Observations,
    steps: usize,
) -> Evaluation {
    let mut tally = Tally::default();
    for (step_index, step) in scenario.steps.iter().enumerate().take(steps) {
        let Step::Send(send) = step else { continue };
        for (request_index, request) in send.requests.iter().enumerate() {
            for round in 0..send.rounds {
                let exchange = observations.exchanges.iter().find(|exchange| {
                    exchange.step == step_index
                        && exchange.request == request_index
                        && exchange.round == round
                });
                for expectation in request.expect.iter().filter(|e| e.applies_to(protocol)) {
                    let judged = match exchange {
                        Some(exchange) => {
                            judge(expectation, exchange, protocol, deployment, observations)
                        }
                        None => Judgement::Missing("the request was never sent".to_owned()),
                    };
                    let requirement = scenario.requirement(expectation.requirement);
                    let described = || describe(&expectation.check, deployment);
                    tally.add(requirement, &expectation.span, judged, described);
                }
            }
        }
    }
    if let Some(plan) = &scenario.client {
        for expectation in &plan.expect {
            let judged = judge_client(&expectation.check, plan, protocol, &observations.served);
            let requirement = scenario.requirement(expectation.requirement);
            let described = || describe_client(&expectation.check);
            tally.add(requirement, &expectation.span, judged, described);
        }
    }
    tally.finish()
}

/// Findings as expectations are judged, and the verdict they add up to.
#[derive(Default)]
struct Tally {
    findings: Vec<Finding>,
    skips: Vec<Finding>,
    met: usize,
}

impl Tally {
    fn add(
        &mut self,
        requirement: &crate::scenario::Requirement,
        span: &crate::scenario::Span,
        judged: Judgement,
        described: impl Fn() -> String,
    ) {
        let finding = |verdict, expected: String, observed: String| Finding {
            verdict,
            requirement: Some(Cited {
                id: requirement.id.clone(),
                level: requirement.level,
                section: requirement.section.clone(),
            }),
            expected,
            observed,
            location: Some(span.clone()),
        };
        match judged {
            Judgement::Met => self.met += 1,
            Judgement::Unmet { expected, observed } => self.findings.push(finding(
                requirement.level.verdict_when_unmet(),
                expected,
                observed,
            )),
            Judgement::Missing(observed) => {
                self.findings
                    .push(finding(Verdict::Error, described(), observed))
            }
            Judgement::NotApplicable(reason) => {
                self.skips.push(finding(Verdict::Skip, described(), reason))
            }
        }
    }

    fn finish(self) -> Evaluation {
        let verdict = self
            .findings
            .iter()
            .map(|finding| finding.verdict)
            .max()
            .unwrap_or(if self.met == 0 {
                Verdict::Skip
            } else {
                Verdict::Pass
            });
        let findings = if verdict == Verdict::Skip {
            self.skips
        } else {
            self.findings
        };
        Evaluation { verdict, findings }
    }
}

/// Judges what the origin saw of a client under test.
fn judge_client(
    check: &ClientCheck,
    plan: &ClientPlan,
    protocol: Protocol,
    served: &[ServedRequest],
) -> Judgement {
    if served.is_empty() {
        return Judgement::Missing(
            "the client under test sent no request to the origin".to_owned(),
        );
    }
    // A command client chooses its own protocol; a case is about the one it names.
    if served.iter().all(|request| request.protocol != protocol) {
        return Judgement::NotApplicable(format!(
            "the client under test spoke {}, not {protocol}",
            served[0].protocol
        ));
    }
    let expected = describe_client(check);
    let unmet = |observed: String| Judgement::Unmet {
        expected: expected.clone(),
        observed,
    };
    let of_fetch = |index: usize| -> Vec<&ServedRequest> {
        let path = fetch_path(index);
        served
            .iter()
            .filter(|request| request.path == path)
            .collect()
    };
    // (fetch, position among its requests) of every 421.
    let refusals: Vec<(usize, usize)> = (0..plan.fetches.len())
        .flat_map(|index| {
            of_fetch(index)
                .iter()
                .enumerate()
                .filter(|(_, request)| request.status == 421)
                .map(move |(position, _)| (index, position))
                .collect::<Vec<_>>()
        })
        .collect();
    match check {
        ClientCheck::CoalescedOnlyCovered | ClientCheck::CoalescedOnlyInOriginSet
            if (0..plan.fetches.len()).any(|index| of_fetch(index).is_empty()) =>
        {
            Judgement::Missing(
                "the client did not send every fetch: its connection choice for the rest is unknown".to_owned(),
            )
        }
        ClientCheck::CoalescedOnlyCovered => {
            let stray: Vec<String> = served
                .iter()
                .filter(|request| {
                    let host = request
                        .authority
                        .as_deref()
                        .map(host_of)
                        .unwrap_or_default();
                    !request.certificate.iter().any(|san| san_covers(san, &host))
                })
                .map(|request| {
                    format!(
                        "{} on connection {} (certificate {})",
                        request.authority.as_deref().unwrap_or("?"),
                        request.connection,
                        request.certificate.join(", ")
                    )
                })
                .collect();
            if stray.is_empty() {
                Judgement::Met
            } else {
                unmet(format!("sent {}", stray.join("; ")))
            }
        }
        ClientCheck::RetriedOnNewConnection | ClientCheck::NotRetriedOnSameConnection
            if refusals.is_empty() =>
        {
            Judgement::NotApplicable("the origin refused no request with 421".to_owned())
        }
        ClientCheck::RetriedOnNewConnection => {
            // The first refusal of each fetch is what a retry answers; an origin that refuses
            // the retry too is another matter (see at_most_requests).
            let missing: Vec<String> = (0..plan.fetches.len())
                .filter_map(|index| {
                    let requests = of_fetch(index);
                    let position = requests.iter().position(|request| request.status == 421)?;
                    let refused = requests[position];
                    let host = fetch_host(plan, index);
                    let retried = requests[position + 1..].iter().any(|later| {
                        later.connection != refused.connection && later.sni.as_deref() == Some(host)
                    });
                    (!retried).then(|| fetch_path(index))
                })
                .collect();
            if missing.is_empty() {
                Judgement::Met
            } else {
                unmet(format!(
                    "no retry on a new connection with the origin's SNI for {}",
                    missing.join(", ")
                ))
            }
        }
        ClientCheck::NotRetriedOnSameConnection => {
            let repeated: Vec<String> = refusals
                .iter()
                .filter(|(index, position)| {
                    let requests = of_fetch(*index);
                    let refused = requests[*position];
                    requests[position + 1..]
                        .iter()
                        .any(|later| later.connection == refused.connection)
                })
                .map(|(index, _)| fetch_path(*index))
                .collect();
            if repeated.is_empty() {
                Judgement::Met
            } else {
                unmet(format!(
                    "sent {} again on the connection that refused it",
                    repeated.join(", ")
                ))
            }
        }
        ClientCheck::AtMostRequests(limit) => {
            let excess: Vec<String> = (0..plan.fetches.len())
                .filter(|index| of_fetch(*index).len() > *limit as usize)
                .map(|index| format!("{} {} times", fetch_path(index), of_fetch(index).len()))
                .collect();
            if excess.is_empty() {
                Judgement::Met
            } else {
                unmet(format!("sent {}", excess.join(", ")))
            }
        }
        ClientCheck::CoalescedOnlyInOriginSet => {
            let Some(listed) = &plan.origin_frame else {
                return Judgement::NotApplicable(
                    "the origin sent no scripted ORIGIN frame".to_owned(),
                );
            };
            let outside: Vec<String> = served
                .iter()
                .filter(|request| {
                    let host = request
                        .authority
                        .as_deref()
                        .map(host_of)
                        .unwrap_or_default();
                    let initial = request.sni.as_deref().map(normalize_host);
                    initial.as_deref() != Some(host.as_str())
                        && !listed.iter().any(|role| role.standard_name() == host)
                })
                .map(|request| {
                    format!(
                        "{} on connection {} (SNI {})",
                        request.authority.as_deref().unwrap_or("?"),
                        request.connection,
                        request.sni.as_deref().unwrap_or("(none)")
                    )
                })
                .collect();
            if outside.is_empty() {
                Judgement::Met
            } else {
                unmet(format!(
                    "sent {} outside its Origin Set",
                    outside.join("; ")
                ))
            }
        }
        ClientCheck::ConnectionReused if (0..plan.fetches.len()).any(|index| of_fetch(index).is_empty()) => {
            Judgement::Missing("the client did not send every fetch".to_owned())
        }
        ClientCheck::ConnectionReused => {
            let split: Vec<String> = plan
                .fetches
                .iter()
                .map(|fetch| fetch.role.standard_name())
                .filter(|host| {
                    let mut connections: Vec<u64> = (0..plan.fetches.len())
                        .filter(|index| fetch_host(plan, *index) == *host)
                        .flat_map(|index| of_fetch(index).into_iter().map(|request| request.connection))
                        .collect();
                    connections.sort_unstable();
                    connections.dedup();
                    connections.len() > 1
                })
                .map(str::to_owned)
                .collect();
            if split.is_empty() {
                Judgement::Met
            } else {
                unmet(format!("opened more than one connection for {}", split.join(", ")))
            }
        }
        ClientCheck::BodyReplayed => {
            let repeated: Vec<usize> = (0..plan.fetches.len())
                .filter(|index| of_fetch(*index).len() > 1)
                .collect();
            if repeated.is_empty() {
                return Judgement::NotApplicable("the client repeated no request".to_owned());
            }
            let altered: Vec<String> = repeated
                .iter()
                .filter(|index| {
                    let requests = of_fetch(**index);
                    requests
                        .iter()
                        .any(|request| request.body != requests[0].body)
                })
                .map(|index| fetch_path(*index))
                .collect();
            if altered.is_empty() {
                Judgement::Met
            } else {
                unmet(format!(
                    "a repetition of {} carried another body",
                    altered.join(", ")
                ))
            }
        }
    }
}

fn fetch_host(plan: &ClientPlan, index: usize) -> &'static str {
    plan.fetches[index].role.standard_name()
}

/// What a client expectation asks for, in words.
pub fn describe_client(check: &ClientCheck) -> String {
    match check {
        ClientCheck::CoalescedOnlyCovered => {
            "every request on a connection whose certificate covers its origin".to_owned()
        }
        ClientCheck::RetriedOnNewConnection => {
            "after a 421, the request again on a new connection with the origin's SNI".to_owned()
        }
        ClientCheck::NotRetriedOnSameConnection => {
            "after a 421, never the request again on the connection that refused it".to_owned()
        }
        ClientCheck::AtMostRequests(limit) => format!("no request sent more than {limit} times"),
        ClientCheck::BodyReplayed => "a repeated request carries the same body".to_owned(),
        ClientCheck::CoalescedOnlyInOriginSet => {
            "no request on a connection whose ORIGIN frames leave its origin out".to_owned()
        }
        ClientCheck::ConnectionReused => "one connection for all fetches of an origin".to_owned(),
    }
}

enum Judgement {
    Met,
    Unmet {
        expected: String,
        observed: String,
    },
    /// The observation this check needs is not there.
    Missing(String),
    NotApplicable(String),
}

fn judge(
    expectation: &Expectation,
    exchange: &Exchange,
    protocol: Protocol,
    deployment: &Deployment,
    observations: &Observations,
) -> Judgement {
    if expectation.if_advertised && advertised_origins(observations, &exchange.connection).is_none()
    {
        return Judgement::NotApplicable("the target sent no ORIGIN frame".to_owned());
    }
    let outcome = &exchange.outcome;
    let expected = describe(&expectation.check, deployment);
    let unmet = |expected: String| Judgement::Unmet {
        expected,
        observed: outcome.to_string(),
    };
    let Some(refused) = outcome.refused() else {
        // A connection the target closed before the request could go out answers the
        // expectation that it keeps serving on it; it says nothing to any other check.
        return match (&expectation.check, outcome) {
            (Check::StillServedBy(_), ExchangeOutcome::Unsendable { .. }) => unmet(expected),
            _ => Judgement::Missing(outcome.to_string()),
        };
    };
    match &expectation.check {
        Check::Refused if refused => Judgement::Met,
        Check::Refused => unmet(expected),
        Check::UncoveredRefused => {
            let host = host_of(&exchange.authority);
            let connection = observations.connection(&exchange.connection);
            let sans = match connection.map(|record| &record.result) {
                Some(ConnectionResult::Established(established)) => &established.peer_sans,
                // A refused handshake presented no certificate the request could ride on.
                _ if refused => return Judgement::Met,
                _ => {
                    return Judgement::Missing(
                        "no certificate was observed on the connection".to_owned(),
                    );
                }
            };
            if sans.iter().any(|san| san_covers(san, &host)) {
                Judgement::NotApplicable(format!(
                    "the certificate presented ({}) covers {host}",
                    sans.join(", ")
                ))
            } else if refused {
                Judgement::Met
            } else {
                unmet(format!(
                    "refused, because the certificate presented ({}) does not cover {host}",
                    sans.join(", ")
                ))
            }
        }
        Check::Status(codes) => match outcome {
            ExchangeOutcome::Response(response) if codes.contains(&response.status) => {
                Judgement::Met
            }
            _ => unmet(expected),
        },
        // HTTP/2: the stream error PROTOCOL_ERROR, or that error for the whole connection
        // (RFC 9113 §5.4.1), or a 400 (RFC 9113 §8.1.1 lets a response precede the reset).
        // HTTP/3: the stream error H3_MESSAGE_ERROR, alone or after a response (RFC 9114
        // §4.1.2); a 400 that ends cleanly is no stream error.
        Check::Malformed => match (protocol, outcome) {
            (
                Protocol::Http2,
                ExchangeOutcome::StreamReset { code, .. }
                | ExchangeOutcome::ConnectionError { code, .. },
            ) if *code == PROTOCOL_ERROR => Judgement::Met,
            (Protocol::Http3, ExchangeOutcome::StreamReset { code, .. })
                if *code == H3_MESSAGE_ERROR =>
            {
                Judgement::Met
            }
            (Protocol::Http3, ExchangeOutcome::Response(response))
                if response.reset_after == Some(H3_MESSAGE_ERROR) =>
            {
                Judgement::Met
            }
            (Protocol::Http1 | Protocol::Http2, ExchangeOutcome::Response(response))
                if response.status == 400 =>
            {
                Judgement::Met
            }
            _ => unmet(expected),
        },
        Check::ServedBy(role) | Check::StillServedBy(role) => match outcome {
            ExchangeOutcome::Response(response) if !refused && response.status < 300 => {
                named_tenant(response, *role, unmet(expected))
            }
            _ => unmet(expected),
        },
        Check::NotServedBy(role) => match outcome {
            ExchangeOutcome::Response(response) if !refused => match &response.tenant {
                None => unnamed(response),
                Some(tenant) if role.tenant() == Some(tenant.as_str()) => unmet(expected),
                Some(_) => Judgement::Met,
            },
            _ => Judgement::Met,
        },
        Check::TenantIfServed(role) => match outcome {
            ExchangeOutcome::Response(response) if !refused => {
                named_tenant(response, *role, unmet(expected))
            }
            // An error page of another tenant shows the request was routed to it; a 421 names
            // whichever virtual host the server generates it in, which proves nothing.
            ExchangeOutcome::Response(response)
                if response.status != 421
                    && response
                        .tenant
                        .as_deref()
                        .is_some_and(|tenant| Some(tenant) != role.tenant()) =>
            {
                unmet(expected)
            }
            _ => Judgement::Met,
        },
        Check::ReachedUpstream(_) | Check::ReachedNoUpstream | Check::UpstreamSni(_) => {
            judge_upstream(
                &expectation.check,
                exchange,
                refused,
                deployment,
                observations,
                expected,
            )
        }
        Check::AdvertisedServedBy(role) => {
            let Some(advertised) = advertised_origins(observations, &exchange.connection) else {
                return Judgement::NotApplicable("the target sent no ORIGIN frame".to_owned());
            };
            let origin = origin_of(&exchange.authority);
            if !advertised.contains(&origin) {
                return Judgement::NotApplicable(format!(
                    "the ORIGIN frame does not list {origin}"
                ));
            }
            match outcome {
                ExchangeOutcome::Response(response) if !refused && response.status < 300 => {
                    named_tenant(response, *role, unmet(expected))
                }
                _ => unmet(format!("{expected}, since the ORIGIN frame lists {origin}")),
            }
        }
        Check::AdvertisedCovered => {
            let Some(advertised) = advertised_origins(observations, &exchange.connection) else {
                return Judgement::NotApplicable("the target sent no ORIGIN frame".to_owned());
            };
            let sans = match observations
                .connection(&exchange.connection)
                .map(|record| &record.result)
            {
                Some(ConnectionResult::Established(established)) => &established.peer_sans,
                _ => {
                    return Judgement::Missing(
                        "no certificate was observed on the connection".to_owned(),
                    );
                }
            };
            let uncovered: Vec<&String> = advertised
                .iter()
                .filter(|origin| {
                    let host = origin
                        .strip_prefix("https://")
                        .map(host_of)
                        .unwrap_or_default();
                    !sans.iter().any(|san| san_covers(san, &host))
                })
                .collect();
            if uncovered.is_empty() {
                Judgement::Met
            } else {
                Judgement::Unmet {
                    expected,
                    observed: format!(
                        "ORIGIN lists {} outside the certificate ({})",
                        uncovered
                            .iter()
                            .map(|origin| origin.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        sans.join(", ")
                    ),
                }
            }
        }
        Check::CertificateCovers => {
            let host = host_of(&exchange.authority);
            match observations
                .connection(&exchange.connection)
                .map(|record| &record.result)
            {
                Some(ConnectionResult::Established(established)) => {
                    if established
                        .peer_sans
                        .iter()
                        .any(|san| san_covers(san, &host))
                    {
                        Judgement::Met
                    } else {
                        Judgement::Unmet {
                            expected,
                            observed: format!(
                                "a certificate for {}",
                                established.peer_sans.join(", ")
                            ),
                        }
                    }
                }
                _ => Judgement::Missing("no certificate was observed on the connection".to_owned()),
            }
        }
        Check::NotCacheable => match outcome {
            ExchangeOutcome::Response(response) => match response.explicit_freshness() {
                None => Judgement::Met,
                Some(freshness) => Judgement::Unmet {
                    expected,
                    observed: format!("{} with {freshness}", response.status),
                },
            },
            _ => Judgement::NotApplicable(format!(
                "no response that a cache could store ({outcome})"
            )),
        },
    }
}

/// Judges what the mock upstreams saw of the request (gateway scenarios).
fn judge_upstream(
    check: &Check,
    exchange: &Exchange,
    refused: bool,
    deployment: &Deployment,
    observations: &Observations,
    expected: String,
) -> Judgement {
    let Some(id) = exchange.request_id.as_deref() else {
        return Judgement::Missing(
            "the request carried no request ID for the upstreams".to_owned(),
        );
    };
    let reached: Vec<_> = observations
        .upstream_requests
        .iter()
        .filter(|request| request.request_id.as_deref() == Some(id))
        .collect();
    let upstreams = || {
        let names: Vec<&str> = reached
            .iter()
            .map(|request| request.upstream.as_str())
            .collect();
        format!("reached the upstream of {}", names.join(", "))
    };
    let unmet = |observed: String| Judgement::Unmet {
        expected: expected.clone(),
        observed,
    };
    match check {
        // Only meaningful if something of this case reached the upstreams at all: otherwise the
        // gateway may not be routed to them, or strip the request ID.
        Check::ReachedNoUpstream if observations.upstream_requests.is_empty() => {
            Judgement::Missing(
                "no request of this case reached a mock upstream: is the gateway routed to them?"
                    .to_owned(),
            )
        }
        Check::ReachedNoUpstream if reached.is_empty() => Judgement::Met,
        Check::ReachedNoUpstream => unmet(upstreams()),
        Check::ReachedUpstream(_) if refused && reached.is_empty() => Judgement::NotApplicable(
            "the gateway refused the request; nothing to forward".to_owned(),
        ),
        Check::ReachedUpstream(_) | Check::UpstreamSni(_) if reached.is_empty() => {
            Judgement::Missing(
                "no mock upstream saw the request: is the gateway routed to them?".to_owned(),
            )
        }
        Check::ReachedUpstream(role) => {
            if reached
                .iter()
                .all(|request| Some(request.upstream.as_str()) == role.tenant())
            {
                Judgement::Met
            } else {
                unmet(upstreams())
            }
        }
        Check::UpstreamSni(_) if reached.iter().all(|request| !request.tls) => {
            Judgement::NotApplicable("the upstreams speak cleartext: there is no SNI".to_owned())
        }
        Check::UpstreamSni(role) => {
            let wanted = deployment.name(*role);
            if reached
                .iter()
                .all(|request| request.sni.as_deref() == Some(wanted))
            {
                Judgement::Met
            } else {
                let seen: Vec<&str> = reached
                    .iter()
                    .map(|request| request.sni.as_deref().unwrap_or("(none)"))
                    .collect();
                unmet(format!(
                    "the upstream connection had SNI {}",
                    seen.join(", ")
                ))
            }
        }
        _ => Judgement::Missing("not an upstream check".to_owned()),
    }
}

/// Met when the response names the role's tenant; a response that names no tenant cannot be
/// judged.
fn named_tenant(response: &crate::observe::Response, role: Role, unmet: Judgement) -> Judgement {
    match (&response.tenant, role.tenant()) {
        (None, _) => unnamed(response),
        (Some(tenant), Some(wanted)) if tenant == wanted => Judgement::Met,
        _ => unmet,
    }
}

/// A response that cannot be judged: who answered is the observation every check needs.
fn unnamed(response: &crate::observe::Response) -> Judgement {
    Judgement::Missing(format!(
        "{} names no tenant: the target must identify its tenant in every response",
        response.status
    ))
}

/// What an expectation asks for, in words.
pub fn describe(check: &Check, deployment: &Deployment) -> String {
    let served = |role: &Role| match role.tenant() {
        Some(tenant) => format!(
            "served by tenant {tenant} ({} role, {})",
            role,
            deployment.name(*role)
        ),
        None => format!("served for {role}, which no tenant is configured for"),
    };
    match check {
        Check::ServedBy(role) => format!("2xx {}", served(role)),
        Check::StillServedBy(role) => format!("2xx {} on the same connection", served(role)),
        Check::TenantIfServed(role) => format!("refused, or {}", served(role)),
        Check::NotServedBy(role) => format!("refused, or not {}", served(role)),
        Check::Refused => {
            "refused (4xx/5xx, stream reset, closed connection or refused handshake)".to_owned()
        }
        Check::UncoveredRefused => {
            "refused unless the certificate presented covers the authority".to_owned()
        }
        Check::Status(codes) => {
            let codes: Vec<String> = codes.iter().map(u16::to_string).collect();
            format!("status {}", codes.join(" or "))
        }
        Check::Malformed => {
            "treated as malformed: stream error PROTOCOL_ERROR (h2, or a 400) or H3_MESSAGE_ERROR (h3)"
                .to_owned()
        }
        Check::NotCacheable => {
            "no explicit freshness (max-age, s-maxage, public, Expires)".to_owned()
        }
        Check::CertificateCovers => {
            "a certificate presented on the connection that covers the authority".to_owned()
        }
        Check::AdvertisedServedBy(role) => format!("if advertised in ORIGIN, 2xx {}", served(role)),
        Check::ReachedUpstream(role) => format!(
            "forwarded to the upstream of tenant {} only",
            role.tenant().unwrap_or("none")
        ),
        Check::ReachedNoUpstream => "forwarded to no upstream".to_owned(),
        Check::UpstreamSni(role) => format!(
            "forwarded over an upstream connection whose SNI is {}",
            role.standard_name()
        ),
        Check::AdvertisedCovered => "ORIGIN lists only origins the certificate covers".to_owned(),
    }
}

/// The origins the ORIGIN frames on a connection list, normalised: frames on stream 0 without
/// flags only (RFC 8336 §2.2); `None` when the target sent no such frame.
fn advertised_origins(observations: &Observations, connection: &str) -> Option<Vec<String>> {
    let frames = &observations.connection(connection)?.origin_frames;
    Some(
        crate::wire::h2::origin_set(frames)?
            .iter()
            .filter_map(|origin| origin.strip_prefix("https://").map(origin_of))
            .collect(),
    )
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
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::observe::{ConnectionRecord, Established, Response};
    use crate::scenario::load_str;

    const SCENARIO: &str = "\
title: t
requirements:
  - { id: R9110-7.4-b, level: MUST, section: RFC 9110 §7.4 }
  - { id: R9110-7.4-c, level: SHOULD, section: RFC 9110 §7.4 }
  - { id: R9113-9.1.1-a, level: MAY, section: RFC 9113 §9.1.1 }
protocols: [h1, h2]
steps:
  - connect: { name: main, sni: primary }
  - send:
      on: main
      authority: foreign
      expect:
        - { requirement: R9110-7.4-b, uncovered_refused: true }
        - { requirement: R9110-7.4-c, status: 421 }
  - send:
      on: main
      authority: sibling
      expect:
        - { requirement: R9113-9.1.1-a, served_by: sibling, protocols: [h2] }
";

    fn scenario() -> Scenario {
        load_str(Path::new("t.yaml"), "t", SCENARIO).unwrap()
    }

    fn response(status: u16, tenant: Option<&str>) -> ExchangeOutcome {
        ExchangeOutcome::Response(Response {
            status,
            tenant: tenant.map(str::to_owned),
            cache_control: None,
            expires: None,
            date: None,
            alt_svc: None,
            reset_after: None,
            body_excerpt: String::new(),
        })
    }

    fn observations(foreign: ExchangeOutcome, sibling: ExchangeOutcome) -> Observations {
        let exchange = |step, authority: &str, outcome| Exchange {
            step,
            request: 0,
            round: 0,
            connection: "main".into(),
            method: "GET".into(),
            authority: authority.into(),
            host: None,
            request_id: None,
            outcome,
        };
        Observations {
            connections: vec![ConnectionRecord {
                name: "main".into(),
                sni: Some("a.test".into()),
                resume_source: None,
                resumption_offered: false,
                origin_frames: Vec::new(),
                result: ConnectionResult::Established(Established {
                    alpn: Some("h2".into()),
                    tls_version: "TLSv1.3".into(),
                    peer_sans: vec!["a.test".into(), "b.test".into()],
                    resumed: false,
                }),
            }],
            exchanges: vec![
                exchange(1, "c.test:443", foreign),
                exchange(2, "b.test:443", sibling),
            ],
            upstream_requests: Vec::new(),
            served: Vec::new(),
        }
    }

    fn evaluate_over_h2(scenario: &Scenario, observed: &Observations) -> Evaluation {
        evaluate(scenario, Protocol::Http2, &Deployment::standard(), observed)
    }

    fn verdict(
        protocol: Protocol,
        foreign: ExchangeOutcome,
        sibling: ExchangeOutcome,
    ) -> Evaluation {
        evaluate(
            &scenario(),
            protocol,
            &Deployment::standard(),
            &observations(foreign, sibling),
        )
    }

    #[test]
    fn correct_behaviour_passes() {
        let evaluation = verdict(
            Protocol::Http2,
            response(421, None),
            response(200, Some("bravo")),
        );
        assert_eq!(
            evaluation.verdict,
            Verdict::Pass,
            "{:?}",
            evaluation.findings
        );
    }

    #[test]
    fn serving_an_uncovered_authority_fails_the_must() {
        let evaluation = verdict(
            Protocol::Http2,
            response(200, Some("charlie")),
            response(200, Some("bravo")),
        );
        assert_eq!(evaluation.verdict, Verdict::Fail);
        let ids: Vec<_> = evaluation
            .findings
            .iter()
            .map(|f| f.requirement.as_ref().unwrap().id.as_str())
            .collect();
        assert_eq!(ids, ["R9110-7.4-b", "R9110-7.4-c"]);
        assert_eq!(evaluation.findings[0].location.as_ref().unwrap().line, 13);
    }

    #[test]
    fn wrong_refusal_status_warns() {
        let evaluation = verdict(
            Protocol::Http2,
            response(404, None),
            response(200, Some("bravo")),
        );
        assert_eq!(evaluation.verdict, Verdict::Warn);
    }

    #[test]
    fn refused_coalescing_is_info() {
        let evaluation = verdict(Protocol::Http2, response(421, None), response(421, None));
        assert_eq!(evaluation.verdict, Verdict::Info);
    }

    #[test]
    fn expectations_for_other_protocols_are_not_judged() {
        let evaluation = verdict(Protocol::Http1, response(421, None), response(421, None));
        assert_eq!(evaluation.verdict, Verdict::Pass);
    }

    #[test]
    fn a_timeout_is_an_error_not_a_pass() {
        let timeout = ExchangeOutcome::TimedOut {
            after: Duration::from_secs(2),
        };
        let evaluation = verdict(
            Protocol::Http2,
            timeout.clone(),
            response(200, Some("bravo")),
        );
        assert_eq!(evaluation.verdict, Verdict::Error);
        let evaluation = verdict(Protocol::Http2, response(421, None), timeout);
        assert_eq!(evaluation.verdict, Verdict::Error);
    }

    #[test]
    fn a_response_without_tenant_is_an_error() {
        let evaluation = verdict(Protocol::Http2, response(421, None), response(200, None));
        assert_eq!(evaluation.verdict, Verdict::Error);
    }

    #[test]
    fn another_tenants_error_page_is_a_misroute() {
        let evaluation = verdict(
            Protocol::Http2,
            response(421, None),
            response(404, Some("alpha")),
        );
        // The MAY (served_by) is unmet too, but the misroute is the MUST.
        assert_eq!(evaluation.verdict, Verdict::Info);
        let scenario = load_str(
            Path::new("t.yaml"),
            "t",
            &SCENARIO
                .replace(
                    "served_by: sibling, protocols: [h2]",
                    "tenant_if_served: sibling",
                )
                .replace("R9113-9.1.1-a, tenant", "R9110-7.4-b, tenant"),
        )
        .unwrap();
        let observed = observations(response(421, None), response(404, Some("alpha")));
        let evaluation = evaluate_over_h2(&scenario, &observed);
        assert_eq!(evaluation.verdict, Verdict::Fail);
        let observed = observations(response(421, None), response(421, Some("alpha")));
        let evaluation = evaluate_over_h2(&scenario, &observed);
        assert_eq!(evaluation.verdict, Verdict::Pass);
    }

    #[test]
    fn a_closed_connection_is_no_observation_except_of_keeping_it_open() {
        let gone = ExchangeOutcome::Unsendable {
            detail: "GOAWAY".into(),
        };
        let evaluation = verdict(Protocol::Http2, gone.clone(), response(200, Some("bravo")));
        assert_eq!(evaluation.verdict, Verdict::Error);
        let evaluation = verdict(Protocol::Http2, response(421, None), gone.clone());
        assert_eq!(evaluation.verdict, Verdict::Error);
        let scenario = load_str(
            Path::new("t.yaml"),
            "t",
            &SCENARIO.replace(
                "served_by: sibling, protocols",
                "still_served_by: sibling, protocols",
            ),
        )
        .unwrap();
        let observed = observations(response(421, None), gone);
        let evaluation = evaluate_over_h2(&scenario, &observed);
        assert_eq!(evaluation.verdict, Verdict::Info);
    }

    #[test]
    fn later_steps_can_be_left_out() {
        let timeout = ExchangeOutcome::TimedOut {
            after: Duration::from_secs(2),
        };
        let observed = observations(response(421, None), timeout);
        let evaluation = evaluate_steps(
            &scenario(),
            Protocol::Http2,
            &Deployment::standard(),
            &observed,
            2,
        );
        assert_eq!(evaluation.verdict, Verdict::Pass);
    }

    #[test]
    fn a_fail_outranks_an_error() {
        let timeout = ExchangeOutcome::TimedOut {
            after: Duration::from_secs(2),
        };
        let evaluation = verdict(Protocol::Http2, response(200, Some("charlie")), timeout);
        assert_eq!(evaluation.verdict, Verdict::Fail);
    }

    #[test]
    fn a_certificate_covering_the_authority_makes_the_check_not_applicable() {
        let mut observed =
            observations(response(200, Some("charlie")), response(200, Some("bravo")));
        if let ConnectionResult::Established(established) = &mut observed.connections[0].result {
            established.peer_sans.push("*.test".into());
            established.peer_sans.push("c.test".into());
        }
        let evaluation = evaluate_over_h2(&scenario(), &observed);
        // The SHOULD (status 421) still applies and is unmet; the MUST is not applicable.
        assert_eq!(evaluation.verdict, Verdict::Warn);
        assert_eq!(evaluation.findings.len(), 1);
    }

    #[test]
    fn malformed_accepts_protocol_error_or_400() {
        let reset = ExchangeOutcome::StreamReset {
            code: 1,
            name: "PROTOCOL_ERROR".into(),
        };
        let check = Check::Malformed;
        let expectation = Expectation {
            requirement: 0,
            check,
            protocols: Vec::new(),
            if_advertised: false,
            span: scenario().span,
        };
        let observed = observations(reset, response(400, None));
        for exchange in &observed.exchanges {
            assert!(matches!(
                judge(
                    &expectation,
                    exchange,
                    Protocol::Http2,
                    &Deployment::standard(),
                    &observed
                ),
                Judgement::Met
            ));
        }
    }

    #[test]
    fn malformed_means_the_protocols_own_stream_error() {
        let expectation = Expectation {
            requirement: 0,
            check: Check::Malformed,
            protocols: Vec::new(),
            if_advertised: false,
            span: scenario().span,
        };
        let judged = |protocol, outcome: ExchangeOutcome| {
            let observed = observations(outcome, response(200, Some("bravo")));
            matches!(
                judge(
                    &expectation,
                    &observed.exchanges[0],
                    protocol,
                    &Deployment::standard(),
                    &observed
                ),
                Judgement::Met
            )
        };
        let reset = |code| ExchangeOutcome::StreamReset {
            code,
            name: String::new(),
        };
        assert!(judged(Protocol::Http3, reset(H3_MESSAGE_ERROR)));
        assert!(!judged(Protocol::Http3, reset(PROTOCOL_ERROR)));
        let goaway = |code| ExchangeOutcome::ConnectionError {
            code,
            name: String::new(),
        };
        // RFC 9113 §5.4.1: the stream error may be raised to a connection error.
        assert!(judged(Protocol::Http2, goaway(PROTOCOL_ERROR)));
        assert!(!judged(Protocol::Http2, goaway(0x2)));
        assert!(!judged(Protocol::Http2, reset(H3_MESSAGE_ERROR)));
        assert!(!judged(Protocol::Http3, response(400, None)));
        let mut then_reset = response(400, None);
        if let ExchangeOutcome::Response(response) = &mut then_reset {
            response.reset_after = Some(H3_MESSAGE_ERROR);
        }
        assert!(judged(Protocol::Http3, then_reset));
        assert!(judged(Protocol::Http2, response(400, None)));
    }

    #[test]
    fn clients_are_judged_from_what_the_origin_saw() {
        let plan = ClientPlan {
            origin: crate::origin_script::OriginScript::SniMismatch,
            origin_frame: None,
            origin_frame_stream: 0,
            fetches: vec![
                crate::scenario::Fetch {
                    role: Role::Primary,
                    method: "GET".into(),
                    body: None,
                },
                crate::scenario::Fetch {
                    role: Role::Sibling,
                    method: "POST".into(),
                    body: Some("x".into()),
                },
            ],
            expect: Vec::new(),
        };
        let served =
            |connection, sni: &str, host: &str, fetch, body: &[u8], status| ServedRequest {
                connection,
                sni: Some(sni.into()),
                certificate: vec!["a.test".into(), "b.test".into()],
                method: "GET".into(),
                authority: Some(format!("{host}:4433")),
                path: fetch_path(fetch),
                body: body.to_vec(),
                status,
                protocol: Protocol::Http2,
            };
        let good = vec![
            served(0, "a.test", "a.test", 0, b"", 200),
            served(0, "a.test", "b.test", 1, b"x", 421),
            served(1, "b.test", "b.test", 1, b"x", 200),
        ];
        let met = |check: ClientCheck, log: &[ServedRequest]| {
            matches!(
                judge_client(&check, &plan, Protocol::Http2, log),
                Judgement::Met
            )
        };
        assert!(met(ClientCheck::CoalescedOnlyCovered, &good));
        assert!(met(ClientCheck::RetriedOnNewConnection, &good));
        assert!(met(ClientCheck::NotRetriedOnSameConnection, &good));
        assert!(met(ClientCheck::AtMostRequests(2), &good));
        assert!(met(ClientCheck::BodyReplayed, &good));
        let same_connection = vec![
            good[0].clone(),
            good[1].clone(),
            served(0, "a.test", "b.test", 1, b"", 200),
        ];
        assert!(!met(
            ClientCheck::NotRetriedOnSameConnection,
            &same_connection
        ));
        assert!(!met(ClientCheck::RetriedOnNewConnection, &same_connection));
        assert!(!met(ClientCheck::BodyReplayed, &same_connection));
        assert!(!met(ClientCheck::AtMostRequests(1), &good));
        let mut uncovered = good.clone();
        uncovered[0].authority = Some("c.test:4433".into());
        assert!(!met(ClientCheck::CoalescedOnlyCovered, &uncovered));
        assert!(matches!(
            judge_client(
                &ClientCheck::CoalescedOnlyCovered,
                &plan,
                Protocol::Http2,
                &[]
            ),
            Judgement::Missing(_)
        ));
    }

    #[test]
    fn hosts_lose_port_and_case() {
        assert_eq!(host_of("A.Test.:8443"), "a.test");
        assert_eq!(host_of("[::1]:443"), "::1");
        assert_eq!(host_of("evil.test@b.test"), "evil.test@b.test");
        assert_eq!(host_of("c.test"), "c.test");
    }
}
