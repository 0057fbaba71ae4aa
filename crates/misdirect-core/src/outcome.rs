//! What a case ends with: a [`Verdict`] and the findings behind it, as plain data for every
//! reporter.
//!
//! Two kinds of bad news never mix: a *finding* says the target broke a requirement (FAIL, WARN,
//! INFO); an *error* says the harness could not test (ERROR). SKIP says the case does not apply.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::observe::Transcript;
use crate::protocol::Protocol;
use crate::scenario::{Requirement, Span};
use crate::verdict::{Level, Verdict};

/// The requirement a finding is about, copied out of the scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cited {
    pub id: String,
    pub level: Level,
    pub section: String,
}

impl Cited {
    /// A rule of the catalogue cited at `level`, for the cases no scenario file states (a soak,
    /// an audit); the section is the catalogue's.
    pub fn from_catalogue(id: &str, level: Level) -> Self {
        Self {
            id: id.to_owned(),
            level,
            section: crate::catalogue::find(id)
                .map_or_else(String::new, |entry| entry.section.clone()),
        }
    }
}

impl From<&Requirement> for Cited {
    fn from(requirement: &Requirement) -> Self {
        Self {
            id: requirement.id.clone(),
            level: requirement.level,
            section: requirement.section.clone(),
        }
    }
}

/// One reason a case is not a plain PASS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub verdict: Verdict,
    /// `None` for harness errors that concern no single requirement.
    pub requirement: Option<Cited>,
    pub expected: String,
    pub observed: String,
    /// The expectation (or step) in the scenario file this finding comes from.
    #[serde(
        serialize_with = "serialize_span",
        deserialize_with = "deserialize_span"
    )]
    pub location: Option<Span>,
}

impl Finding {
    /// The verdict of a case with these findings: the gravest of theirs, PASS without any.
    pub fn gravest(findings: &[Self]) -> Verdict {
        findings
            .iter()
            .map(|finding| finding.verdict)
            .max()
            .unwrap_or(Verdict::Pass)
    }

    /// One line: the requirement cited, if any, what was expected and what was observed.
    pub fn summary(&self) -> String {
        let cited = self
            .requirement
            .as_ref()
            .map(|requirement| format!("{} ({}) ", requirement.id, requirement.level.keyword()))
            .unwrap_or_default();
        format!(
            "{cited}expected {}, observed {}",
            self.expected, self.observed
        )
    }
}

fn serialize_span<S: serde::Serializer>(
    span: &Option<Span>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match span {
        Some(span) => serializer.serialize_some(&span.location()),
        None => serializer.serialize_none(),
    }
}

/// A span read back from its `file:line:col` (a merged JSON report): the location is exact,
/// the file's text is not carried, so a snippet shows the location alone.
fn deserialize_span<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Span>, D::Error> {
    let Some(written) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let mut parts = written.rsplitn(3, ':');
    let column = parts.next().and_then(|column| column.parse().ok());
    let line = parts.next().and_then(|line| line.parse().ok());
    let path = parts.next();
    match (path, line, column) {
        (Some(path), Some(line), Some(column)) => Ok(Some(Span::new(
            &crate::scenario::Source::new(path, ""),
            line,
            column,
        ))),
        _ => Err(serde::de::Error::custom(format!(
            "`{written}` is no file:line:col"
        ))),
    }
}

/// One scenario run over one protocol against one target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    pub scenario: String,
    pub suite: String,
    pub name: String,
    pub title: String,
    /// Why the scenario matters, from its file.
    pub description: Option<String>,
    pub protocol: Protocol,
    pub requirements: Vec<Cited>,
    /// `file:line:col` of the scenario.
    pub location: String,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    #[serde(
        rename = "seconds",
        serialize_with = "crate::observe::seconds",
        deserialize_with = "crate::observe::from_seconds"
    )]
    pub duration: Duration,
    pub transcript: Transcript,
}

impl CaseResult {
    pub fn case_id(&self) -> String {
        case_id(&self.scenario, self.protocol)
    }

    /// A result with nothing but a scenario ID, protocol and verdict, for tests of what reads
    /// results.
    #[cfg(test)]
    pub(crate) fn sample(scenario: &str, protocol: Protocol, verdict: Verdict) -> Self {
        Self {
            scenario: scenario.into(),
            suite: "server".into(),
            name: scenario.into(),
            title: String::new(),
            description: None,
            protocol,
            requirements: Vec::new(),
            location: String::new(),
            verdict,
            findings: Vec::new(),
            duration: Duration::ZERO,
            transcript: Transcript::default(),
        }
    }
}

/// `suite/name [h2]`: a case's name, unique across a run and stable across runs.
pub fn case_id(scenario: &str, protocol: Protocol) -> String {
    format!("{scenario} [{protocol}]")
}

/// How many cases ended with each verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub pass: usize,
    pub skip: usize,
    pub info: usize,
    pub warn: usize,
    pub error: usize,
    pub fail: usize,
}

impl Tally {
    pub fn of(results: &[CaseResult]) -> Self {
        let mut tally = Self::default();
        for result in results {
            tally.add(result.verdict);
        }
        tally
    }

    /// Counts one more case with `verdict`, for a tally kept as cases end.
    pub fn add(&mut self, verdict: Verdict) {
        *self.slot(verdict) += 1;
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        match verdict {
            Verdict::Pass => self.pass,
            Verdict::Skip => self.skip,
            Verdict::Info => self.info,
            Verdict::Warn => self.warn,
            Verdict::Error => self.error,
            Verdict::Fail => self.fail,
        }
    }

    fn slot(&mut self, verdict: Verdict) -> &mut usize {
        match verdict {
            Verdict::Pass => &mut self.pass,
            Verdict::Skip => &mut self.skip,
            Verdict::Info => &mut self.info,
            Verdict::Warn => &mut self.warn,
            Verdict::Error => &mut self.error,
            Verdict::Fail => &mut self.fail,
        }
    }

    pub fn total(&self) -> usize {
        Verdict::ALL
            .into_iter()
            .map(|verdict| self.count(verdict))
            .sum()
    }

    /// How a run with these results exits: [`Exit::Failed`] with any FAIL (or, when `strict`,
    /// any WARN), else [`Exit::Error`] with any ERROR, else [`Exit::NothingTested`] when every
    /// case was SKIP, else [`Exit::Clean`].
    pub fn exit(&self, strict: bool) -> Exit {
        if self.fail > 0 || (strict && self.warn > 0) {
            Exit::Failed
        } else if self.error > 0 {
            Exit::Error
        } else if self.skip == self.total() {
            Exit::NothingTested
        } else {
            Exit::Clean
        }
    }
}

/// The exit-code contract of every `misdirect` command, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: no FAIL and no ERROR (WARN, INFO and SKIP may occur), a run that matches its
    /// baseline, or a command that did what it was asked.
    Clean,
    /// 1: at least one FAIL (with `--strict`, also a WARN), or a run that departs from its
    /// baseline.
    Failed,
    /// 2: at least one ERROR and no FAIL, or the harness could not do its job.
    Error,
    /// 3: invalid input (arguments, scenario, profile or baseline files), decided before anything
    /// runs.
    InvalidInput,
    /// 4: nothing was tested: every case was SKIP.
    NothingTested,
    /// 130: stopped by SIGINT (Ctrl-C); the reports hold every finished case, the others as
    /// ERROR.
    Interrupted,
    /// 143: stopped by SIGTERM, likewise.
    Terminated,
}

impl Exit {
    /// What the exit code says, in a few words.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::Clean => "clean: no FAIL and no ERROR, or as the baseline lists",
            Self::Failed => {
                "failed: a MUST broken, a WARN under --strict, or departs from the baseline"
            }
            Self::Error => "error: a case could not be tested",
            Self::InvalidInput => "invalid input",
            Self::NothingTested => "nothing tested: every case was SKIP",
            Self::Interrupted => "interrupted (SIGINT): unfinished cases are ERROR",
            Self::Terminated => "terminated (SIGTERM): unfinished cases are ERROR",
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Self::Clean => 0,
            Self::Failed => 1,
            Self::Error => 2,
            Self::InvalidInput => 3,
            Self::NothingTested => 4,
            Self::Interrupted => 130,
            Self::Terminated => 143,
        }
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} warned, {} info, {} skipped, {} errors",
            self.pass, self.fail, self.warn, self.info, self.skip, self.error
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_follows_the_worst_verdict_and_strictness() {
        let tally = |warn, error, fail| Tally {
            pass: 1,
            skip: 1,
            info: 1,
            warn,
            error,
            fail,
        };
        assert_eq!(tally(0, 0, 0).exit(true), Exit::Clean);
        assert_eq!(tally(1, 0, 0).exit(false), Exit::Clean);
        assert_eq!(tally(1, 0, 0).exit(true), Exit::Failed);
        assert_eq!(tally(0, 1, 0).exit(false), Exit::Error);
        assert_eq!(tally(0, 1, 1).exit(false), Exit::Failed);
        let skipped_only = Tally {
            skip: 3,
            ..Tally::default()
        };
        assert_eq!(skipped_only.exit(true), Exit::NothingTested);
        let codes: Vec<u8> = [
            Exit::Clean,
            Exit::Failed,
            Exit::Error,
            Exit::InvalidInput,
            Exit::NothingTested,
            Exit::Interrupted,
            Exit::Terminated,
        ]
        .into_iter()
        .map(Exit::code)
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 130, 143]);
    }
}
