//! The terminal: a line per case as it ends, then every case that is not a plain PASS with its
//! findings, the requirement, expected vs observed and a pointer into the scenario file; then
//! the failing cases, each with the text of the requirement it broke quoted from the catalogue,
//! and the tally. Verdicts are coloured with ANSI styles (anstyle); whether
//! they reach the screen is the shell's decision (a TTY, `NO_COLOR`, `--color`).

use std::fmt::Write as _;
use std::time::Duration;

use crate::catalogue;
use crate::outcome::{CaseResult, Tally};
use crate::verdict::Verdict;

/// How much to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Detail {
    /// Also list passing and skipped cases, one by one.
    pub passes: bool,
    /// Append the transcript of every listed case, not only of those that failed, erred or
    /// warned.
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
    // Skipped cases are grouped by their reason below, unless every case is listed.
    let mut skips: Vec<(String, Vec<String>)> = Vec::new();
    for result in results {
        if result.verdict == Verdict::Skip && !detail.passes {
            let reason = result.findings.first().map_or_else(
                || "no reason given".to_owned(),
                |finding| finding.observed.clone(),
            );
            match skips.iter_mut().find(|(known, _)| *known == reason) {
                Some((_, cases)) => cases.push(result.case_id()),
                None => skips.push((reason, vec![result.case_id()])),
            }
            continue;
        }
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
        let troubled = matches!(
            result.verdict,
            Verdict::Fail | Verdict::Error | Verdict::Warn
        );
        if detail.transcripts || troubled {
            for line in result.transcript.to_string().lines() {
                let _ = writeln!(out, "        | {line}");
            }
        }
    }
    if !skips.is_empty() {
        let _ = writeln!(out, "skipped, by reason:");
        for (reason, cases) in &skips {
            let shown: Vec<&str> = cases.iter().take(3).map(String::as_str).collect();
            let more = cases.len().saturating_sub(shown.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "  {} × {reason}\n      {}{more}",
                cases.len(),
                shown.join(", ")
            );
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
            // The requirement of the finding that made the verdict, else of any finding.
            let requirement = result
                .findings
                .iter()
                .filter(|finding| finding.verdict == result.verdict)
                .chain(&result.findings)
                .find_map(|finding| finding.requirement.as_ref());
            let cited = requirement.map_or_else(
                || "could not test".to_owned(),
                |requirement| {
                    format!(
                        "{} ({} {})",
                        requirement.id,
                        requirement.level.keyword(),
                        requirement.section
                    )
                },
            );
            let _ = writeln!(
                out,
                "  {} {}  {cited}",
                painted(result.verdict, 5),
                result.case_id()
            );
            if let Some(entry) = requirement.and_then(|cited| catalogue::find(&cited.id)) {
                let _ = writeln!(out, "        {}", shortened(&entry.text, QUOTED));
            }
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

/// How much of a requirement's text the list of failing cases quotes.
const QUOTED: usize = 160;

/// `text` cut at a word boundary within `limit` characters, marked with "…" where cut.
fn shortened(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let cut: String = text.chars().take(limit).collect();
    let at_word = cut.rfind(' ').map_or(cut.as_str(), |space| &cut[..space]);
    format!("{at_word} …")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Finding;
    use crate::protocol::Protocol;

    fn skipped(scenario: &str, reason: &str) -> CaseResult {
        let mut result = CaseResult::sample(scenario, Protocol::Http3, Verdict::Skip);
        result.findings.push(Finding {
            verdict: Verdict::Skip,
            requirement: None,
            expected: String::new(),
            observed: reason.into(),
            location: None,
        });
        result
    }

    #[test]
    fn skips_are_grouped_by_reason_and_failures_listed_last() {
        let results = [
            skipped("server/a", "no HTTP/3 endpoint"),
            skipped("server/b", "no HTTP/3 endpoint"),
            skipped("server/c", "not a client"),
            CaseResult::sample("server/d", Protocol::Http2, Verdict::Fail),
        ];
        let out = render(&results, "t", Duration::ZERO, Detail::default());
        assert!(
            out.contains("  2 × no HTTP/3 endpoint\n      server/a [h3], server/b [h3]\n"),
            "{out}"
        );
        assert!(out.contains("  1 × not a client\n"), "{out}");
        assert!(out.contains("failing:\n"), "{out}");
        assert!(!out.contains("SKIP server/a"), "{out}");
    }

    #[test]
    fn a_failing_case_quotes_the_requirement_it_broke() {
        let mut failed = CaseResult::sample("server/d", Protocol::Http2, Verdict::Fail);
        let cited = |id: &str, level| crate::outcome::Cited {
            id: id.into(),
            level,
            section: "RFC 9110 §7.4".into(),
        };
        for (verdict, id, level) in [
            (Verdict::Warn, "R9110-7.4-c", crate::verdict::Level::Should),
            (Verdict::Fail, "R9110-7.4-b", crate::verdict::Level::Must),
        ] {
            failed.findings.push(Finding {
                verdict,
                requirement: Some(cited(id, level)),
                expected: String::new(),
                observed: String::new(),
                location: None,
            });
        }
        let out = render(&[failed], "t", Duration::ZERO, Detail::default());
        let failing = out.split("failing:\n").nth(1).unwrap_or_default();
        assert!(
            failing.contains("server/d [h2]  R9110-7.4-b (MUST RFC 9110 §7.4)"),
            "{out}"
        );
        assert!(
            failing.contains("        \"a request for an \"https\" resource MUST be rejected"),
            "{out}"
        );
        assert!(failing.contains(" …\n"), "{out}");
    }

    #[test]
    fn shortening_cuts_at_a_word() {
        assert_eq!(shortened("one two three", 20), "one two three");
        assert_eq!(shortened("one two three", 9), "one two …");
    }
}
