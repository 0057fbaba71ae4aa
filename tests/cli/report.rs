//! A JUnit report as the CLI trials read it: each case's verdict (its suite's `verdict: <case>`
//! property) and the words of every message and output, parsed with quick-junit rather than
//! searched for in the terminal.

use std::collections::BTreeMap;
use std::path::Path;

use libtest_mimic::Failed;
use quick_junit::{Report, TestCaseStatus};

/// What a JUnit report of `misdirect run` says.
pub(super) struct Reported {
    /// `scenario [protocol]` → verdict label.
    pub(super) verdicts: BTreeMap<String, String>,
    /// Every case's status message and description, one after the other.
    pub(super) messages: String,
}

impl Reported {
    pub(super) fn read(path: &Path) -> Result<Self, Failed> {
        let xml = std::fs::read_to_string(path)
            .map_err(|error| format!("no JUnit report at {}: {error}", path.display()))?;
        let report = Report::deserialize_from_str(&xml)
            .map_err(|error| format!("the JUnit report does not parse: {error}\n{xml}"))?;
        let mut verdicts = BTreeMap::new();
        let mut messages = String::new();
        for suite in &report.test_suites {
            // A case's verdict is a property of its suite: neither JUnit schema lets a
            // testcase carry properties.
            for property in &suite.properties {
                if let Some(case) = property.name.as_str().strip_prefix("verdict: ") {
                    verdicts.insert(case.to_owned(), property.value.as_str().to_owned());
                }
            }
            for case in &suite.test_cases {
                let (message, description) = match &case.status {
                    TestCaseStatus::Success { .. } => (None, None),
                    TestCaseStatus::NonSuccess {
                        message,
                        description,
                        ..
                    }
                    | TestCaseStatus::Skipped {
                        message,
                        description,
                        ..
                    } => (message.as_ref(), description.as_ref()),
                };
                for text in [message, description].into_iter().flatten() {
                    messages.push_str(text.as_str());
                    messages.push('\n');
                }
                if let Some(out) = &case.system_out {
                    messages.push_str(out.as_str());
                    messages.push('\n');
                }
            }
        }
        // Every case has its verdict; only the run's own "nothing tested" testcase has none.
        let cases = report
            .test_suites
            .iter()
            .flat_map(|suite| &suite.test_cases)
            .filter(|case| {
                case.classname
                    .as_ref()
                    .is_none_or(|name| name.as_str() != "run")
            })
            .count();
        if verdicts.len() != cases {
            return Err(format!(
                "{cases} cases but {} verdict properties\n{xml}",
                verdicts.len()
            )
            .into());
        }
        Ok(Self { verdicts, messages })
    }

    /// How many cases ended with `verdict` (`PASS`, `FAIL`, …).
    pub(super) fn count(&self, verdict: &str) -> usize {
        self.verdicts
            .values()
            .filter(|candidate| *candidate == verdict)
            .count()
    }

    /// The verdict of one case, `scenario [protocol]`.
    pub(super) fn verdict(&self, case: &str) -> Option<&str> {
        self.verdicts.get(case).map(String::as_str)
    }

    /// The counts of every verdict, for error messages.
    pub(super) fn summary(&self) -> String {
        ["PASS", "FAIL", "WARN", "INFO", "SKIP", "ERROR"]
            .iter()
            .map(|verdict| format!("{verdict} {}", self.count(verdict)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
