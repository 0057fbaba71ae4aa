//! Reporters: pure renderers from case results to text. Siblings, each independent of the
//! others; the caller decides where their output goes.

mod ci;
pub mod html;
pub mod json;
pub mod junit;
pub mod matrix;
pub mod tap;
pub mod terminal;

use std::time::Duration;

use crate::baseline::Baseline;

/// What the reports say about the run as a whole, beside its cases.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// The target, as the terminal names it.
    pub target: &'a str,
    /// Whether a WARN fails the run (`--strict`).
    pub strict: bool,
    pub baseline: Option<&'a Baseline>,
    /// Wall time of the run.
    pub wall: Duration,
    /// When the run started (ISO 8601), and on which host: the shell knows, the core does not.
    pub started: Option<&'a str>,
    pub hostname: Option<&'a str>,
    /// What the server under test said its version is, where a profile says how to ask.
    pub server: Option<&'a str>,
    /// The command line that ran it, for the reader who wants to run it again.
    pub command: Option<&'a str>,
}

/// Text made safe for the content and double-quoted attributes of HTML and XML (the only quoting
/// the reporters use): markup escaped, and
/// the characters XML 1.0 cannot carry at all (control characters a hostile target may have
/// sent) replaced.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\t' | '\n' | '\r' => escaped.push(c),
            c if u32::from(c) < 0x20 || matches!(c, '\u{fffe}' | '\u{ffff}') => {
                escaped.push('\u{fffd}');
            }
            c => escaped.push(c),
        }
    }
    escaped
}
