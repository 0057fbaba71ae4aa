//! Source locations kept from the YAML to the report, their rustc-style rendering, and the
//! located error every YAML file misdirect reads (scenarios, profiles, baselines) reports with.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::{Location, Spanned};

/// A scenario file's text, shared by every span that points into it.
#[derive(Debug, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            path: path.into(),
            text: text.into(),
        })
    }

    /// The 1-based line `line`, without its line break; empty past the end.
    pub fn line(&self, line: u32) -> &str {
        let index = usize::try_from(line.saturating_sub(1)).unwrap_or(usize::MAX);
        yaml_lines(&self.text).nth(index).unwrap_or("")
    }

    /// How many lines the text has, as YAML counts them.
    pub fn line_count(&self) -> usize {
        yaml_lines(&self.text).count()
    }
}

/// The lines of a text as YAML breaks them: at `\n`, `\r\n` and a lone `\r` (YAML 1.2 §5.4),
/// so that a location the parser gives names the line a reader sees.
fn yaml_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(at) = rest.find(['\r', '\n']) else {
            return Some(std::mem::take(&mut rest));
        };
        let line = &rest[..at];
        let width = if rest[at..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[at + width..];
        Some(line)
    })
}

/// The 1-based line and column right after `before`, a prefix of a text, as YAML counts lines.
pub fn position_after(before: &str) -> (u32, u32) {
    let mut line = 1usize;
    let mut column = 1usize;
    let mut chars = before.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' | '\n' => {
                line += 1;
                column = 1;
            }
            _ => column += 1,
        }
    }
    let number = |value: usize| u32::try_from(value).unwrap_or(u32::MAX);
    (number(line), number(column))
}

/// A 1-based line and column in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub source: Arc<Source>,
    pub line: u32,
    pub column: u32,
}

impl Span {
    pub fn new(source: &Arc<Source>, line: u32, column: u32) -> Self {
        Self {
            source: Arc::clone(source),
            line,
            column,
        }
    }

    pub fn path(&self) -> &Path {
        &self.source.path
    }

    /// `path:line:col`, the form editors and CI annotations understand.
    pub fn location(&self) -> String {
        format!(
            "{}:{}:{}",
            self.source.path.display(),
            self.line,
            self.column
        )
    }

    /// The pointer block shown under a message:
    ///
    /// ```text
    ///   --> suites/server/x.yaml:12:7
    ///    |
    /// 12 |       status: 421
    ///    |       ^
    /// ```
    pub fn snippet(&self) -> String {
        let number = self.line.to_string();
        let gutter = " ".repeat(number.len());
        let indent = " ".repeat(usize::try_from(self.column.saturating_sub(1)).unwrap_or(0));
        format!(
            "{gutter}--> {location}\n{gutter} |\n{number} | {line}\n{gutter} | {indent}^",
            location = self.location(),
            line = self.source.line(self.line),
        )
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.location())
    }
}

/// A scenario file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub path: PathBuf,
    /// `None` when the file could not be read at all.
    pub span: Option<Span>,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.span {
            Some(span) => write!(f, "error: {}\n{}", self.message, span.snippet()),
            None => write!(f, "error: {}: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for LoadError {}

/// Where a parsed value stands in its file.
pub fn span_of<T>(source: &Arc<Source>, spanned: &Spanned<T>) -> Span {
    span_at(source, spanned.referenced)
}

/// Where a location in a file stands, as a span.
pub(crate) fn span_at(source: &Arc<Source>, at: Location) -> Span {
    Span::new(source, clamp(at.line()), clamp(at.column()))
}

pub(crate) fn clamp(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_break_where_yaml_breaks_them() {
        // Found by the fuzz trials: a lone CR is a line break to the parser.
        let source = Source::new("x.yaml", "a: 1\rb: 2\r\nc: 3\nd: 4");
        assert_eq!(source.line_count(), 4);
        assert_eq!(source.line(2), "b: 2");
        assert_eq!(source.line(4), "d: 4");
        assert_eq!(source.line(5), "");
        assert_eq!(position_after("a: 1\rb: 2\r\nc"), (3, 2));
        assert_eq!(position_after(""), (1, 1));
    }

    #[test]
    fn snippet_points_at_the_column() {
        let source = Source::new("s.yaml", "a: 1\nbogus: 2\n");
        let span = Span::new(&source, 2, 1);
        assert_eq!(span.snippet(), " --> s.yaml:2:1\n  |\n2 | bogus: 2\n  | ^");
    }
}
