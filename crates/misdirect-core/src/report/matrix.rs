//! The results matrices: servers × cases, and clients × client cases, one verdict per cell, as
//! Markdown (for the README or a docs page) and as a static HTML page, with a legend. Every cell
//! links to its evidence: the section of the server's or client's HTML report (see
//! [`super::html`]) for that case; each one's JUnit report sits beside it too. Against its
//! reviewed baseline, a cell says whether its
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

/// What a matrix's columns are: the server profiles of `targets/` or the client profiles of
/// `clients/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subjects {
    Servers,
    Clients,
}

impl Subjects {
    fn noun(self) -> &'static str {
        match self {
            Self::Servers => "server",
            Self::Clients => "client",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Servers => "Results matrix",
            Self::Clients => "Client results matrix",
        }
    }

    fn introduction(self) -> &'static str {
        match self {
            Self::Servers => SERVERS,
            Self::Clients => CLIENTS,
        }
    }
}

/// One server's or client's column.
#[derive(Debug, Clone)]
pub struct Column {
    /// The profile's server or client name.
    pub name: String,
    /// What the server or client said its version is.
    pub version: Option<String>,
    /// Its reviewed baseline, which tells known deviations from new ones.
    pub baseline: Option<Baseline>,
    pub outcome: ColumnOutcome,
}

#[derive(Debug, Clone)]
pub enum ColumnOutcome {
    Ran(Vec<CaseResult>),
    /// The server or client could not be started or is not installed.
    NotRun(String),
}

impl Column {
    /// A column's HTML report, relative to the matrix: the evidence each cell links into.
    pub fn report_file(name: &str) -> String {
        format!("{name}.html")
    }

    /// A column's JUnit report, relative to the matrix.
    pub fn junit_file(name: &str) -> String {
        format!("{name}.junit.xml")
    }

    fn report(&self) -> String {
        Self::report_file(&self.name)
    }

    fn junit(&self) -> String {
        Self::junit_file(&self.name)
    }
}

const SERVERS: &str = "Every scenario against every server profile in `targets/`, written by \
    `misdirect matrix`. A cell is the case's verdict and links to its evidence in the server's \
    report (what was expected, what was observed, the transcript); each server's JUnit report is \
    beside it.";

const CLIENTS: &str = "Every client scenario against every client profile in `clients/`, on the \
    protocols each client is judged on, written by `misdirect matrix`: misdirect plays the origin \
    and judges each client by what reached it. A cell is the case's verdict and links to its \
    evidence in the client's report (what was expected, what the origin saw, the transcript); \
    each client's JUnit report is beside it.";

const LEGEND: [(&str, &str); 10] = [
    ("PASS", "every applicable expectation was observed and met"),
    ("FAIL", "a MUST was broken"),
    ("WARN", "a SHOULD was not met"),
    ("INFO", "an optional (MAY) behaviour was observed"),
    ("SKIP", "does not apply here (the report says why)"),
    ("ERROR", "could not be tested (the report says why)"),
    (
        "known",
        "a deviation listed in the reviewed baseline, with its reason",
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

/// Renders the Markdown matrix: a summary row per server or client, then one row per case.
pub fn render(subjects: Subjects, columns: &[Column]) -> String {
    let mut text = format!("# {}\n\n{}\n\n", subjects.title(), subjects.introduction());
    for (word, meaning) in LEGEND {
        let _ = writeln!(text, "- **{word}**: {meaning}");
    }
    text.push('\n');
    let _ = writeln!(
        text,
        "| {} | version | PASS | FAIL | WARN | INFO | SKIP | ERROR | evidence |",
        subjects.noun()
    );
    text.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for column in columns {
        let version = column.version.as_deref().unwrap_or("").replace('|', "/");
        match &column.outcome {
            ColumnOutcome::Ran(results) => {
                let tally = Tally::of(results);
                let _ = write!(text, "| {} | {version} |", column.name);
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
                    column.name,
                    reason.replace('|', "/").replace('\n', " ")
                );
            }
        }
    }
    text.push_str("\n| case |");
    for column in columns {
        let _ = write!(text, " {} |", column.name);
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
pub fn render_html(subjects: Subjects, columns: &[Column]) -> String {
    let mut page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <title>misdirect: {title}</title><style>{STYLE}</style></head>\n<body>\n\
         <h1>{title}</h1>\n<p>{}</p>\n<table>\n<tr><th>{}</th><th>version</th>",
        escape(&subjects.introduction().replace('`', "")),
        subjects.noun(),
        title = subjects.title(),
    );
    for verdict in VERDICTS {
        let _ = write!(page, "<th class=\"{0}\">{0}</th>", verdict.label());
    }
    page.push_str("<th>evidence</th></tr>\n");
    for column in columns {
        let heading = format!(
            "<td>{}</td><td>{}</td>",
            escape(&column.name),
            escape(column.version.as_deref().unwrap_or(""))
        );
        match &column.outcome {
            ColumnOutcome::Ran(results) => {
                let tally = Tally::of(results);
                let _ = write!(page, "<tr>{heading}");
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
                    "<tr>{heading}<td colspan=\"7\">not run: {}</td></tr>",
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
        let _ = write!(page, "<th>{}</th>", escape(&column.name));
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
                name: "one".into(),
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
                name: "two".into(),
                version: None,
                baseline: None,
                outcome: ColumnOutcome::NotRun("`two` is not installed".into()),
            },
            Column {
                name: "three".into(),
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
        let text = render(Subjects::Servers, &columns);
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
        let page = render_html(Subjects::Servers, &columns);
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
