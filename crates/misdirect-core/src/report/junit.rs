//! JUnit XML through quick-junit: one `<testsuite>` per suite folder, one `<testcase>` per
//! scenario × protocol. FAIL → `<failure>`, ERROR → `<error>`, SKIP → `<skipped>`; WARN and INFO
//! stay successes (JUnit has no such states) but carry a `verdict` property and their findings in
//! `<system-out>`, so nothing is lost. Requirement IDs are properties; the transcript is the body.
//! A case a baseline lists with its verdict keeps that verdict and gains a `known-deviation`
//! property with the baseline's reason, so CI shows both what happened and that it was expected.

use std::collections::BTreeMap;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::baseline::Baseline;
use crate::outcome::{CaseResult, Finding};
use crate::verdict::Verdict;

/// Renders `results` of a run against `target` as a JUnit XML document.
pub fn render(
    results: &[CaseResult],
    target: &str,
    baseline: Option<&Baseline>,
) -> Result<String, quick_junit::SerializeError> {
    let mut report = Report::new("misdirect");
    let mut suites: BTreeMap<&str, TestSuite> = BTreeMap::new();
    for result in results {
        let suite = suites.entry(&result.suite).or_insert_with(|| {
            let mut suite = TestSuite::new(result.suite.clone());
            suite.add_property(Property::new("target", target));
            suite
        });
        let mut case = test_case(result);
        if let Some(deviation) = baseline.and_then(|baseline| baseline.known(result)) {
            case.add_property(Property::new("known-deviation", deviation.reason.clone()));
        }
        suite.add_test_case(case);
    }
    report.add_test_suites(suites.into_values());
    report.set_time(results.iter().map(|result| result.duration).sum());
    report.to_string()
}

fn test_case(result: &CaseResult) -> TestCase {
    let status = match result.verdict {
        Verdict::Pass | Verdict::Warn | Verdict::Info => TestCaseStatus::success(),
        Verdict::Skip => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(headline(result));
            status
        }
        Verdict::Fail | Verdict::Error => {
            let kind = if result.verdict == Verdict::Fail {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut status = TestCaseStatus::non_success(kind);
            status
                .set_message(headline(result))
                .set_type(result.verdict.label())
                .set_description(findings_text(&result.findings));
            status
        }
    };
    let mut case = TestCase::new(format!("{} [{}]", result.name, result.protocol), status);
    case.set_classname(result.suite.clone())
        .set_time(result.duration)
        .add_property(Property::new("verdict", result.verdict.label()))
        .add_property(Property::new("protocol", result.protocol.key()))
        .add_property(Property::new("scenario", result.location.clone()));
    for requirement in &result.requirements {
        case.add_property(Property::new(
            "requirement",
            format!(
                "{} ({}, {})",
                requirement.id,
                requirement.level.keyword(),
                requirement.section
            ),
        ));
    }
    let mut out = format!("{}\n", result.title);
    if let Some(description) = &result.description {
        out.push_str(&format!("{}\n", description.trim_end()));
    }
    if matches!(result.verdict, Verdict::Warn | Verdict::Info) {
        out.push_str(&format!(
            "{}\n{}\n",
            headline(result),
            findings_text(&result.findings)
        ));
    }
    out.push_str(&format!("transcript:\n{}", result.transcript));
    case.set_system_out(out);
    case
}

/// One line: the verdict and the first finding.
fn headline(result: &CaseResult) -> String {
    match result.findings.first() {
        Some(finding) => format!("{}: {}", result.verdict, finding.summary()),
        None => result.verdict.to_string(),
    }
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
    use crate::observe::Transcript;
    use crate::outcome::Cited;
    use crate::protocol::Protocol;
    use crate::verdict::Level;

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

    #[test]
    fn verdicts_map_onto_junit_elements() {
        let xml = render(
            &[
                case(Verdict::Pass),
                case(Verdict::Fail),
                case(Verdict::Error),
                case(Verdict::Skip),
                case(Verdict::Warn),
            ],
            "embedded",
            None,
        )
        .unwrap();
        assert_eq!(xml.matches("<testcase ").count(), 5);
        assert_eq!(xml.matches("<failure").count(), 1);
        assert_eq!(xml.matches("<error").count(), 1);
        assert_eq!(xml.matches("<skipped").count(), 1);
        assert!(xml.contains(r#"name="own-authority [h2]""#));
        assert!(xml.contains(r#"classname="server""#));
        assert!(xml.contains(
            r#"<property name="requirement" value="R9110-7.4-b (MUST, RFC 9110 §7.4)"/>"#
        ));
        assert!(xml.contains(r#"<property name="verdict" value="WARN"/>"#));
        assert!(xml.contains("WARN: expected a, observed b"));
        assert!(!xml.contains("known-deviation"));
    }

    #[test]
    fn a_listed_deviation_keeps_its_verdict_and_says_why() {
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
        let xml = render(&[case(Verdict::Fail)], "s", Some(&baseline)).unwrap();
        assert_eq!(xml.matches("<failure").count(), 1);
        assert!(xml.contains(r#"<property name="known-deviation" value="known to fail"/>"#));
        // Listed with another verdict: not the known deviation.
        let baseline = Baseline {
            server: "s".into(),
            deviations: vec![listed(Verdict::Warn)],
        };
        let xml = render(&[case(Verdict::Fail)], "s", Some(&baseline)).unwrap();
        assert!(!xml.contains("known-deviation"));
    }
}
