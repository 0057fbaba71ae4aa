//! The results matrix: servers × cases, one verdict per cell, as Markdown (for the README or a
//! docs page) and as a static HTML page. Every cell links to its evidence: the section of the
//! server's HTML report (see [`super::html`]) for that case; each server's JUnit report sits
//! beside it too. Pure: each column is one server's results, as `misdirect matrix` collected
//! them; nothing in the matrix depends on timings or ports, so a fresh run reproduces it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::escape;
use super::html::{STYLE, VERDICTS, anchor};
use crate::outcome::{CaseResult, Tally};
use crate::verdict::Verdict;

/// One server's column.
#[derive(Debug, Clone)]
pub struct Column {
    /// The profile's server name.
    pub server: String,
    /// What the server said its version is, when it was started.
    pub version: Option<String>,
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

/// One row per case ID, with the verdict of each column (none where the server was not run).
fn rows(columns: &[Column]) -> BTreeMap<String, Vec<Option<Verdict>>> {
    let mut rows: BTreeMap<String, Vec<Option<Verdict>>> = BTreeMap::new();
    for (index, column) in columns.iter().enumerate() {
        if let ColumnOutcome::Ran(results) = &column.outcome {
            for result in results {
                rows.entry(result.case_id())
                    .or_insert_with(|| vec![None; columns.len()])[index] = Some(result.verdict);
            }
        }
    }
    rows
}

/// Renders the Markdown matrix: a summary row per server, then one row per case.
pub fn render(columns: &[Column]) -> String {
    let mut text = format!("# Results matrix\n\n{INTRODUCTION}\n\n");
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
                Some(verdict) => {
                    let _ = write!(
                        text,
                        " [{}]({}#{}) |",
                        verdict.label(),
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
    page.push_str("</table>\n<table>\n<tr><th>case</th>");
    for column in columns {
        let _ = write!(page, "<th>{}</th>", escape(&column.server));
    }
    page.push_str("</tr>\n");
    for (case, cells) in rows(columns) {
        let _ = write!(page, "<tr><td><code>{}</code></td>", escape(&case));
        for (column, cell) in columns.iter().zip(cells) {
            match cell {
                Some(verdict) => {
                    let _ = write!(
                        page,
                        "<td class=\"verdict {0}\"><a href=\"{1}#{2}\">{0}</a></td>",
                        verdict.label(),
                        escape(&column.report()),
                        anchor(&case)
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
                outcome: ColumnOutcome::Ran(vec![result("s/a", Verdict::Fail)]),
            },
            Column {
                server: "two".into(),
                version: None,
                outcome: ColumnOutcome::NotRun("`two` is not installed".into()),
            },
            Column {
                server: "three".into(),
                version: None,
                outcome: ColumnOutcome::Ran(vec![
                    result("s/a", Verdict::Pass),
                    result("s/b", Verdict::Warn),
                ]),
            },
        ];
        let text = render(&columns);
        assert!(
            text.contains(
                "| `s/a [h2]` | [FAIL](one.html#s-a-h2) |  | [PASS](three.html#s-a-h2) |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| `s/b [h2]` |  |  | [WARN](three.html#s-b-h2) |"),
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
                 <td class=\"verdict WARN\"><a href=\"three.html#s-b-h2\">WARN</a></td></tr>"
            ),
            "{page}"
        );
        assert!(page.contains("not run: `two` is not installed"), "{page}");
    }
}
