//! How one case shows in a CI tool's red and green, following the exit code: FAIL and ERROR
//! fail, a WARN fails under `--strict`, and against a baseline what is listed with its verdict
//! is a success that says so while what departs from the list (new, changed, an unexpected
//! pass) fails with the reason. One decision, shared by the JUnit and TAP reporters.

use super::Run;
use crate::baseline::Standing;
use crate::outcome::CaseResult;
use crate::verdict::Verdict;

/// How one case shows in CI.
pub(crate) enum Shown {
    Success,
    Skipped(String),
    Failure { kind: &'static str, message: String },
    Error(String),
}

/// How `result` shows in CI, following the exit code's rules.
pub(crate) fn show(result: &CaseResult, run: &Run<'_>) -> Shown {
    let headline = headline(result);
    if let Some(baseline) = run.baseline {
        return match baseline.standing(result) {
            Standing::Known(_) | Standing::Unlisted if result.verdict == Verdict::Skip => {
                Shown::Skipped(headline)
            }
            Standing::Known(_) | Standing::Unlisted => Shown::Success,
            Standing::UnexpectedPass(listed) => Shown::Failure {
                kind: "UNEXPECTED-PASS",
                message: format!(
                    "listed in the baseline as {} ({}) but now passes: remove it from the baseline",
                    listed.verdict, listed.reason
                ),
            },
            Standing::Changed(listed) if result.verdict == Verdict::Error => Shown::Error(format!(
                "listed in the baseline as {}, now {headline}",
                listed.verdict
            )),
            Standing::Changed(listed) => Shown::Failure {
                kind: result.verdict.label(),
                message: format!(
                    "listed in the baseline as {}, now {headline}",
                    listed.verdict
                ),
            },
            Standing::New if result.verdict == Verdict::Error => {
                Shown::Error(format!("not in the baseline: {headline}"))
            }
            Standing::New => Shown::Failure {
                kind: result.verdict.label(),
                message: format!("not in the baseline: {headline}"),
            },
        };
    }
    match result.verdict {
        Verdict::Fail => Shown::Failure {
            kind: "FAIL",
            message: headline,
        },
        Verdict::Warn if run.strict => Shown::Failure {
            kind: "WARN",
            message: format!("{headline} (--strict)"),
        },
        Verdict::Error => Shown::Error(headline),
        Verdict::Skip => Shown::Skipped(headline),
        Verdict::Pass | Verdict::Warn | Verdict::Info => Shown::Success,
    }
}

/// One line: the verdict and the first finding.
pub(crate) fn headline(result: &CaseResult) -> String {
    match result.findings.first() {
        Some(finding) => format!("{}: {}", result.verdict, finding.summary()),
        None => result.verdict.to_string(),
    }
}
