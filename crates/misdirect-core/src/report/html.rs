//! A static HTML report of one run: one self-contained page (no script, no external file) that
//! opens from disk or any static host. At the top, what the run was (date, misdirect and server
//! version, target, command line, host, wall time) and how it ended (the exit code and what it
//! means), the tally and, against a baseline, the cases that are new, changed or unexpectedly
//! passing apart from the known deviations. Then one row per case, the cases that need attention
//! first (departures from the baseline, then FAIL, ERROR, WARN, INFO, SKIP, PASS), under a header
//! that stays in view; then one section per case in the same order with its evidence: the
//! requirements it cites, linked to their RFC sections and quoted from the catalogue, every
//! finding with what was expected and what was observed, the scenario's location, the baseline's
//! reason for a known deviation, and the transcript. Each section's anchor is [`anchor`] of the
//! case ID, so the results matrix can link a cell straight to the evidence behind it.

use std::fmt::Write as _;

use super::{Run, escape};
use crate::baseline::Standing;
use crate::catalogue;
use crate::outcome::{CaseResult, Exit, Tally};
use crate::verdict::Verdict;

/// The verdicts in the order reports list them.
pub const VERDICTS: [Verdict; 6] = [
    Verdict::Pass,
    Verdict::Fail,
    Verdict::Warn,
    Verdict::Info,
    Verdict::Skip,
    Verdict::Error,
];

/// Shared by every HTML page misdirect writes. Table headers stay in view while a long table
/// scrolls.
pub(crate) const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.2em .5em;\
text-align:left;vertical-align:top}th{background:#f4f4f4}thead th{position:sticky;top:0;z-index:1}\
code,pre{font:12px/1.4 ui-monospace,monospace}pre{background:#f8f8f8;padding:.6em;overflow-x:auto}\
section{border-top:1px solid #ddd;margin-top:1.5em}.PASS{background:#d9f2d9}\
.FAIL{background:#f7c8c8}.WARN{background:#fbe7b5}.INFO{background:#d8e8f8}\
.SKIP{background:#eee;color:#666}.ERROR{background:#e3c8f0}td.verdict a{color:inherit;display:block}\
.known{font-style:italic}.departs,.new,.changed,.unexpected-pass{font-weight:bold;outline:2px solid #b00}.outcome{padding:.4em .8em;display:inline-block}\
blockquote{margin:.2em 0 .2em 1.5em;color:#555}";

/// The anchor of a case's section: its ID in lowercase, runs of other characters as one `-`.
pub fn anchor(case_id: &str) -> String {
    let mut anchor = String::with_capacity(case_id.len());
    for c in case_id.chars() {
        if c.is_ascii_alphanumeric() {
            anchor.push(c.to_ascii_lowercase());
        } else if !anchor.ends_with('-') {
            anchor.push('-');
        }
    }
    anchor.trim_matches('-').to_owned()
}

/// How much attention a case needs, most first: a departure from the baseline, then by verdict
/// (FAIL, ERROR, WARN, INFO, SKIP, PASS).
fn attention(result: &CaseResult, run: &Run<'_>) -> (bool, Verdict) {
    let departs = run
        .baseline
        .is_some_and(|baseline| baseline.standing(result).departs());
    (departs, result.verdict)
}

/// Renders the report of `results` of `run`, which exits with `exit`.
pub fn render(results: &[CaseResult], run: &Run<'_>, exit: Exit) -> String {
    let target = escape(run.target);
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <title>misdirect: {target}</title><style>{STYLE}</style></head>\n<body>\n\
         <h1>misdirect against {target}</h1>\n"
    );
    let outcome = match exit {
        Exit::Clean => "PASS",
        Exit::NothingTested => "SKIP",
        Exit::Failed => "FAIL",
        _ => "ERROR",
    };
    let _ = writeln!(
        page,
        "<p class=\"outcome {outcome}\" id=\"outcome\">exit {}: {}</p>",
        exit.code(),
        escape(exit.meaning())
    );
    metadata(&mut page, run);
    let tally = Tally::of(results);
    page.push_str("<table id=\"tally\"><tr>");
    for verdict in VERDICTS {
        let _ = write!(page, "<th class=\"{0}\">{0}</th>", verdict.label());
    }
    page.push_str("</tr>\n<tr>");
    for verdict in VERDICTS {
        let _ = write!(page, "<td>{}</td>", tally.count(verdict));
    }
    page.push_str("</tr></table>\n");
    let mut ordered: Vec<&CaseResult> = results.iter().collect();
    // Stable: cases of equal attention keep the run's order.
    ordered.sort_by_key(|result| std::cmp::Reverse(attention(result, run)));
    if let Some(baseline) = run.baseline {
        baseline_summary(&mut page, &ordered, baseline);
    }
    page.push_str(
        "<table id=\"cases\">\n<thead><tr><th>case</th><th>verdict</th><th>title</th></tr></thead>\n<tbody>\n",
    );
    for result in &ordered {
        let id = result.case_id();
        let standing = run.baseline.map(|baseline| baseline.standing(result));
        let class = match &standing {
            Some(Standing::Known(_)) => " known",
            Some(standing) if standing.departs() => " departs",
            _ => "",
        };
        let _ = writeln!(
            page,
            "<tr><td><code>{}</code></td><td class=\"verdict {1}{2}\"><a href=\"#{3}\">{1}{4}</a></td>\
             <td>{5}</td></tr>",
            escape(&id),
            result.verdict.label(),
            class,
            anchor(&id),
            // Where the case stands against the baseline, if it is worth saying: `FAIL known`.
            standing
                .as_ref()
                .and_then(Standing::noted)
                .map_or_else(String::new, |word| format!(" {word}")),
            escape(&result.title),
        );
    }
    page.push_str("</tbody></table>\n");
    for result in &ordered {
        section(&mut page, result, run);
    }
    page.push_str("</body>\n</html>\n");
    page
}

/// What the run was: the facts the shell knew, each row only where it is known.
fn metadata(page: &mut String, run: &Run<'_>) {
    let mut rows: Vec<(&str, String)> = vec![("target", run.target.to_owned())];
    if let Some(server) = run.server {
        rows.push(("server", server.to_owned()));
    }
    rows.push(("misdirect", env!("CARGO_PKG_VERSION").to_owned()));
    if let Some(command) = run.command {
        rows.push(("command", command.to_owned()));
    }
    if let Some(started) = run.started {
        rows.push(("started", started.to_owned()));
    }
    if let Some(hostname) = run.hostname {
        rows.push(("host", hostname.to_owned()));
    }
    rows.push(("wall time", format!("{:.2} s", run.wall.as_secs_f64())));
    rows.push((
        "strict",
        if run.strict {
            "yes: a WARN fails the run"
        } else {
            "no"
        }
        .to_owned(),
    ));
    page.push_str("<table id=\"run\">\n");
    for (name, value) in rows {
        let _ = writeln!(
            page,
            "<tr><th>{name}</th><td><code>{}</code></td></tr>",
            escape(&value)
        );
    }
    page.push_str("</table>\n");
}

/// Against a baseline: the departures by kind, each case linked, and how many deviations were
/// known.
fn baseline_summary(
    page: &mut String,
    ordered: &[&CaseResult],
    baseline: &crate::baseline::Baseline,
) {
    let kinds = ["new", "changed", "unexpected-pass", "known"];
    let _ = writeln!(
        page,
        "<h2>Baseline of {}</h2>\n<table id=\"baseline\">",
        escape(&baseline.server)
    );
    for kind in kinds {
        let cases: Vec<String> = ordered
            .iter()
            .filter(|result| baseline.standing(result).key() == kind)
            .map(|result| {
                let id = result.case_id();
                format!(
                    "<a href=\"#{}\">{}</a>&nbsp;{}",
                    anchor(&id),
                    escape(&id),
                    result.verdict.label()
                )
            })
            .collect();
        let _ = writeln!(
            page,
            "<tr><th>{}</th><td>{}</td><td>{}</td></tr>",
            kind.replace('-', " "),
            cases.len(),
            cases.join(", ")
        );
    }
    page.push_str("</table>\n");
}

/// One case's evidence.
fn section(page: &mut String, result: &CaseResult, run: &Run<'_>) {
    let id = result.case_id();
    let _ = writeln!(
        page,
        "<section id=\"{}\">\n<h2><span class=\"{1}\">{1}</span> <code>{2}</code></h2>\n\
         <p>{3}</p>",
        anchor(&id),
        result.verdict.label(),
        escape(&id),
        escape(&result.title),
    );
    if let Some(description) = &result.description {
        let _ = writeln!(page, "<p>{}</p>", escape(description.trim()));
    }
    match run.baseline.map(|baseline| baseline.standing(result)) {
        Some(Standing::Known(deviation)) => {
            let _ = writeln!(
                page,
                "<p class=\"known\">Known deviation (baseline): {}</p>",
                escape(&deviation.reason)
            );
        }
        Some(standing) if standing.departs() => {
            let listed = standing.listed().map_or(String::new(), |listed| {
                format!(
                    ": listed as {} ({})",
                    listed.verdict.label(),
                    escape(&listed.reason)
                )
            });
            let _ = writeln!(
                page,
                "<p class=\"departs\">Departs from the baseline ({}){listed}</p>",
                standing.key().replace('-', " ")
            );
        }
        _ => {}
    }
    page.push_str("<ul>\n");
    for requirement in &result.requirements {
        let _ = write!(
            page,
            "<li>{} ({}, {})",
            escape(&requirement.id),
            requirement.level.keyword(),
            linked(&requirement.section)
        );
        if let Some(entry) = catalogue::find(&requirement.id) {
            let _ = write!(page, "<blockquote>{}</blockquote>", escape(&entry.text));
        }
        page.push_str("</li>\n");
    }
    let _ = writeln!(
        page,
        "<li>scenario <code>{}</code></li>\n</ul>",
        escape(&result.location)
    );
    if !result.findings.is_empty() {
        page.push_str(
            "<table>\n<tr><th>verdict</th><th>requirement</th><th>expected</th><th>observed</th>\
             <th>where</th></tr>\n",
        );
        for finding in &result.findings {
            let requirement = finding.requirement.as_ref().map_or(String::new(), |cited| {
                format!("{} ({})", escape(&cited.id), cited.level.keyword())
            });
            let location = finding
                .location
                .as_ref()
                .map_or(String::new(), |span| escape(&span.location()));
            let _ = writeln!(
                page,
                "<tr><td class=\"{0}\">{0}</td><td>{1}</td><td>{2}</td><td>{3}</td>\
                 <td><code>{4}</code></td></tr>",
                finding.verdict.label(),
                requirement,
                escape(&finding.expected),
                escape(&finding.observed),
                location,
            );
        }
        page.push_str("</table>\n");
    }
    let _ = writeln!(
        page,
        "<pre>{}</pre>\n</section>",
        escape(&result.transcript.to_string())
    );
}

/// A section citation with each RFC section linked to its text.
fn linked(section: &str) -> String {
    catalogue::citations(section)
        .into_iter()
        .map(|citation| match citation.url {
            Some(url) => format!(
                "<a href=\"{}\">{}</a>",
                escape(&url),
                escape(&citation.text)
            ),
            None => escape(&citation.text),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::{Baseline, Deviation};
    use crate::outcome::{Cited, Finding};
    use crate::protocol::Protocol;
    use crate::verdict::Level;

    #[test]
    fn anchors_are_stable_slugs_of_case_ids() {
        assert_eq!(
            anchor("server/uncovered-authority [h2]"),
            "server-uncovered-authority-h2"
        );
        assert_eq!(anchor("a//b  [h3]"), "a-b-h3");
    }

    #[test]
    fn each_case_has_its_section_with_escaped_evidence() {
        let mut failed = CaseResult::sample("server/x", Protocol::Http2, Verdict::Fail);
        failed.findings.push(Finding {
            verdict: Verdict::Fail,
            requirement: None,
            expected: "421 <Misdirected>".into(),
            observed: "200 from tenant \"charlie\"".into(),
            location: None,
        });
        failed.requirements.push(Cited {
            id: "R9110-7.4-b".into(),
            level: Level::Must,
            section: "RFC 9110 §7.4".into(),
        });
        let skipped = CaseResult::sample("server/y", Protocol::Http3, Verdict::Skip);
        let baseline = Baseline {
            server: "s".into(),
            deviations: vec![Deviation {
                case: "server/x [h2]".into(),
                verdict: Verdict::Fail,
                requirement: None,
                reason: "routes by Host & nothing else".into(),
                span: None,
            }],
        };
        let run = Run {
            target: "s <at> 127.0.0.1",
            strict: false,
            baseline: Some(&baseline),
            wall: std::time::Duration::from_millis(2500),
            started: Some("2026-12-02T08:00:00Z"),
            hostname: None,
            server: Some("s/1.0"),
            command: Some("misdirect run --target s"),
        };
        let page = render(&[skipped, failed], &run, Exit::Clean);
        assert!(page.contains("<section id=\"server-x-h2\">"), "{page}");
        assert!(page.contains("<section id=\"server-y-h3\">"), "{page}");
        assert!(page.contains("421 &lt;Misdirected&gt;"), "{page}");
        assert!(page.contains("&quot;charlie&quot;"), "{page}");
        assert!(page.contains("Known deviation (baseline): routes by Host &amp; nothing else"));
        assert!(page.contains("s &lt;at&gt; 127.0.0.1"));
        assert!(!page.contains("<at>"));
        // Failures first, whatever the run's order; a known deviation says so in its cell.
        let position = |text: &str| page.find(text).unwrap_or(usize::MAX);
        assert!(
            position("<section id=\"server-x-h2\">") < position("<section id=\"server-y-h3\">")
        );
        assert!(
            page.contains("href=\"#server-x-h2\">FAIL known</a>"),
            "{page}"
        );
        // Run metadata, the baseline summary and the requirement linked to its RFC section.
        assert!(page.contains("exit 0: clean"), "{page}");
        assert!(
            page.contains("<code>misdirect run --target s</code>"),
            "{page}"
        );
        assert!(page.contains("<code>s/1.0</code>"), "{page}");
        assert!(page.contains("<h2>Baseline of s</h2>"), "{page}");
        assert!(page.contains("<tr><th>known</th><td>1</td>"), "{page}");
        assert!(page.contains("<tr><th>new</th><td>0</td>"), "{page}");
        assert!(
            page.contains(
                "<a href=\"https://www.rfc-editor.org/rfc/rfc9110#section-7.4\">RFC 9110 §7.4</a>"
            ),
            "{page}"
        );
        assert!(page.contains("<blockquote>&quot;"), "{page}");
    }
}
