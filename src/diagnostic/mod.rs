//! Diagnostics about a user's workflow file: errors and lints that point at the source.
//!
//! This module owns the shape of a diagnostic, the stable codes, the "did you mean" helper and
//! the rendering (miette-style text, or JSON for machines). It knows nothing about workflows:
//! the loader, the compiler and the lints produce diagnostics, and the CLI prints them.

mod code;
mod render;
mod suggest;

pub use code::Code;
pub use render::{render_json, render_text};
pub use suggest::did_you_mean;

use std::ops::Range;

/// A byte range in a source file.
pub type Span = Range<usize>;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The workflow is invalid: nothing runs.
    Error,
    /// A lint: the workflow is valid but probably not what was meant.
    Warning,
}

/// One finding about a workflow file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The stable code.
    pub code: Code,
    /// Error or warning; follows from the code.
    pub severity: Severity,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Where, with a short label; `None` when the finding has no place in the file
    /// (a `--param` override, an unreadable file).
    pub primary: Option<(Span, String)>,
    /// Further places worth showing (the first definition of a duplicate, say).
    pub secondary: Vec<(Span, String)>,
    /// How to fix it, when there is something useful to say.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A new diagnostic with the given code and message, with no place yet.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        let severity = if code.is_lint() {
            Severity::Warning
        } else {
            Severity::Error
        };
        Self {
            code,
            severity,
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            help: None,
        }
    }

    /// Points the diagnostic at `span` with `label`.
    #[must_use]
    pub fn at(mut self, span: Span, label: impl Into<String>) -> Self {
        self.primary = Some((span, label.into()));
        self
    }

    /// Adds a secondary place.
    #[must_use]
    pub fn also(mut self, span: Span, label: impl Into<String>) -> Self {
        self.secondary.push((span, label.into()));
        self
    }

    /// Adds advice on how to fix it.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds advice only when there is some.
    #[must_use]
    pub fn maybe_help(self, help: Option<String>) -> Self {
        match help {
            Some(h) => self.help(h),
            None => self,
        }
    }

    /// Whether this is an error (as opposed to a lint).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The diagnostics found in one source file, kept in the order of their place in the file.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Records a finding.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    /// Whether any error (not lint) was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }

    /// The findings, sorted by position (findings without a place first), errors before lints.
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let mut v: Vec<&Diagnostic> = self.items.iter().collect();
        v.sort_by_key(|d| (d.severity, d.primary.as_ref().map(|(s, _)| s.start)));
        v
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Moves every finding of `other` into this set.
    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// Iterates in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }
}

/// A source file as the user wrote it, kept for pointing diagnostics at it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The name shown to the user (the path as given).
    pub name: String,
    /// The whole text.
    pub text: String,
}

impl SourceFile {
    /// A source file named `name` holding `text`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
