//! libtest-mimic glue: every scenario becomes trials that `cargo test` runs.
//!
//! - `<scenario> [<protocol>]`: against the embedded reference target; must PASS.
//! - `fault::<fault>::<scenario> [<protocol>]`: against the faulty variant a scenario claims to
//!   detect; must end with exactly the claimed verdict, which proves that the check can fail.
//! - `coverage::…`: every fault is detected by some scenario and every scenario detects some
//!   fault, so no check goes unproven.

use std::collections::BTreeMap;
use std::sync::Arc;

use libtest_mimic::{Failed, Trial};

use crate::runner::{self, Case, RunOptions, Runner};
use crate::under_test::Target;
use misdirect_core::fault::{Actor, Fault};
use misdirect_core::outcome::CaseResult;
use misdirect_core::report::terminal;
use misdirect_core::scenario::Scenario;
use misdirect_core::verdict::Verdict;

/// Builds the trials for `scenarios`; each runs its case on `runtime`.
pub fn trials(
    scenarios: &[Arc<Scenario>],
    runtime: &Arc<tokio::runtime::Runtime>,
) -> Result<Vec<Trial>, runner::SetupError> {
    let options = RunOptions::default();
    let reference = Arc::new(Runner::new(Target::Embedded(None), options)?);
    let mut faulty: BTreeMap<Fault, Arc<Runner>> = BTreeMap::new();
    let mut trials = Vec::new();
    for case in runner::cases(scenarios) {
        let name = format!("{} [{}]", case.scenario.id, case.protocol);
        trials.push(case_trial(
            name,
            case.clone(),
            &reference,
            runtime,
            Verdict::Pass,
        ));
        for detection in case
            .scenario
            .detects
            .iter()
            .filter(|d| d.applies_to(case.protocol))
        {
            let runner = match faulty.get(&detection.fault) {
                Some(runner) => Arc::clone(runner),
                None => {
                    let runner = Arc::new(Runner::new(
                        Target::Embedded(Some(detection.fault)),
                        options,
                    )?);
                    faulty.insert(detection.fault, Arc::clone(&runner));
                    runner
                }
            };
            let name = format!(
                "fault::{}::{} [{}]",
                detection.fault, case.scenario.id, case.protocol
            );
            trials.push(case_trial(
                name,
                case.clone(),
                &runner,
                runtime,
                detection.verdict,
            ));
        }
    }
    trials.extend(coverage_trials(scenarios));
    Ok(trials)
}

fn case_trial(
    name: String,
    case: Case,
    runner: &Arc<Runner>,
    runtime: &Arc<tokio::runtime::Runtime>,
    expected: Verdict,
) -> Trial {
    let runner = Arc::clone(runner);
    let runtime = Arc::clone(runtime);
    Trial::test(name, move || {
        let result = runtime.block_on(runner.run_case(&case));
        if result.verdict == expected {
            Ok(())
        } else {
            Err(Failed::from(explain(
                &result,
                expected,
                &runner.target().label(),
            )))
        }
    })
}

fn explain(result: &CaseResult, expected: Verdict, target: &str) -> String {
    let detail = terminal::Detail {
        passes: true,
        transcripts: true,
    };
    format!(
        "expected {expected} against {target}, got {}\n{}",
        result.verdict,
        terminal::render(
            std::slice::from_ref(result),
            target,
            result.duration,
            detail
        )
    )
}

fn coverage_trials(scenarios: &[Arc<Scenario>]) -> Vec<Trial> {
    let detected: Vec<Fault> = scenarios
        .iter()
        .flat_map(|scenario| scenario.detects.iter().map(|detection| detection.fault))
        .collect();
    // A fault that shows only under load is proven by a soak trial instead.
    let undetected: Vec<&str> = Fault::ALL
        .iter()
        .filter(|fault| fault.actor() != Actor::Load && !detected.contains(fault))
        .map(|fault| fault.key())
        .collect();
    let unproven: Vec<String> = scenarios
        .iter()
        .filter(|scenario| scenario.detects.is_empty())
        .map(|scenario| scenario.id.clone())
        .collect();
    vec![
        Trial::test("coverage::every-fault-is-detected", move || {
            if undetected.is_empty() {
                Ok(())
            } else {
                Err(format!("no scenario detects: {}", undetected.join(", ")).into())
            }
        }),
        Trial::test("coverage::every-scenario-can-fail", move || {
            if unproven.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "no fault proves these scenarios can fail: {}",
                    unproven.join(", ")
                )
                .into())
            }
        }),
    ]
}
