//! A static HTML report of one run: one self-contained page (no script, no external file) that
//! opens from disk or any static host. A summary, one row per case, then one section per case
//! with its evidence: the requirements it cites, every finding with what was expected and what
//! was observed, the scenario's location, the baseline's reason for a known deviation, and the
//! transcript. Each section's anchor is [`anchor`] of the case ID, so the results matrix can link
//! a cell straight to the evidence behind it.

use std::fmt::Write as _;

use super::escape;
use crate::baseline::Baseline;
use crate::outcome::{CaseResult, Tally};
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

/// Shared by every HTML page misdirect writes.
pub(crate) const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.2em .5em;\
text-align:left;vertical-align:top}th{background:#f4f4f4}code,pre{font:12px/1.4 ui-monospace,\
monospace}pre{background:#f8f8f8;padding:.6em;overflow-x:auto}section{border-top:1px solid #ddd;\
margin-top:1.5em}.PASS{background:#d9f2d9}.FAIL{background:#f7c8c8}.WARN{background:#fbe7b5}\
.INFO{background:#d8e8f8}.SKIP{background:#eee;color:#666}.ERROR{background:#e3c8f0}\
td.verdict a{color:inherit;display:block}.known{font-style:italic}";

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

/// Renders the report of a run against `target`.
pub fn render(results: &[CaseResult], target: &str, baseline: Option<&Baseline>) -> String {
    let target = escape(target);
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <title>misdirect: {target}</title><style>{STYLE}</style></head>\n<body>\n\
         <h1>misdirect against {target}</h1>\n"
    );
    let tally = Tally::of(results);
    page.push_str("<table><tr>");
    for verdict in VERDICTS {
        let _ = write!(page, "<th class=\"{0}\">{0}</th>", verdict.label());
    }
    page.push_str("</tr>\n<tr>");
    for verdict in VERDICTS {
        let _ = write!(page, "<td>{}</td>", tally.count(verdict));
    }
    page.push_str("</tr></table>\n<table>\n<tr><th>case</th><th>verdict</th><th>title</th></tr>\n");
    for result in results {
        let id = result.case_id();
        let _ = writeln!(
            page,
            "<tr><td><code>{}</code></td><td class=\"verdict {1}\"><a href=\"#{2}\">{1}</a></td>\
             <td>{3}</td></tr>",
            escape(&id),
            result.verdict.label(),
            anchor(&id),
            escape(&result.title),
        );
    }
    page.push_str("</table>\n");
    for result in results {
        section(&mut page, result, baseline);
    }
    page.push_str("</body>\n</html>\n");
    page
}

/// One case's evidence.
fn section(page: &mut String, result: &CaseResult, baseline: Option<&Baseline>) {
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
    if let Some(deviation) = baseline.and_then(|baseline| baseline.known(result)) {
        let _ = writeln!(
            page,
            "<p class=\"known\">Known deviation (baseline): {}</p>",
            escape(&deviation.reason)
        );
    }
    page.push_str("<ul>\n");
    for requirement in &result.requirements {
        let _ = writeln!(
            page,
            "<li>{} ({}, {})</li>",
            escape(&requirement.id),
            requirement.level.keyword(),
            escape(&requirement.section)
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::Deviation;
    use crate::outcome::Finding;
    use crate::protocol::Protocol;

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
        let page = render(&[failed, skipped], "s <at> 127.0.0.1", Some(&baseline));
        assert!(page.contains("<section id=\"server-x-h2\">"), "{page}");
        assert!(page.contains("<section id=\"server-y-h3\">"), "{page}");
        assert!(page.contains("href=\"#server-x-h2\">FAIL</a>"), "{page}");
        assert!(page.contains("421 &lt;Misdirected&gt;"), "{page}");
        assert!(page.contains("&quot;charlie&quot;"), "{page}");
        assert!(page.contains("Known deviation (baseline): routes by Host &amp; nothing else"));
        assert!(page.contains("s &lt;at&gt; 127.0.0.1"));
        assert!(!page.contains("<at>"));
    }
}
