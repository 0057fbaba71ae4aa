//! How a case ends, decided from how its run ended: the verdict rules the runner used to apply
//! inline, as pure functions. A role the target does not play, or a step the target cannot be
//! asked (no HTTP/3 endpoint, no session ticket, a server where a client is tested), makes the
//! case SKIP with the reason, unless what was observed before already found more; a case the
//! harness could not set up is ERROR.

use std::fmt;

use crate::deployment::Deployment;
use crate::evaluate::{Evaluation, evaluate, evaluate_steps};
use crate::observe::Observations;
use crate::outcome::Finding;
use crate::protocol::Protocol;
use crate::scenario::Scenario;
use crate::verdict::Verdict;

/// Why a case stops applying to the target from some step on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inapplicable {
    /// The target does not speak the protocol a connection asks for.
    ProtocolNotSpoken { protocol: Protocol, reason: String },
    /// A connection is to resume a session that the target never issued a ticket for.
    NoSessionTicket { source: String },
    /// No HTTP/3 endpoint is configured for the target.
    NoHttp3Endpoint,
    /// A connection is to follow the `Alt-Svc` of another, which advertised nothing.
    NoAltSvc { source: String },
    /// The advertised alternative is on a host misdirect was not told to contact.
    AltSvcElsewhere { source: String, host: String },
    /// A server scenario, and the target is a client.
    NotAServer,
    /// A client scenario, and the target is a server.
    NotAClient,
    /// A gateway scenario, and the target is not routed to misdirect's mock upstreams.
    NoMockUpstreams,
    /// A client command receives only URLs to GET; the scenario's fetches need more.
    FetchesBeyondCommand,
}

impl Inapplicable {
    /// What the case needed of the target.
    pub fn needed(&self) -> String {
        match self {
            Self::ProtocolNotSpoken { protocol, .. } => format!("a target that speaks {protocol}"),
            Self::NoSessionTicket { source } => {
                format!("a session ticket from connection {source} to offer")
            }
            Self::NoHttp3Endpoint => "a target with an HTTP/3 endpoint".to_owned(),
            Self::NoAltSvc { source } | Self::AltSvcElsewhere { source, .. } => {
                format!("an HTTP/3 alternative advertised with Alt-Svc on connection {source}")
            }
            Self::NotAServer => "a server to drive".to_owned(),
            Self::NotAClient => "a client under test".to_owned(),
            Self::NoMockUpstreams => "a gateway routed to misdirect's mock upstreams".to_owned(),
            Self::FetchesBeyondCommand => "fetches a command template can express".to_owned(),
        }
    }
}

/// Why the target does not offer what the case needed.
impl fmt::Display for Inapplicable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ProtocolNotSpoken { reason, .. } => f.write_str(reason),
            Self::NoSessionTicket { source } => {
                write!(
                    f,
                    "the target issued no session ticket on connection {source}"
                )
            }
            Self::NoHttp3Endpoint => {
                f.write_str("no HTTP/3 endpoint is configured for this target (--h3-port)")
            }
            Self::NoAltSvc { .. } => f.write_str("the target advertised none"),
            Self::AltSvcElsewhere { host, .. } => write!(
                f,
                "the alternative is on another host ({host}), which misdirect does not contact"
            ),
            Self::NotAServer => f.write_str("the target is a client; this scenario tests servers"),
            Self::NotAClient => f.write_str(
                "this target is a server; client scenarios need --client or the embedded client",
            ),
            Self::NoMockUpstreams => f.write_str(
                "no --upstreams-port: this target is not configured with the mock upstreams",
            ),
            Self::FetchesBeyondCommand => {
                f.write_str("the command template only receives URLs to GET")
            }
        }
    }
}

/// How the runner's execution of a case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// Every step ran, or the case deadline cut the run short (what was not observed is judged
    /// as missing).
    Completed,
    /// From step `step` on, the case does not apply to the target.
    Inapplicable { step: usize, why: Inapplicable },
    /// The harness could not set the case up, and why.
    SetupFailed(String),
    /// The run was stopped (SIGINT, SIGTERM) before the case finished.
    Interrupted,
}

/// A case's verdict from how its run ended and what was observed.
pub fn conclude(
    scenario: &Scenario,
    protocol: Protocol,
    deployment: &Deployment,
    observations: &Observations,
    ending: &Ending,
) -> Evaluation {
    match ending {
        Ending::Completed => evaluate(scenario, protocol, deployment, observations),
        Ending::Inapplicable { step, why } => {
            // What was observed before the case stopped applying still counts; a client case
            // that does not apply observed nothing.
            let observed = match &scenario.client {
                Some(_) => None,
                None => Some(evaluate_steps(
                    scenario,
                    protocol,
                    deployment,
                    observations,
                    *step,
                )),
            };
            match observed {
                Some(evaluation)
                    if !matches!(evaluation.verdict, Verdict::Pass | Verdict::Skip) =>
                {
                    evaluation
                }
                _ => alone(Finding {
                    verdict: Verdict::Skip,
                    requirement: None,
                    expected: why.needed(),
                    observed: why.to_string(),
                    location: None,
                }),
            }
        }
        Ending::SetupFailed(reason) => alone(Finding {
            verdict: Verdict::Error,
            requirement: None,
            expected: "the harness can set up the case".to_owned(),
            observed: reason.clone(),
            location: Some(scenario.span.clone()),
        }),
        Ending::Interrupted => alone(Finding {
            verdict: Verdict::Error,
            requirement: None,
            expected: "the case runs to its end".to_owned(),
            observed: "interrupted: the run was stopped before this case finished".to_owned(),
            location: Some(scenario.span.clone()),
        }),
    }
}

/// The verdict of a case that is not run at all because the target does not play a role the
/// scenario names; `None` when it plays them all.
pub fn unplayed_role(scenario: &Scenario, deployment: &Deployment) -> Option<Evaluation> {
    scenario.roles.iter().find_map(|role| {
        let reason = deployment.unmapped_reason(*role)?;
        Some(alone(Finding {
            verdict: Verdict::Skip,
            requirement: None,
            expected: format!("a target that plays the `{role}` role"),
            observed: reason.to_owned(),
            location: Some(scenario.span.clone()),
        }))
    })
}

/// A verdict resting on one finding.
fn alone(finding: Finding) -> Evaluation {
    Evaluation {
        verdict: finding.verdict,
        findings: vec![finding],
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::deployment::Role;
    use crate::observe::{Exchange, ExchangeOutcome, Response};
    use crate::scenario::load_str;

    const SCENARIO: &str = "\
title: t
requirements:
  - { id: R9110-7.4-b, level: MUST, section: RFC 9110 §7.4 }
protocols: [h2]
steps:
  - connect: { name: main, sni: primary }
  - send:
      on: main
      authority: sibling
      expect:
        - { requirement: R9110-7.4-b, served_by: sibling }
  - connect: { name: other, sni: mtls, resume: main }
";

    fn scenario() -> Scenario {
        load_str(Path::new("t.yaml"), "t", SCENARIO).expect("a valid scenario")
    }

    fn observed(tenant: &str) -> Observations {
        Observations {
            exchanges: vec![Exchange::on_main(
                1,
                "b.test:443",
                ExchangeOutcome::Response(Response::named(200, Some(tenant))),
            )],
            ..Observations::default()
        }
    }

    fn concluded(observations: &Observations, ending: &Ending) -> Evaluation {
        conclude(
            &scenario(),
            Protocol::Http2,
            &Deployment::standard(),
            observations,
            ending,
        )
    }

    #[test]
    fn a_case_that_stops_applying_skips_with_the_reason() {
        let ending = Ending::Inapplicable {
            step: 2,
            why: Inapplicable::NoSessionTicket {
                source: "main".into(),
            },
        };
        let evaluation = concluded(&observed("bravo"), &ending);
        assert_eq!(evaluation.verdict, Verdict::Skip);
        assert_eq!(
            evaluation.findings[0].observed,
            "the target issued no session ticket on connection main"
        );
        assert_eq!(
            evaluation.findings[0].expected,
            "a session ticket from connection main to offer"
        );
    }

    #[test]
    fn what_was_found_before_a_case_stopped_applying_still_counts() {
        let ending = Ending::Inapplicable {
            step: 2,
            why: Inapplicable::NoHttp3Endpoint,
        };
        let evaluation = concluded(&observed("alpha"), &ending);
        assert_eq!(evaluation.verdict, Verdict::Fail);
    }

    #[test]
    fn a_case_the_harness_could_not_set_up_is_an_error() {
        let evaluation = concluded(
            &Observations::default(),
            &Ending::SetupFailed("no port".into()),
        );
        assert_eq!(evaluation.verdict, Verdict::Error);
        assert_eq!(evaluation.findings[0].observed, "no port");
    }

    #[test]
    fn a_role_the_target_does_not_play_skips_the_case() {
        let mut deployment = Deployment::standard();
        assert_eq!(unplayed_role(&scenario(), &deployment), None);
        deployment.unmap(Role::Mtls, "no client certificate was given");
        let evaluation = unplayed_role(&scenario(), &deployment).expect("a skip");
        assert_eq!(evaluation.verdict, Verdict::Skip);
        assert_eq!(
            evaluation.findings[0].expected,
            "a target that plays the `mtls` role"
        );
    }
}
