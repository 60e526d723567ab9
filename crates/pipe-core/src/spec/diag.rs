//! Diagnostics for pipeline files: every problem found, each with its
//! file:line:column, the offending line with a caret, and a hint. All of a
//! file's problems are collected and shown together, sorted by position.
//! Long values are cut: a message shows at most [`MAX_MESSAGE`] characters
//! and a source line a window of [`MAX_LINE`] around the caret, so a
//! megabyte-long string in a file gives a few lines of output, not megabytes.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// The most characters of a message that are shown.
pub const MAX_MESSAGE: usize = 300;
/// The most characters of a source line that are shown.
pub const MAX_LINE: usize = 120;

/// `text` cut to `max` characters, with an ellipsis saying how much is left out.
pub fn shorten(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let n = text.chars().count();
    if n <= max {
        return text.into();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}… ({} more characters)", n - max).into()
}

/// The part of `line` to show around 1-based column `col`: the text, and
/// the column of `col` within it.
fn window(line: &str, col: usize) -> (String, usize) {
    let n = line.chars().count();
    if n <= MAX_LINE {
        return (line.to_string(), col);
    }
    let start = (col - 1).saturating_sub(20).min(n.saturating_sub(MAX_LINE));
    let body: String = line.chars().skip(start).take(MAX_LINE).collect();
    let (head, tail) = (if start > 0 { "…" } else { "" }, if start + MAX_LINE < n { "…" } else { "" });
    (format!("{head}{body}{tail}"), col - start + head.chars().count())
}

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
        match crate::suggest::nearest(word, candidates) {
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
            writeln!(f, "error: {}", shorten(&d.message, MAX_MESSAGE))?;
            let hint = d.hint.as_deref().map(|h| shorten(h, MAX_MESSAGE));
            match &d.span {
                Some(span) => {
                    let span = self.clamp(span);
                    let (line, col) = self.line_col(span.start);
                    let full = self.source.lines().nth(line - 1).unwrap_or("");
                    let (text, shown_col) = window(full, col);
                    let width = self.source[span].lines().next().map_or(1, |s| s.chars().count()).max(1);
                    let width = width.min(text.chars().count().saturating_sub(shown_col - 1).max(1));
                    let gutter = " ".repeat(line.to_string().len());
                    writeln!(f, "{gutter}--> {file}:{line}:{col}")?;
                    writeln!(f, "{gutter} |")?;
                    writeln!(f, "{line} | {text}")?;
                    writeln!(f, "{gutter} | {}{}", " ".repeat(shown_col - 1), "^".repeat(width))?;
                    if let Some(hint) = &hint {
                        writeln!(f, "{gutter} = hint: {hint}")?;
                    }
                }
                None => {
                    writeln!(f, " --> {file}")?;
                    if let Some(hint) = &hint {
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
