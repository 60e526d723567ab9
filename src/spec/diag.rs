//! Diagnostics for pipeline files: every problem found, each with its
//! file:line:column, the offending line with a caret, and a hint. All of a
//! file's problems are collected and shown together, sorted by position.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// One problem in a pipeline file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Byte range in the file; `None` for problems of the file as a whole.
    pub span: Option<Range<usize>>,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(span: impl Into<Option<Range<usize>>>, message: impl Into<String>) -> Self {
        Diagnostic { span: span.into(), message: message.into(), hint: None }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds "did you mean `x`?" when there is a near candidate.
    pub fn suggest<'a>(self, word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        match super::suggest::nearest(word, candidates) {
            Some(n) => self.hint(format!("did you mean `{n}`?")),
            None => self,
        }
    }
}

/// All problems of one pipeline file, renderable for the terminal.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    pub file: PathBuf,
    pub source: String,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let before = &self.source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// `span` moved onto character boundaries and into the source.
    fn clamp(&self, span: &Range<usize>) -> Range<usize> {
        let fit = |mut i: usize| {
            i = i.min(self.source.len());
            while !self.source.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        let start = fit(span.start);
        start..fit(span.end).max(start)
    }

    fn sorted(&self) -> Vec<&Diagnostic> {
        let mut items: Vec<&Diagnostic> = self.items.iter().collect();
        items.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
        items
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        for d in self.sorted() {
            writeln!(f, "error: {}", d.message)?;
            match &d.span {
                Some(span) => {
                    let span = self.clamp(span);
                    let (line, col) = self.line_col(span.start);
                    let text = self.source.lines().nth(line - 1).unwrap_or("");
                    let width = self.source[span].lines().next().map_or(1, |s| s.chars().count()).max(1);
                    let width = width.min(text.chars().count().saturating_sub(col - 1).max(1));
                    let gutter = " ".repeat(line.to_string().len());
                    writeln!(f, "{gutter}--> {file}:{line}:{col}")?;
                    writeln!(f, "{gutter} |")?;
                    writeln!(f, "{line} | {text}")?;
                    writeln!(f, "{gutter} | {}{}", " ".repeat(col - 1), "^".repeat(width))?;
                    if let Some(hint) = &d.hint {
                        writeln!(f, "{gutter} = hint: {hint}")?;
                    }
                }
                None => {
                    writeln!(f, " --> {file}")?;
                    if let Some(hint) = &d.hint {
                        writeln!(f, "  = hint: {hint}")?;
                    }
                }
            }
            writeln!(f)?;
        }
        let n = self.items.len();
        write!(f, "{file}: {n} error{}", if n == 1 { "" } else { "s" })
    }
}
