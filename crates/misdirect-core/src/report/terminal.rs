//! The terminal summary: every case that is not a plain PASS with its findings, the requirement,
//! expected vs observed and a pointer into the scenario file; then the tally.

use std::fmt::Write as _;
use std::time::Duration;

use crate::outcome::{CaseResult, Tally};
use crate::verdict::Verdict;

/// How much to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Detail {
    /// Also list passing cases, one line each.
    pub passes: bool,
    /// Append the transcript of every listed case.
    pub transcripts: bool,
}

/// Renders the summary of a run against `target` that took `wall` time.
pub fn render(results: &[CaseResult], target: &str, wall: Duration, detail: Detail) -> String {
    let mut out = String::new();
    for result in results {
        if result.verdict == Verdict::Pass && !detail.passes {
            continue;
        }
        let _ = writeln!(
            out,
            "{:<5} {}  {}",
            result.verdict,
            result.case_id(),
            result.title
        );
        for finding in &result.findings {
            match &finding.requirement {
                Some(requirement) => {
                    let _ = writeln!(
                        out,
                        "      {} {}: {} ({})",
                        finding.verdict,
                        requirement.id,
                        requirement.level.keyword(),
                        requirement.section
                    );
                }
                None => {
                    let _ = writeln!(out, "      {}", finding.verdict);
                }
            }
            let _ = writeln!(out, "        expected: {}", finding.expected);
            let _ = writeln!(out, "        observed: {}", finding.observed);
            if let Some(span) = &finding.location {
                for line in span.snippet().lines() {
                    let _ = writeln!(out, "        {line}");
                }
            }
        }
        if detail.transcripts {
            for line in result.transcript.to_string().lines() {
                let _ = writeln!(out, "        | {line}");
            }
        }
    }
    let tally = Tally::of(results);
    let _ = writeln!(
        out,
        "{} cases against {target} in {:.2} s: {tally}",
        tally.total(),
        wall.as_secs_f64()
    );
    out
}
