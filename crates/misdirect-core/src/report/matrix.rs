//! The results matrix: servers × cases, one verdict per cell, as Markdown (for the README or a
//! docs page) and as a static HTML page, with a legend. Every cell links to its evidence: the
//! section of the server's HTML report (see [`super::html`]) for that case; each server's JUnit
//! report sits beside it too. Against a server's reviewed baseline, a cell says whether its
//! deviation is known (listed with a reason) or new, so that a regression stands out among the
//! deviations everyone already knows. The HTML page keeps its header row in view. Pure: each column is one server's results, as `misdirect matrix` collected
//! them; nothing in the matrix depends on timings or ports, so a fresh run reproduces it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::escape;
use super::html::{STYLE, VERDICTS, anchor};
use crate::baseline::Baseline;
use crate::outcome::{CaseResult, Tally};
use crate::verdict::Verdict;

/// One server's column.
#[derive(Debug, Clone)]
pub struct Column {
    /// The profile's server name.
    pub server: String,
    /// What the server said its version is, when it was started.
    pub version: Option<String>,
    /// The server's reviewed baseline, which tells known deviations from new ones.
    pub baseline: Option<Baseline>,
    pub outcome: ColumnOutcome,
}

#[derive(Debug, Clone)]
pub enum ColumnOutcome {
    Ran(Vec<CaseResult>),
    /// The server could not be started or is not installed.
    NotRun(String),
}

impl Column {
    /// A server's HTML report, relative to the matrix: the evidence each cell links into.
    pub fn report_file(server: &str) -> String {
        format!("{server}.html")
    }

    /// A server's JUnit report, relative to the matrix.
    pub fn junit_file(server: &str) -> String {
        format!("{server}.junit.xml")
    }

    fn report(&self) -> String {
        Self::report_file(&self.server)
    }

    fn junit(&self) -> String {
        Self::junit_file(&self.server)
    }
}

const INTRODUCTION: &str = "Every scenario against every server profile in `targets/`, written by \
    `misdirect matrix`. A cell is the case's verdict and links to its evidence in the server's \
    report (what was expected, what was observed, the transcript); each server's JUnit report is \
    beside it.";

const LEGEND: [(&str, &str); 10] = [
    ("PASS", "every applicable expectation was observed and met"),
    ("FAIL", "a MUST was broken"),
    ("WARN", "a SHOULD was not met"),
    ("INFO", "an optional (MAY) behaviour was observed"),
    (
        "SKIP",
        "does not apply to this server (the report says why)",
    ),
    ("ERROR", "could not be tested (the report says why)"),
    (
        "known",
        "a deviation listed in the server's reviewed baseline, with its reason",
    ),
    ("new", "a deviation the baseline does not list"),
    (
        "changed",
        "a deviation the baseline lists with another verdict",
    ),
    (
        "unexpected-pass",
        "passes, though the baseline lists a deviation: the list is out of date",
    ),
];

/// One cell: the case's verdict, and whether its deviation is known to the server's baseline.
#[derive(Debug, Clone, Copy)]
struct Cell {
    verdict: Verdict,
    /// Where the case stands against the baseline (`known`, `new`, …), if worth saying.
    standing: Option<&'static str>,
}

impl Cell {
    fn of(result: &CaseResult, baseline: Option<&Baseline>) -> Self {
        Self {
            verdict: result.verdict,
            standing: baseline.and_then(|baseline| baseline.standing(result).noted()),
        }
    }

    fn words(self) -> String {
        match self.standing {
            Some(standing) => format!("{} {standing}", self.verdict.label()),
            None => self.verdict.label().to_owned(),
        }
    }
}

/// One row per case ID, with the cell of each column (none where the server was not run).
fn rows(columns: &[Column]) -> BTreeMap<String, Vec<Option<Cell>>> {
    let mut rows: BTreeMap<String, Vec<Option<Cell>>> = BTreeMap::new();
    for (index, column) in columns.iter().enumerate() {
        if let ColumnOutcome::Ran(results) = &column.outcome {
            for result in results {
                rows.entry(result.case_id())
                    .or_insert_with(|| vec![None; columns.len()])[index] =
                    Some(Cell::of(result, column.baseline.as_ref()));
            }
        }
    }
    rows
}

/// Renders the Markdown matrix: a summary row per server, then one row per case.
pub fn render(columns: &[Column]) -> String {
    let mut text = format!("# Results matrix\n\n{INTRODUCTION}\n\n");
    for (word, meaning) in LEGEND {
        let _ = writeln!(text, "- **{word}**: {meaning}");
    }
    text.push('\n');
    text.push_str("| server | version | PASS | FAIL | WARN | INFO | SKIP | ERROR | evidence |\n");
    text.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for column in columns {
        let version = column.version.as_deref().unwrap_or("").replace('|', "/");
        match &column.outcome {
            ColumnOutcome::Ran(results) => {
                let tally = Tally::of(results);
                let _ = write!(text, "| {} | {version} |", column.server);
                for verdict in VERDICTS {
                    let _ = write!(text, " {} |", tally.count(verdict));
                }
                let _ = writeln!(
                    text,
                    " [report]({}) · [JUnit]({}) |",
                    column.report(),
                    column.junit()
                );
            }
            ColumnOutcome::NotRun(reason) => {
                let _ = writeln!(
                    text,
                    "| {} | {version} | not run: {} | | | | | | |",
                    column.server,
                    reason.replace('|', "/").replace('\n', " ")
                );
            }
        }
    }
    text.push_str("\n| case |");
    for column in columns {
        let _ = write!(text, " {} |", column.server);
    }
    text.push_str("\n| --- |");
    text.push_str(&" --- |".repeat(columns.len()));
    text.push('\n');
    for (case, cells) in rows(columns) {
        let _ = write!(text, "| `{case}` |");
        for (column, cell) in columns.iter().zip(cells) {
            match cell {
                Some(cell) => {
                    let _ = write!(
                        text,
                        " [{}]({}#{}) |",
                        cell.words(),
                        column.report(),
                        anchor(&case)
                    );
                }
                None => text.push_str("  |"),
            }
        }
        text.push('\n');
    }
    text
}

/// Renders the HTML matrix: the same tables, with each cell coloured by its verdict.
pub fn render_html(columns: &[Column]) -> String {
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <title>misdirect: results matrix</title><style>{STYLE}</style></head>\n<body>\n\
         <h1>Results matrix</h1>\n<p>{}</p>\n<table>\n<tr><th>server</th><th>version</th>",
        escape(&INTRODUCTION.replace('`', ""))
    );
    for verdict in VERDICTS {
        let _ = write!(page, "<th class=\"{0}\">{0}</th>", verdict.label());
    }
    page.push_str("<th>evidence</th></tr>\n");
    for column in columns {
        let server = format!(
            "<td>{}</td><td>{}</td>",
            escape(&column.server),
            escape(column.version.as_deref().unwrap_or(""))
        );
        match &column.outcome {
            ColumnOutcome::Ran(results) => {
                let tally = Tally::of(results);
                let _ = write!(page, "<tr>{server}");
                for verdict in VERDICTS {
                    let _ = write!(page, "<td>{}</td>", tally.count(verdict));
                }
                let _ = writeln!(
                    page,
                    "<td><a href=\"{}\">report</a> · <a href=\"{}\">JUnit</a></td></tr>",
                    escape(&column.report()),
                    escape(&column.junit())
                );
            }
            ColumnOutcome::NotRun(reason) => {
                let _ = writeln!(
                    page,
                    "<tr>{server}<td colspan=\"7\">not run: {}</td></tr>",
                    escape(reason.lines().next().unwrap_or(""))
                );
            }
        }
    }
    page.push_str("</table>\n<dl id=\"legend\">\n");
    for (word, meaning) in LEGEND {
        let _ = writeln!(page, "<dt>{word}</dt><dd>{meaning}</dd>");
    }
    page.push_str("</dl>\n<table>\n<thead><tr><th>case</th>");
    for column in columns {
        let _ = write!(page, "<th>{}</th>", escape(&column.server));
    }
    page.push_str("</tr></thead>\n");
    for (case, cells) in rows(columns) {
        let _ = write!(page, "<tr><td><code>{}</code></td>", escape(&case));
        for (column, cell) in columns.iter().zip(cells) {
            match cell {
                Some(cell) => {
                    let _ = write!(
                        page,
                        "<td class=\"verdict {0}{1}\"><a href=\"{2}#{3}\">{4}</a></td>",
                        cell.verdict.label(),
                        cell.standing
                            .map_or_else(String::new, |standing| format!(" {standing}")),
                        escape(&column.report()),
                        anchor(&case),
                        cell.words(),
                    );
                }
                None => page.push_str("<td></td>"),
            }
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n</body>\n</html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Protocol;

    fn result(scenario: &str, verdict: Verdict) -> CaseResult {
        CaseResult::sample(scenario, Protocol::Http2, verdict)
    }

    #[test]
    fn cells_line_up_under_their_servers() {
        let columns = [
            Column {
                server: "one".into(),
                version: Some("one/1.0".into()),
                baseline: Some(Baseline {
                    server: "one".into(),
                    deviations: vec![crate::baseline::Deviation {
                        case: "s/a [h2]".into(),
                        verdict: Verdict::Fail,
                        requirement: None,
                        reason: "known".into(),
                        span: None,
                    }],
                }),
                outcome: ColumnOutcome::Ran(vec![result("s/a", Verdict::Fail)]),
            },
            Column {
                server: "two".into(),
                version: None,
                baseline: None,
                outcome: ColumnOutcome::NotRun("`two` is not installed".into()),
            },
            Column {
                server: "three".into(),
                version: None,
                baseline: Some(Baseline {
                    server: "three".into(),
                    deviations: Vec::new(),
                }),
                outcome: ColumnOutcome::Ran(vec![
                    result("s/a", Verdict::Pass),
                    result("s/b", Verdict::Warn),
                ]),
            },
        ];
        let text = render(&columns);
        assert!(
            text.contains(
                "| `s/a [h2]` | [FAIL known](one.html#s-a-h2) |  | [PASS](three.html#s-a-h2) |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| `s/b [h2]` |  |  | [WARN new](three.html#s-b-h2) |"),
            "{text}"
        );
        assert!(text.contains(
            "| one | one/1.0 | 0 | 1 | 0 | 0 | 0 | 0 | [report](one.html) · [JUnit](one.junit.xml) |"
        ));
        assert!(text.contains("| two |  | not run: `two` is not installed |"));
        let page = render_html(&columns);
        assert!(
            page.contains(
                "<tr><td><code>s/b [h2]</code></td><td></td><td></td>\
                 <td class=\"verdict WARN new\"><a href=\"three.html#s-b-h2\">WARN new</a></td></tr>"
            ),
            "{page}"
        );
        assert!(page.contains("not run: `two` is not installed"), "{page}");
        assert!(text.contains("- **known**: a deviation listed"), "{text}");
        assert!(page.contains("<thead><tr><th>case</th>"), "{page}");
        assert!(page.contains("<dt>new</dt>"), "{page}");
    }
}
