//! JUnit XML, written so that it is valid under both schemas CI tools check it against: the
//! Jenkins xUnit plugin's `junit-10.xsd` and each `<testsuite>` under Maven Surefire's
//! `surefire-test-report-3.0.xsd` (`docs/schemas/` states their rules; `cargo test` validates).
//! What neither schema lets a `<testcase>` carry (requirement IDs, RFC sections, levels,
//! verdicts, the scenario's `file:line`, timestamp and host) goes into its suite's
//! `<properties>`, named after the case. The run's target names the whole report and every
//! suite, so that reports of two targets merged in one job do not collide.
//!
//! Each case's element follows the exit code, so that the CI's red and green agree with it:
//! FAIL → `<failure>`, ERROR → `<error>`, SKIP → `<skipped>`; a WARN is a `<failure>` under
//! `--strict`. Against a baseline, what is listed with its verdict is a success that says so
//! (the run exits 0 for it), and what departs from the list (new, changed, an unexpected
//! pass) is a `<failure>` or `<error>` with the reason.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::ci::{Shown, show};
use super::{Run, escape};
use crate::baseline::Standing;
use crate::outcome::{CaseResult, Finding};

/// Renders `results` of `run` as a JUnit XML document.
pub fn render(results: &[CaseResult], run: &Run<'_>) -> String {
    let mut suites: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
    for result in results {
        suites.entry(&result.suite).or_default().push(result);
    }
    let shown: Vec<(&CaseResult, Shown)> = results.iter().map(|r| (r, show(r, run))).collect();
    let count = |cases: &[&(&CaseResult, Shown)], wanted: fn(&Shown) -> bool| {
        cases.iter().filter(|(_, shown)| wanted(shown)).count()
    };
    let failures = |shown: &Shown| matches!(shown, Shown::Failure { .. });
    let errors = |shown: &Shown| matches!(shown, Shown::Error(_));
    let skipped = |shown: &Shown| matches!(shown, Shown::Skipped(_));
    let all: Vec<&(&CaseResult, Shown)> = shown.iter().collect();
    // A run in which every case was SKIP exits non-zero (nothing was tested): one error says
    // so, so that the report is red as well.
    let nothing_tested = !results.is_empty() && count(&all, skipped) == all.len();
    let extra = usize::from(nothing_tested);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{}\">",
        escape(&format!("misdirect against {}", run.target)),
        all.len() + extra,
        count(&all, failures),
        count(&all, errors) + extra,
        seconds(run.wall)
    );
    for (suite, cases) in &suites {
        let members: Vec<&(&CaseResult, Shown)> = shown
            .iter()
            .filter(|(result, _)| result.suite == *suite)
            .collect();
        let time: Duration = cases.iter().map(|result| result.duration).sum();
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
            escape(&format!("{}: {suite}", run.target)),
            members.len(),
            count(&members, failures),
            count(&members, errors),
            count(&members, skipped),
            seconds(time)
        );
        xml.push_str("    <properties>\n");
        property(&mut xml, "target", run.target);
        property(&mut xml, "misdirect", env!("CARGO_PKG_VERSION"));
        if let Some(started) = run.started {
            property(&mut xml, "timestamp", started);
        }
        if let Some(hostname) = run.hostname {
            property(&mut xml, "hostname", hostname);
        }
        for (result, _) in &members {
            let case = result.case_id();
            property(
                &mut xml,
                &format!("verdict: {case}"),
                result.verdict.label(),
            );
            property(&mut xml, &format!("scenario: {case}"), &result.location);
            let requirements: Vec<String> = result
                .requirements
                .iter()
                .map(|requirement| {
                    format!(
                        "{} ({}, {})",
                        requirement.id,
                        requirement.level.keyword(),
                        requirement.section
                    )
                })
                .collect();
            property(
                &mut xml,
                &format!("requirements: {case}"),
                &requirements.join("; "),
            );
            if let Some(Standing::Known(listed)) = run.baseline.map(|b| b.standing(result)) {
                property(
                    &mut xml,
                    &format!("known deviation: {case}"),
                    &listed.reason,
                );
            }
        }
        xml.push_str("    </properties>\n");
        for (result, shown) in &members {
            test_case(&mut xml, result, shown, run);
        }
        xml.push_str("  </testsuite>\n");
    }
    if nothing_tested {
        let _ = write!(
            xml,
            "  <testsuite name=\"{}\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" time=\"0.000\">\n    <testcase name=\"nothing tested\" classname=\"run\" time=\"0.000\">\n      <error type=\"NOTHING-TESTED\" message=\"every case was SKIP: nothing was tested\"/>\n    </testcase>\n  </testsuite>\n",
            escape(&format!("{}: run", run.target))
        );
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// One `<testcase>`; its children in the order Surefire's schema fixes: failure, skipped,
/// error, system-out.
fn test_case(xml: &mut String, result: &CaseResult, shown: &Shown, run: &Run<'_>) {
    let _ = writeln!(
        xml,
        "    <testcase name=\"{}\" classname=\"{}\" group=\"{}\" time=\"{}\">",
        escape(&format!("{} [{}]", result.name, result.protocol)),
        escape(&result.suite),
        result.protocol.key(),
        seconds(result.duration)
    );
    let findings = findings_text(&result.findings);
    match shown {
        Shown::Failure { kind, message } => {
            let _ = writeln!(
                xml,
                "      <failure type=\"{kind}\" message=\"{}\">{}</failure>",
                escape(message),
                escape(&findings)
            );
        }
        Shown::Skipped(message) => {
            let _ = writeln!(xml, "      <skipped message=\"{}\"/>", escape(message));
        }
        Shown::Error(message) => {
            let _ = writeln!(
                xml,
                "      <error type=\"ERROR\" message=\"{}\">{}</error>",
                escape(message),
                escape(&findings)
            );
        }
        Shown::Success => {}
    }
    let mut out = format!(
        "{} [{}]: {}\n",
        result.case_id(),
        result.verdict,
        result.title
    );
    if let Some(description) = &result.description {
        let _ = writeln!(out, "{}", description.trim_end());
    }
    let _ = writeln!(out, "scenario: {}", result.location);
    if let Some(Standing::Known(listed)) = run.baseline.map(|b| b.standing(result)) {
        let _ = writeln!(
            out,
            "known deviation ({}): {}",
            listed.verdict, listed.reason
        );
    }
    // Findings go into the failure or error they explain, else here: never twice.
    if matches!(shown, Shown::Success | Shown::Skipped(_)) && !findings.is_empty() {
        let _ = writeln!(out, "{findings}");
    }
    let _ = write!(out, "transcript:\n{}", result.transcript);
    let _ = writeln!(xml, "      <system-out>{}</system-out>", escape(&out));
    xml.push_str("    </testcase>\n");
}

fn property(xml: &mut String, name: &str, value: &str) {
    let _ = writeln!(
        xml,
        "      <property name=\"{}\" value=\"{}\"/>",
        escape(name),
        escape(value)
    );
}

/// Seconds with at most three decimals, as Surefire's schema wants them.
fn seconds(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64())
}

fn findings_text(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|finding| {
            let location = finding
                .location
                .as_ref()
                .map(|span| format!("\n  --> {}", span.location()))
                .unwrap_or_default();
            format!("{}: {}{location}", finding.verdict, finding.summary())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::baseline::Baseline;
    use crate::observe::Transcript;
    use crate::outcome::Cited;
    use crate::protocol::Protocol;
    use crate::verdict::Level;
    use crate::verdict::Verdict;

    fn case(verdict: Verdict) -> CaseResult {
        CaseResult {
            scenario: "server/own-authority".into(),
            suite: "server".into(),
            name: "own-authority".into(),
            title: "t".into(),
            description: None,
            protocol: Protocol::Http2,
            requirements: vec![Cited {
                id: "R9110-7.4-b".into(),
                level: Level::Must,
                section: "RFC 9110 §7.4".into(),
            }],
            location: "suites/server/own-authority.yaml:1:8".into(),
            verdict,
            findings: if verdict == Verdict::Pass {
                Vec::new()
            } else {
                vec![Finding {
                    verdict,
                    requirement: None,
                    expected: "a".into(),
                    observed: "b".into(),
                    location: None,
                }]
            },
            duration: Duration::from_millis(3),
            transcript: Transcript::default(),
        }
    }

    fn run<'a>(strict: bool, baseline: Option<&'a Baseline>) -> Run<'a> {
        Run {
            target: "embedded",
            strict,
            baseline,
            wall: Duration::from_millis(12),
            started: Some("2026-12-02T08:00:00Z"),
            hostname: Some("ci-1"),
            server: None,
            command: None,
        }
    }

    #[test]
    fn verdicts_map_onto_junit_elements() {
        let results = [
            case(Verdict::Pass),
            case(Verdict::Fail),
            case(Verdict::Error),
            case(Verdict::Skip),
            case(Verdict::Warn),
        ];
        let xml = render(&results, &run(false, None));
        assert_eq!(xml.matches("<testcase ").count(), 5);
        assert_eq!(xml.matches("<failure").count(), 1);
        assert_eq!(xml.matches("<error").count(), 1);
        assert_eq!(xml.matches("<skipped").count(), 1);
        assert!(xml.contains(r#"<testsuites name="misdirect against embedded" tests="5" failures="1" errors="1" time="0.012">"#));
        assert!(xml.contains(r#"<testsuite name="embedded: server" tests="5" failures="1" errors="1" skipped="1" time="0.015">"#));
        assert!(
            xml.contains(r#"name="own-authority [h2]" classname="server" group="h2" time="0.003""#)
        );
        assert!(xml.contains(
            r#"<property name="requirements: server/own-authority [h2]" value="R9110-7.4-b (MUST, RFC 9110 §7.4)"/>"#
        ));
        assert!(xml.contains(r#"<property name="hostname" value="ci-1"/>"#));
        assert_eq!(xml.matches("WARN: expected a, observed b").count(), 1);
        // Under --strict, the WARN fails too, and its finding is said once, in the failure.
        let xml = render(&results, &run(true, None));
        assert_eq!(xml.matches("<failure").count(), 2);
        assert_eq!(xml.matches("WARN: expected a, observed b").count(), 2);
    }

    #[test]
    fn against_a_baseline_the_report_follows_the_exit_code() {
        let listed = |verdict| crate::baseline::Deviation {
            case: "server/own-authority [h2]".into(),
            verdict,
            requirement: None,
            reason: "known to fail".into(),
            span: None,
        };
        let baseline = Baseline {
            server: "s".into(),
            deviations: vec![listed(Verdict::Fail)],
        };
        // Listed with its verdict: a success that says why.
        let xml = render(&[case(Verdict::Fail)], &run(false, Some(&baseline)));
        assert_eq!(xml.matches("<failure").count(), 0, "{xml}");
        assert!(xml.contains("known deviation (FAIL): known to fail"));
        // Now passing: the list is out of date, which fails the run.
        let xml = render(&[case(Verdict::Pass)], &run(false, Some(&baseline)));
        assert!(xml.contains(r#"<failure type="UNEXPECTED-PASS""#), "{xml}");
        // A new WARN departs from the list even without --strict.
        let baseline = Baseline {
            server: "s".into(),
            deviations: Vec::new(),
        };
        let xml = render(&[case(Verdict::Warn)], &run(false, Some(&baseline)));
        assert!(
            xml.contains(r#"<failure type="WARN" message="not in the baseline"#),
            "{xml}"
        );
    }

    #[test]
    fn a_run_of_skips_alone_is_red() {
        let xml = render(&[case(Verdict::Skip)], &run(false, None));
        assert!(
            xml.contains(r#"tests="2" failures="0" errors="1""#),
            "{xml}"
        );
        assert!(xml.contains(r#"<error type="NOTHING-TESTED""#));
    }

    #[test]
    fn what_xml_cannot_carry_is_replaced() {
        assert_eq!(
            escape("a<b>&\"c\u{1}\u{ffff}\n"),
            "a&lt;b&gt;&amp;&quot;c\u{fffd}\u{fffd}\n"
        );
    }
}
