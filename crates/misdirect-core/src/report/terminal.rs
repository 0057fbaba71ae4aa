//! The terminal: a line per case as it ends, then every case that is not a plain PASS with its
//! findings, the requirement, expected vs observed and a pointer into the scenario file; then
//! the failing cases and the tally. Verdicts are coloured with ANSI styles (anstyle); whether
//! they reach the screen is the shell's decision (a TTY, `NO_COLOR`, `--color`).

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

/// The line printed as a case ends, `done` of `total`: verdict, duration, progress, case ID.
pub fn progress_line(result: &CaseResult, done: usize, total: usize) -> String {
    let width = total.to_string().len();
    format!(
        "{} [{:>8.3}s] ({done:>width$}/{total}) {}",
        painted(result.verdict, 5),
        result.duration.as_secs_f64(),
        result.case_id()
    )
}

/// A verdict's label right-aligned in `width`, in its colour: red for what fails the run,
/// yellow for a SHOULD, green for a pass, dimmed for what was not tested.
fn painted(verdict: Verdict, width: usize) -> String {
    use anstyle::{AnsiColor, Style};
    let style = match verdict {
        Verdict::Pass => Style::new().fg_color(Some(AnsiColor::Green.into())),
        Verdict::Fail => Style::new().fg_color(Some(AnsiColor::Red.into())).bold(),
        Verdict::Error => Style::new()
            .fg_color(Some(AnsiColor::Magenta.into()))
            .bold(),
        Verdict::Warn => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
        Verdict::Info => Style::new().fg_color(Some(AnsiColor::Cyan.into())),
        Verdict::Skip => Style::new().dimmed(),
    };
    format!("{style}{:>width$}{style:#}", verdict.label())
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
            "{} {}  {}",
            painted(result.verdict, 0),
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
    let failing: Vec<&CaseResult> = results
        .iter()
        .filter(|result| matches!(result.verdict, Verdict::Fail | Verdict::Error))
        .collect();
    if !failing.is_empty() {
        let _ = writeln!(out, "failing:");
        for result in failing {
            let cited = result
                .findings
                .iter()
                .find_map(|finding| finding.requirement.as_ref())
                .map(|requirement| {
                    format!(
                        "{} ({} {})",
                        requirement.id,
                        requirement.level.keyword(),
                        requirement.section
                    )
                })
                .unwrap_or_else(|| "could not test".to_owned());
            let _ = writeln!(
                out,
                "  {} {}  {cited}",
                painted(result.verdict, 5),
                result.case_id()
            );
        }
    }
    let _ = writeln!(
        out,
        "{} cases against {target} in {:.2} s: {tally}",
        tally.total(),
        wall.as_secs_f64()
    );
    out
}
