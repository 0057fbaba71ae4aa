//! TAP version 14 (the Test Anything Protocol), for the tools and CI systems that read it:
//! one test point per case, `ok` or `not ok` as the exit code decides (`report/ci.rs`), a
//! SKIP directive with its reason, and a YAML diagnostic block with the verdict, the
//! requirement and what was expected and observed. A known deviation of a baseline is `ok` with
//! the baseline's reason; a run in which every case was SKIP ends with a failing point saying
//! that nothing was tested, as the exit code (4) does.

use std::fmt::Write as _;

use super::Run;
use super::ci::{Shown, show};
use crate::baseline::Standing;
use crate::outcome::CaseResult;

/// Renders `results` of `run` as a TAP 14 document.
pub fn render(results: &[CaseResult], run: &Run<'_>) -> String {
    let shown: Vec<Shown> = results.iter().map(|result| show(result, run)).collect();
    let nothing_tested =
        !results.is_empty() && shown.iter().all(|shown| matches!(shown, Shown::Skipped(_)));
    let mut tap = format!(
        "TAP version 14\n1..{}\n# misdirect against {}\n",
        results.len() + usize::from(nothing_tested),
        single_line(run.target)
    );
    for (number, (result, shown)) in results.iter().zip(&shown).enumerate() {
        let id = single_line(&result.case_id());
        let number = number + 1;
        match shown {
            Shown::Success => {
                let _ = writeln!(tap, "ok {number} - {id}");
            }
            Shown::Skipped(_) => {
                let reason = result
                    .findings
                    .first()
                    .map_or_else(String::new, |finding| single_line(&finding.summary()));
                let _ = writeln!(tap, "ok {number} - {id} # SKIP {reason}");
            }
            Shown::Failure { message, .. } | Shown::Error(message) => {
                let _ = writeln!(tap, "not ok {number} - {id}");
                diagnostics(&mut tap, result, message);
            }
        }
        if let Some(Standing::Known(listed)) = run.baseline.map(|b| b.standing(result)) {
            let _ = writeln!(
                tap,
                "# known deviation ({}): {}",
                listed.verdict,
                single_line(&listed.reason)
            );
        }
    }
    if nothing_tested {
        let _ = writeln!(
            tap,
            "not ok {} - nothing tested: every case was SKIP",
            results.len() + 1
        );
    }
    tap
}

/// The YAML block under a failing point: two spaces in, between `---` and `...`.
fn diagnostics(tap: &mut String, result: &CaseResult, message: &str) {
    let _ = writeln!(tap, "  ---");
    let _ = writeln!(tap, "  message: {}", quoted(message));
    let _ = writeln!(tap, "  severity: {}", result.verdict.label().to_lowercase());
    let _ = writeln!(tap, "  scenario: {}", quoted(&result.location));
    let findings: Vec<_> = result
        .findings
        .iter()
        .filter(|finding| finding.verdict == result.verdict)
        .collect();
    if !findings.is_empty() {
        let _ = writeln!(tap, "  findings:");
    }
    for finding in findings {
        let requirement = finding.requirement.as_ref().map_or(String::new(), |cited| {
            format!(
                "{} ({}, {})",
                cited.id,
                cited.level.keyword(),
                cited.section
            )
        });
        let _ = writeln!(tap, "    - requirement: {}", quoted(&requirement));
        let _ = writeln!(tap, "      expected: {}", quoted(&finding.expected));
        let _ = writeln!(tap, "      observed: {}", quoted(&finding.observed));
        if let Some(at) = &finding.location {
            let _ = writeln!(tap, "      at: {}", quoted(&at.location()));
        }
    }
    let _ = writeln!(tap, "  ...");
}

/// A YAML double-quoted scalar: safe whatever a hostile target put in it.
fn quoted(text: &str) -> String {
    // Invariant: a string always serializes as JSON, and JSON strings are YAML scalars.
    serde_json::to_string(text).unwrap_or_default()
}

/// Text on one line, for a test point's description or directive.
fn single_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .replace('#', "\\#")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outcome::Finding;
    use crate::protocol::Protocol;
    use crate::verdict::Verdict;

    fn run(strict: bool) -> Run<'static> {
        Run {
            target: "embedded",
            strict,
            baseline: None,
            wall: Duration::ZERO,
            started: None,
            hostname: None,
            server: None,
            command: None,
        }
    }

    #[test]
    fn points_follow_the_exit_code() {
        let mut failed = CaseResult::sample("server/a", Protocol::Http2, Verdict::Fail);
        failed.findings.push(Finding {
            verdict: Verdict::Fail,
            requirement: None,
            expected: "421".into(),
            observed: "200 from \"charlie\"\n# not a comment".into(),
            location: None,
        });
        let results = [
            CaseResult::sample("server/b", Protocol::Http1, Verdict::Pass),
            failed,
            CaseResult::sample("server/c", Protocol::Http3, Verdict::Warn),
        ];
        let tap = render(&results, &run(false));
        assert!(tap.starts_with("TAP version 14\n1..3\n"), "{tap}");
        assert!(tap.contains("ok 1 - server/b [h1]\n"), "{tap}");
        assert!(tap.contains("not ok 2 - server/a [h2]\n  ---\n"), "{tap}");
        assert!(
            tap.contains("      observed: \"200 from \\\"charlie\\\"\\n# not a comment\"\n"),
            "{tap}"
        );
        assert!(tap.contains("ok 3 - server/c [h3]\n"), "{tap}");
        assert!(render(&results, &run(true)).contains("not ok 3 - server/c [h3]\n"));
    }

    #[test]
    fn all_skipped_is_not_ok() {
        let results = [CaseResult::sample(
            "server/a",
            Protocol::Http3,
            Verdict::Skip,
        )];
        let tap = render(&results, &run(false));
        assert!(tap.contains("1..2\n"), "{tap}");
        assert!(tap.contains("ok 1 - server/a [h3] # SKIP \n"), "{tap}");
        assert!(tap.contains("not ok 2 - nothing tested"), "{tap}");
    }
}
