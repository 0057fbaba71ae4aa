//! Known deviations: the cases a server is expected to FAIL or WARN (or, where it makes a case
//! untestable, ERROR), each with the reason, so that CI against a real server is green until
//! something changes.
//!
//! A run compared with a baseline holds only when every FAIL, WARN and ERROR is listed with that
//! verdict and every listed case still deviates: a new deviation fails the run, and so does an
//! *unexpected pass*, so that the list cannot silently go stale. Comparing is pure; loading
//! reads one file.

use std::fmt::{self, Write as _};
use std::path::Path;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::outcome::CaseResult;
use crate::scenario::{LoadError, Span, read_yaml, span_of};
use crate::verdict::Verdict;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBaseline {
    /// The server, or with `client:` the client, whose deviations these are.
    #[serde(alias = "client")]
    server: String,
    #[serde(default)]
    deviations: Vec<RawDeviation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeviation {
    case: Spanned<String>,
    verdict: Spanned<String>,
    #[serde(default)]
    requirement: Option<String>,
    reason: Spanned<String>,
}

/// One case a server is known to get wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deviation {
    /// `suite/name [protocol]`, as reports name cases.
    pub case: String,
    pub verdict: Verdict,
    pub requirement: Option<String>,
    pub reason: String,
    pub span: Option<Span>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    pub server: String,
    pub deviations: Vec<Deviation>,
}

/// How a run's results compare with a baseline.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// Deviations that occurred as listed.
    pub expected: usize,
    /// FAIL, WARN or ERROR cases the baseline does not list.
    pub new: Vec<(String, Verdict)>,
    /// Listed cases that deviated with another verdict: (case, listed, observed).
    pub changed: Vec<(String, Verdict, Verdict)>,
    /// Listed cases that passed.
    pub unexpected_passes: Vec<Deviation>,
}

impl Comparison {
    pub fn holds(&self) -> bool {
        self.new.is_empty() && self.changed.is_empty() && self.unexpected_passes.is_empty()
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (case, verdict) in &self.new {
            writeln!(f, "NEW {verdict} {case}: not in the baseline")?;
        }
        for (case, listed, observed) in &self.changed {
            writeln!(f, "CHANGED {case}: listed as {listed}, now {observed}")?;
        }
        for deviation in &self.unexpected_passes {
            writeln!(
                f,
                "UNEXPECTED PASS {}: listed as {} ({}); remove it from the baseline",
                deviation.case, deviation.verdict, deviation.reason
            )?;
        }
        write!(
            f,
            "baseline: {} expected deviations, {} new, {} changed, {} unexpected passes",
            self.expected,
            self.new.len(),
            self.changed.len(),
            self.unexpected_passes.len()
        )
    }
}

fn deviates(verdict: Verdict) -> bool {
    matches!(verdict, Verdict::Fail | Verdict::Warn | Verdict::Error)
}

/// Compares results with a baseline. Listed cases that did not run (filtered out) or ended in
/// SKIP or INFO are neither expected nor unexpected.
impl Baseline {
    /// The deviation that lists `result` with the verdict it got, if one does.
    pub fn known(&self, result: &CaseResult) -> Option<&Deviation> {
        let case = result.case_id();
        self.deviations
            .iter()
            .find(|deviation| deviation.case == case && deviation.verdict == result.verdict)
    }
}

/// Where one case stands against a baseline: the one decision that the comparison, the exit
/// code and the JUnit report all follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing<'a> {
    /// Listed with this very verdict: a known deviation.
    Known(&'a Deviation),
    /// A FAIL, WARN or ERROR the baseline does not list.
    New,
    /// Listed with another verdict than the one it got.
    Changed(&'a Deviation),
    /// Listed, and now it passes: the list is out of date.
    UnexpectedPass(&'a Deviation),
    /// Not listed and no deviation: nothing to say.
    Unlisted,
}

impl<'a> Standing<'a> {
    /// Whether the run departs from the baseline because of this case.
    pub fn departs(&self) -> bool {
        matches!(self, Self::New | Self::Changed(_) | Self::UnexpectedPass(_))
    }

    /// How the reports name it: `known`, `new`, `changed`, `unexpected-pass` or `unlisted`.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Known(_) => "known",
            Self::New => "new",
            Self::Changed(_) => "changed",
            Self::UnexpectedPass(_) => "unexpected-pass",
            Self::Unlisted => "unlisted",
        }
    }

    /// The [`key`](Self::key) where the standing is worth showing beside a verdict: every one
    /// but `unlisted`.
    pub fn noted(&self) -> Option<&'static str> {
        (!matches!(self, Self::Unlisted)).then(|| self.key())
    }

    /// The baseline's entry for the case, where it lists it.
    pub fn listed(&self) -> Option<&'a Deviation> {
        match self {
            Self::Known(listed) | Self::Changed(listed) | Self::UnexpectedPass(listed) => {
                Some(listed)
            }
            Self::New | Self::Unlisted => None,
        }
    }
}

impl Baseline {
    /// Where `result` stands against this baseline.
    pub fn standing(&self, result: &CaseResult) -> Standing<'_> {
        let case = result.case_id();
        let listed = self.deviations.iter().find(|d| d.case == case);
        match (listed, deviates(result.verdict)) {
            (Some(listed), true) if listed.verdict == result.verdict => Standing::Known(listed),
            (Some(listed), true) => Standing::Changed(listed),
            (None, true) => Standing::New,
            (Some(listed), false) if result.verdict == Verdict::Pass => {
                Standing::UnexpectedPass(listed)
            }
            // Listed, and now SKIP or INFO: the list no longer says what happens.
            (Some(listed), false) => Standing::Changed(listed),
            (None, false) => Standing::Unlisted,
        }
    }
}

pub fn compare(baseline: &Baseline, results: &[CaseResult]) -> Comparison {
    let mut comparison = Comparison::default();
    for result in results {
        match baseline.standing(result) {
            Standing::Known(_) => comparison.expected += 1,
            Standing::New => comparison.new.push((result.case_id(), result.verdict)),
            Standing::Changed(listed) => {
                comparison
                    .changed
                    .push((result.case_id(), listed.verdict, result.verdict));
            }
            Standing::UnexpectedPass(listed) => {
                comparison.unexpected_passes.push(listed.clone());
            }
            Standing::Unlisted => {}
        }
    }
    comparison
}

/// A baseline listing every FAIL, WARN and ERROR of `results`, with the first finding's requirement and
/// observation as the reason to start from.
pub fn from_results(server: &str, results: &[CaseResult]) -> String {
    let mut text = format!(
        "# Known deviations of {server}: each case with the verdict it gets and why.\n\
         # Review every reason against the evidence before committing.\nserver: {server}\ndeviations:\n"
    );
    for result in results {
        if !deviates(result.verdict) {
            continue;
        }
        let finding = result
            .findings
            .iter()
            .find(|finding| finding.verdict == result.verdict);
        let requirement = finding
            .and_then(|finding| finding.requirement.as_ref())
            .map(|cited| cited.id.clone());
        let reason = finding.map_or_else(String::new, |finding| finding.observed.clone());
        let _ = writeln!(text, "  - case: {}", quoted(&result.case_id()));
        let _ = writeln!(
            text,
            "    verdict: {}",
            result.verdict.label().to_lowercase()
        );
        if let Some(requirement) = requirement {
            let _ = writeln!(text, "    requirement: {requirement}");
        }
        let _ = writeln!(text, "    reason: {}", quoted(&reason));
    }
    text
}

fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Loads a baseline file; mistakes are `file:line:col` errors.
pub fn load(path: &Path) -> Result<Baseline, LoadError> {
    let (source, raw) = read_yaml::<RawBaseline>(path)?;
    let span_of = |spanned: &Spanned<String>| span_of(&source, spanned);
    let mut deviations = Vec::new();
    for raw in raw.deviations {
        let verdict = match raw.verdict.value.as_str() {
            "fail" => Verdict::Fail,
            "warn" => Verdict::Warn,
            "error" => Verdict::Error,
            _ => {
                return Err(LoadError {
                    path: path.to_owned(),
                    span: Some(span_of(&raw.verdict)),
                    message: "a deviation is `fail`, `warn` or `error`".into(),
                });
            }
        };
        if raw.reason.value.trim().is_empty() {
            return Err(LoadError {
                path: path.to_owned(),
                span: Some(span_of(&raw.reason)),
                message: "every deviation says why".into(),
            });
        }
        if deviations
            .iter()
            .any(|d: &Deviation| d.case == raw.case.value)
        {
            return Err(LoadError {
                path: path.to_owned(),
                span: Some(span_of(&raw.case)),
                message: format!("`{}` is listed twice", raw.case.value),
            });
        }
        deviations.push(Deviation {
            span: Some(span_of(&raw.case)),
            case: raw.case.value,
            verdict,
            requirement: raw.requirement,
            reason: raw.reason.value,
        });
    }
    Ok(Baseline {
        server: raw.server,
        deviations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Protocol;

    fn result(scenario: &str, verdict: Verdict) -> CaseResult {
        CaseResult::sample(scenario, Protocol::Http2, verdict)
    }

    fn listed(case: &str, verdict: Verdict) -> Deviation {
        Deviation {
            case: format!("{case} [h2]"),
            verdict,
            requirement: None,
            reason: "known".into(),
            span: None,
        }
    }

    #[test]
    fn new_changed_and_unexpected_passes_break_it_and_listed_ones_do_not() {
        let baseline = Baseline {
            server: "s".into(),
            deviations: vec![
                listed("a", Verdict::Fail),
                listed("b", Verdict::Warn),
                listed("c", Verdict::Fail),
                listed("d", Verdict::Fail),
            ],
        };
        let results = [
            result("a", Verdict::Fail),
            result("b", Verdict::Fail),
            result("c", Verdict::Pass),
            result("d", Verdict::Skip),
            result("e", Verdict::Warn),
            result("f", Verdict::Pass),
        ];
        let comparison = compare(&baseline, &results);
        assert_eq!(comparison.expected, 1);
        assert_eq!(comparison.new, vec![("e [h2]".into(), Verdict::Warn)]);
        // A listed case that now SKIPs is no longer what the list says, either.
        assert_eq!(
            comparison.changed,
            vec![
                ("b [h2]".into(), Verdict::Warn, Verdict::Fail),
                ("d [h2]".into(), Verdict::Fail, Verdict::Skip)
            ]
        );
        assert_eq!(comparison.unexpected_passes.len(), 1);
        assert!(!comparison.holds());
        let matching = compare(&baseline, &results[..1]);
        assert!(matching.holds());
    }
}
