//! Verdicts from observations: pure, synchronous and deterministic.
//!
//! Each expectation that applies to the case's protocol is judged, by its check's family in
//! `check`, against the exchange it is about. An unmet expectation becomes a finding whose verdict
//! follows the cited requirement's level; an expectation without the observation it needs
//! becomes an ERROR, never a PASS; one that cannot apply to this target is not applicable, and a
//! case where nothing applied is SKIP. A case that would pass (or only WARN or INFO) although
//! the target served nothing in it is ERROR: refusals prove something only beside an answer
//! (scenarios state that answer as a `control`).

use crate::check::client::ClientRun;
use crate::check::{Exchanged, Judgement, advertised_origins, covered_by_certificate};
use crate::deployment::{Deployment, Role};
use crate::observe::{ConnectionRecord, Exchange, ExchangeOutcome, Observations};
use crate::outcome::{Cited, Finding};
use crate::protocol::Protocol;
use crate::scenario::{Expectation, Premise, Requirement, Scenario, Span, Step};
use crate::verdict::Verdict;

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
    // Once a premise fails, the case's question does not arise: what came after it is not
    // judged, what came before it still counts.
    'steps: for (step_index, step) in scenario.steps.iter().enumerate().take(steps) {
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
                    if expectation.check.is_control() && matches!(judged, Judgement::Met) {
                        // A control met only makes the case's other judgements count.
                        continue;
                    }
                    let requirement = scenario.requirement(expectation.requirement);
                    let described = || expectation.check.describe(deployment);
                    match (&expectation.premise, judged) {
                        (Some(premise), Judgement::Unmet { expected, observed }) => {
                            tally.premise_unmet(
                                premise,
                                requirement,
                                &expectation.span,
                                expected,
                                observed,
                            );
                            break 'steps;
                        }
                        (_, judged) => tally.add(requirement, &expectation.span, judged, described),
                    }
                }
            }
        }
    }
    if let Some(plan) = &scenario.client {
        let fetches: Vec<Role> = plan.fetches.iter().map(|fetch| fetch.role).collect();
        let run = ClientRun {
            fetches: &fetches,
            origin_frame: plan.origin_frame.as_deref(),
            protocol,
            served: &observations.served,
            command: observations.command.as_ref(),
        };
        for expectation in &plan.expect {
            if !(expectation.protocols.is_empty() || expectation.protocols.contains(&protocol)) {
                continue;
            }
            let judged = expectation.check.judge(&run);
            let requirement = scenario.requirement(expectation.requirement);
            let described = || expectation.check.describe();
            tally.add(requirement, &expectation.span, judged, described);
        }
        return tally.finish();
    }
    let premise_unmet = tally.unmet_premise.is_some();
    let evaluation = tally.finish();
    if !premise_unmet && served_nothing(&evaluation, observations) {
        return Evaluation {
            verdict: Verdict::Error,
            findings: std::iter::once(Finding {
                verdict: Verdict::Error,
                requirement: None,
                expected: "a request the target served in this case (its positive control), so that its refusals mean something".to_owned(),
                observed: "the target served nothing in this case: every request was refused or unanswered, which a target that serves nothing at all also does".to_owned(),
                location: None,
            })
            .chain(evaluation.findings)
            .collect(),
        };
    }
    evaluation
}

/// Whether a case passed, fell short of a SHOULD or a MAY, or found nothing applicable, on
/// refusals alone: no request of it was served with a tenant's name. A target that refuses
/// everything (or answers nothing) would earn that verdict too, so it rests on nothing. A FAIL
/// needs no such evidence: it is a wrong answer the target gave. A SKIP without any refusal
/// (nothing was sent) stays SKIP.
fn served_nothing(evaluation: &Evaluation, observations: &Observations) -> bool {
    let outcomes = || {
        observations
            .exchanges
            .iter()
            .map(|exchange| &exchange.outcome)
    };
    let rests_on_refusals = match evaluation.verdict {
        Verdict::Pass | Verdict::Info | Verdict::Warn => true,
        Verdict::Skip => outcomes().any(|outcome| outcome.refused() == Some(true)),
        Verdict::Fail | Verdict::Error => false,
    };
    rests_on_refusals && !outcomes().any(ExchangeOutcome::served_by_a_tenant)
}

/// Findings as expectations are judged, and the verdict they add up to.
#[derive(Default)]
struct Tally {
    findings: Vec<Finding>,
    skips: Vec<Finding>,
    met: usize,
    /// The first premise that did not hold: the case is SKIP, unless it saw a FAIL or an ERROR
    /// before it (nothing after it is judged).
    unmet_premise: Option<Finding>,
}

impl Tally {
    fn premise_unmet(
        &mut self,
        premise: &Premise,
        requirement: &Requirement,
        span: &Span,
        expected: String,
        observed: String,
    ) {
        let pointer = premise.judged_by.as_ref().map_or_else(String::new, |id| {
            format!("; whether it should have held is judged by {id}")
        });
        self.unmet_premise.get_or_insert(Finding {
            verdict: Verdict::Skip,
            requirement: Some(Cited::from(requirement)),
            expected: format!("the case's premise: {expected}"),
            observed: format!("{observed}, so the case's question does not arise{pointer}"),
            location: Some(span.clone()),
        });
    }

    fn add(
        &mut self,
        requirement: &Requirement,
        span: &Span,
        judged: Judgement,
        described: impl Fn() -> String,
    ) {
        let finding = |verdict, expected: String, observed: String| Finding {
            verdict,
            requirement: Some(Cited::from(requirement)),
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
        // A wrong answer seen on the way is still a wrong answer, and a control the target did
        // not serve (or anything else that could not be observed) says more than the premise
        // that failed with it.
        let failed = self
            .findings
            .iter()
            .any(|f| matches!(f.verdict, Verdict::Fail | Verdict::Error));
        if let Some(premise) = self.unmet_premise.filter(|_| !failed) {
            return Evaluation {
                verdict: Verdict::Skip,
                findings: vec![premise],
            };
        }
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

/// Judges one expectation against the exchange of the request it is about.
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
    if expectation.if_uncovered
        && let Some(covered) = covered_by_certificate(exchange, observations)
    {
        return Judgement::NotApplicable(covered);
    }
    if !expectation.check.judges_the_certificate()
        && let Some(mismatch) = observations
            .connection(&exchange.connection)
            .and_then(ConnectionRecord::certificate_mismatch)
    {
        return Judgement::Missing(mismatch);
    }
    let outcome = &exchange.outcome;
    let expected = expectation.check.describe(deployment);
    let Some(refused) = outcome.refused() else {
        // A connection the target closed before the request could go out answers the
        // expectation that it keeps serving on it; it says nothing to any other check.
        return match outcome {
            ExchangeOutcome::Unsendable { .. } if expectation.check.reads_a_closed_connection() => {
                Judgement::Unmet {
                    expected,
                    observed: outcome.to_string(),
                }
            }
            _ => Judgement::Missing(outcome.to_string()),
        };
    };
    expectation.check.judge(&Exchanged {
        exchange,
        protocol,
        deployment,
        observations,
        refused,
        expected,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::observe::{ConnectionResult, Response};
    use crate::scenario::load_str;

    const SCENARIO: &str = "\
title: t
requirements:
  - { id: R9110-7.4-b, level: MUST, section: RFC 9110 §7.4 }
  - { id: R9110-7.4-c, level: SHOULD, section: RFC 9110 §7.4, because: the status that makes clients retry }
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
  - send:
      on: main
      authority: primary
      expect:
        - { requirement: R9110-7.4-b, control: primary }
";

    fn scenario() -> Scenario {
        load_str(Path::new("t.yaml"), "t", SCENARIO).unwrap()
    }

    fn response(status: u16, tenant: Option<&str>) -> ExchangeOutcome {
        ExchangeOutcome::Response(Response::named(status, tenant))
    }

    fn observations(foreign: ExchangeOutcome, sibling: ExchangeOutcome) -> Observations {
        Observations {
            connections: vec![ConnectionRecord::main_with(&["a.test", "b.test"])],
            exchanges: vec![
                Exchange::on_main(1, "c.test:443", foreign),
                Exchange::on_main(2, "b.test:443", sibling),
                Exchange::on_main(3, "a.test:443", response(200, Some("alpha"))),
            ],
            ..Observations::default()
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
    fn a_refusal_only_verdict_needs_something_served() {
        let mut observed = observations(response(421, None), response(421, None));
        // The control refused too: the target serves nothing, so its refusals prove nothing.
        observed.exchanges[2].outcome = response(421, None);
        let evaluation = evaluate_over_h2(&scenario(), &observed);
        assert_eq!(evaluation.verdict, Verdict::Error);
        assert!(
            evaluation
                .findings
                .iter()
                .any(|finding| finding.observed.starts_with("the control was not served")),
            "{:?}",
            evaluation.findings
        );
        // Without a control step, the same holds: no PASS on refusals alone.
        observed.exchanges.truncate(2);
        let evaluation = evaluate_steps(
            &scenario(),
            Protocol::Http1,
            &Deployment::standard(),
            &observed,
            2,
        );
        assert_eq!(evaluation.verdict, Verdict::Error);
        assert!(
            evaluation.findings[0]
                .observed
                .starts_with("the target served nothing in this case"),
            "{:?}",
            evaluation.findings
        );
        // A control met counts for nothing by itself.
        let observed = observations(response(421, None), response(421, None));
        let evaluation = evaluate(
            &scenario(),
            Protocol::Http1,
            &Deployment::standard(),
            &observed,
        );
        assert_eq!(evaluation.verdict, Verdict::Pass);
    }

    #[test]
    fn an_empty_answer_is_not_the_tenants() {
        let scenario = load_str(
            Path::new("t.yaml"),
            "t",
            &SCENARIO.replace(
                "served_by: sibling, protocols: [h2]",
                "not_served_by: sibling",
            ),
        )
        .unwrap();
        let observed = observations(response(421, None), response(200, None));
        assert_eq!(
            evaluate_over_h2(&scenario, &observed).verdict,
            Verdict::Pass
        );
        let mut marked = Response::named(200, None);
        marked.body_excerpt = "<html>welcome</html>".into();
        let observed = observations(response(421, None), ExchangeOutcome::Response(marked));
        assert_eq!(
            evaluate_over_h2(&scenario, &observed).verdict,
            Verdict::Error
        );
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
    fn nothing_after_an_unmet_premise_is_judged() {
        let scenario = load_str(
            Path::new("t.yaml"),
            "t",
            &SCENARIO
                .replace("status: 421 }", "status: 421, premise: true }")
                .replace(
                    "R9113-9.1.1-a, served_by: sibling, protocols: [h2]",
                    "R9110-7.4-b, served_by: sibling",
                ),
        )
        .unwrap();
        // Refused, but not with 421: the later misroute is no answer to the case's question.
        let observed = observations(response(403, None), response(200, Some("alpha")));
        let evaluation = evaluate_over_h2(&scenario, &observed);
        assert_eq!(evaluation.verdict, Verdict::Skip);
        // What came before the premise still counts.
        let observed = observations(response(200, Some("charlie")), response(200, Some("alpha")));
        let evaluation = evaluate_over_h2(&scenario, &observed);
        assert_eq!(evaluation.verdict, Verdict::Fail);
        assert_eq!(evaluation.findings.len(), 1, "{:?}", evaluation.findings);
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
    fn an_unserved_control_outranks_an_unmet_premise() {
        let requirement = Requirement {
            id: "R9110-4.3.3-b".into(),
            level: crate::verdict::Level::Should,
            section: "RFC 9110 §4.3.3".into(),
            because: None,
        };
        let span = Span::new(&crate::scenario::Source::new("x.yaml", "x"), 1, 1);
        let premise = Premise { judged_by: None };
        let mut only_premise = Tally::default();
        only_premise.premise_unmet(&premise, &requirement, &span, "2xx".into(), "421".into());
        assert_eq!(only_premise.finish().verdict, Verdict::Skip);
        let mut with_control = Tally::default();
        with_control.add(
            &requirement,
            &span,
            Judgement::Missing("the control was not served".into()),
            || "control".into(),
        );
        with_control.premise_unmet(&premise, &requirement, &span, "2xx".into(), "421".into());
        assert_eq!(with_control.finish().verdict, Verdict::Error);
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
    fn a_certificate_that_does_not_cover_the_sni_is_a_setup_mistake() {
        let mut observed = observations(response(421, None), response(200, Some("bravo")));
        observed.connections[0] = ConnectionRecord::main_with(&["x.invalid"]);
        let evaluation = evaluate_over_h2(&scenario(), &observed);
        assert_eq!(evaluation.verdict, Verdict::Error);
        assert!(
            evaluation.findings[0]
                .observed
                .contains("the certificate presented for SNI a.test covers only [x.invalid]"),
            "{:?}",
            evaluation.findings
        );
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
}
