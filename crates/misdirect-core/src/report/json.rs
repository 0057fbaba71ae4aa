//! The JSON report: everything a run found, as one versioned document (`misdirect-report/1`),
//! for tools to read (and, later, for merging partial runs and rendering the HTML from).
//! A new field may appear within a format version; a field that changes or goes away bumps it.
//! README describes the fields.

use serde::{Deserialize, Serialize};

use crate::outcome::{CaseResult, Exit, Tally};
use crate::report::Run;
use crate::verdict::Verdict;

/// The format and version this module writes.
pub const FORMAT: &str = "misdirect-report/1";

#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    misdirect: &'static str,
    target: &'a str,
    started: Option<&'a str>,
    hostname: Option<&'a str>,
    server: Option<&'a str>,
    command: Option<&'a str>,
    seconds: f64,
    strict: bool,
    exit_code: u8,
    tally: Tally,
    cases: Vec<Case<'a>>,
}

#[derive(Serialize)]
struct Case<'a> {
    /// `scenario [protocol]`, the case's ID everywhere.
    id: String,
    #[serde(flatten)]
    result: &'a CaseResult,
    /// Where the case stands against the run's baseline, if it had one.
    baseline: Option<Listed<'a>>,
}

#[derive(Serialize)]
struct Listed<'a> {
    /// `known`, `new`, `changed`, `unexpected-pass` or `unlisted`.
    standing: &'static str,
    /// The verdict and reason the baseline lists, where it lists the case.
    listed: Option<Verdict>,
    reason: Option<&'a str>,
}

/// A report read back, for `misdirect merge`: the run's facts and its cases.
#[derive(Debug, Deserialize)]
pub struct Partial {
    pub format: String,
    pub target: String,
    pub started: Option<String>,
    pub hostname: Option<String>,
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub command: Option<String>,
    pub seconds: f64,
    pub strict: bool,
    pub cases: Vec<CaseResult>,
}

/// Reads a JSON report of this format version.
pub fn parse(text: &str) -> Result<Partial, String> {
    let partial: Partial = serde_json::from_str(text).map_err(|error| error.to_string())?;
    if partial.format != FORMAT {
        return Err(format!(
            "a `{}` report; this misdirect reads {FORMAT}",
            partial.format
        ));
    }
    Ok(partial)
}

/// Renders `results` of `run`, which exits with `exit`, as the JSON report.
pub fn render(results: &[CaseResult], run: &Run<'_>, exit: Exit) -> String {
    let cases = results
        .iter()
        .map(|result| Case {
            id: result.case_id(),
            result,
            baseline: run.baseline.map(|baseline| {
                let standing = baseline.standing(result);
                let listed = standing.listed();
                Listed {
                    standing: standing.key(),
                    listed: listed.map(|listed| listed.verdict),
                    reason: listed.map(|listed| listed.reason.as_str()),
                }
            }),
        })
        .collect();
    let document = Document {
        format: FORMAT,
        misdirect: env!("CARGO_PKG_VERSION"),
        target: run.target,
        started: run.started,
        hostname: run.hostname,
        server: run.server,
        command: run.command,
        seconds: run.wall.as_secs_f64(),
        strict: run.strict,
        exit_code: exit.code(),
        tally: Tally::of(results),
        cases,
    };
    // Invariant: the document is made of strings, numbers and maps, which always serialize.
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::protocol::Protocol;

    #[test]
    fn the_document_says_its_format_and_every_case() {
        let results = [
            CaseResult::sample("server/a", Protocol::Http2, Verdict::Fail),
            CaseResult::sample("server/b", Protocol::Http3, Verdict::Pass),
        ];
        let run = Run {
            target: "embedded",
            strict: false,
            baseline: None,
            wall: Duration::from_millis(1500),
            started: Some("2026-12-02T09:00:00Z"),
            hostname: None,
            server: Some("nginx/1.22.1"),
            command: Some("misdirect run"),
        };
        let text = render(&results, &run, Exit::Failed);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["format"], FORMAT);
        assert_eq!(value["exit_code"], 1);
        assert_eq!(value["seconds"], 1.5);
        assert_eq!(value["server"], "nginx/1.22.1");
        assert_eq!(value["tally"]["fail"], 1);
        assert_eq!(value["cases"][0]["id"], "server/a [h2]");
        assert_eq!(value["cases"][0]["verdict"], "FAIL");
        assert_eq!(value["cases"][0]["protocol"], "h2");
        assert!(value["cases"][0]["seconds"].is_number());
        assert!(value["cases"][0]["baseline"].is_null());
        // And back, for merging.
        let partial = parse(&text).unwrap();
        assert_eq!(partial.cases.len(), 2);
        assert_eq!(partial.cases[0].verdict, Verdict::Fail);
        assert_eq!(partial.cases[0].case_id(), "server/a [h2]");
        assert!(parse(&text.replace(FORMAT, "misdirect-report/9")).is_err());
    }
}
