//! The verdict vocabulary and the BCP 14 levels that map onto it: the words every other module
//! of the core, and every report, speaks in. They sit at the bottom of the module graph, so that
//! scenarios (which cite levels and claim verdicts) and outcomes (which carry them) need not
//! import each other.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The result of one case (scenario × protocol), or of one expectation within it.
///
/// Ordered by how much attention it needs: a case's verdict is the greatest of its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    /// Every applicable expectation was observed and met.
    Pass,
    /// Does not apply to this target, with a reason.
    Skip,
    /// An optional (MAY) behaviour was observed.
    Info,
    /// A SHOULD was not met.
    Warn,
    /// The harness could not test: unreachable target, timeout, missing observation.
    Error,
    /// A MUST was broken.
    Fail,
}

impl Verdict {
    pub const ALL: [Self; 6] = [
        Self::Pass,
        Self::Skip,
        Self::Info,
        Self::Warn,
        Self::Error,
        Self::Fail,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Skip => "SKIP",
            Self::Info => "INFO",
            Self::Warn => "WARN",
            Self::Error => "ERROR",
            Self::Fail => "FAIL",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A BCP 14 requirement level; it decides how bad an unmet expectation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    #[serde(rename = "MUST")]
    Must,
    #[serde(rename = "MUST NOT")]
    MustNot,
    #[serde(rename = "SHOULD")]
    Should,
    #[serde(rename = "SHOULD NOT")]
    ShouldNot,
    #[serde(rename = "MAY")]
    May,
}

impl Level {
    pub const ALL: [Self; 5] = [
        Self::Must,
        Self::MustNot,
        Self::Should,
        Self::ShouldNot,
        Self::May,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            Self::Must => "MUST",
            Self::MustNot => "MUST NOT",
            Self::Should => "SHOULD",
            Self::ShouldNot => "SHOULD NOT",
            Self::May => "MAY",
        }
    }

    /// FAIL for a broken MUST, WARN for an unmet SHOULD, INFO for an optional behaviour.
    pub fn verdict_when_unmet(self) -> Verdict {
        match self {
            Self::Must | Self::MustNot => Verdict::Fail,
            Self::Should | Self::ShouldNot => Verdict::Warn,
            Self::May => Verdict::Info,
        }
    }
}
