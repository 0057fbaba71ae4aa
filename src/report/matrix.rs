//! The results matrix: servers × cases, one verdict per cell, as Markdown for the README or a
//! docs page. Pure: each column is one server's results, as `misdirect matrix` collected them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::outcome::{CaseResult, Tally, Verdict};

/// One server's column.
#[derive(Debug, Clone)]
pub struct Column {
    /// The profile's server name.
    pub server: String,
    /// Where this server's JUnit report (the evidence behind each cell) is, relative to the
    /// matrix file.
    pub evidence: String,
    pub outcome: ColumnOutcome,
}

#[derive(Debug, Clone)]
pub enum ColumnOutcome {
    Ran(Vec<CaseResult>),
    /// The server could not be started or is not installed.
    NotRun(String),
}

/// Renders the matrix: a summary row per server, then one row per case.
pub fn render(columns: &[Column]) -> String {
    let mut text = String::from(
        "# Results matrix\n\nEvery scenario against every server profile in `targets/`, written by \
         `misdirect matrix`. A cell is the case's verdict; the server's JUnit report beside this \
         file holds the evidence (what was expected, what was observed, the transcript).\n\n",
    );
    text.push_str("| server | PASS | FAIL | WARN | INFO | SKIP | ERROR | evidence |\n");
    text.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for column in columns {
        match &column.outcome {
            ColumnOutcome::Ran(results) => {
                let tally = Tally::of(results);
                let _ = write!(text, "| {} |", column.server);
                for verdict in [
                    Verdict::Pass,
                    Verdict::Fail,
                    Verdict::Warn,
                    Verdict::Info,
                    Verdict::Skip,
                    Verdict::Error,
                ] {
                    let _ = write!(text, " {} |", tally.count(verdict));
                }
                let _ = writeln!(text, " [JUnit]({}) |", column.evidence);
            }
            ColumnOutcome::NotRun(reason) => {
                let _ = writeln!(
                    text,
                    "| {} | not run: {} | | | | | | |",
                    column.server,
                    reason.replace('|', "/").replace('\n', " ")
                );
            }
        }
    }
    let mut rows: BTreeMap<String, Vec<Option<Verdict>>> = BTreeMap::new();
    for (index, column) in columns.iter().enumerate() {
        if let ColumnOutcome::Ran(results) = &column.outcome {
            for result in results {
                rows.entry(result.case_id())
                    .or_insert_with(|| vec![None; columns.len()])[index] = Some(result.verdict);
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
    for (case, cells) in rows {
        let _ = write!(text, "| `{case}` |");
        for cell in cells {
            let _ = write!(text, " {} |", cell.map_or("", Verdict::label));
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Protocol;

    fn result(scenario: &str, verdict: Verdict) -> CaseResult {
        CaseResult::sample(scenario, Protocol::Http2, verdict)
    }

    #[test]
    fn cells_line_up_under_their_servers() {
        let columns = [
            Column {
                server: "one".into(),
                evidence: "one.xml".into(),
                outcome: ColumnOutcome::Ran(vec![result("s/a", Verdict::Fail)]),
            },
            Column {
                server: "two".into(),
                evidence: "two.xml".into(),
                outcome: ColumnOutcome::NotRun("`two` is not installed".into()),
            },
            Column {
                server: "three".into(),
                evidence: "three.xml".into(),
                outcome: ColumnOutcome::Ran(vec![
                    result("s/a", Verdict::Pass),
                    result("s/b", Verdict::Warn),
                ]),
            },
        ];
        let text = render(&columns);
        assert!(text.contains("| `s/a [h2]` | FAIL |  | PASS |"), "{text}");
        assert!(text.contains("| `s/b [h2]` |  |  | WARN |"), "{text}");
        assert!(text.contains("| one | 0 | 1 | 0 | 0 | 0 | 0 | [JUnit](one.xml) |"));
        assert!(text.contains("| two | not run: `two` is not installed |"));
    }
}
