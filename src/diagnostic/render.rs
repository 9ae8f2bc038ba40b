//! Turning diagnostics into text for people (miette's graphical report) or JSON for machines.

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource, Report,
};
use serde_json::{Value, json};

use super::{Diagnostic, Diagnostics, Severity, SourceFile};

/// Renders every diagnostic of `source` as miette-style text: code, message, the file, line
/// and column, the source line with a label under the offending part, and the help.
pub fn render_text(source: &SourceFile, diagnostics: &Diagnostics, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false);
    let mut out = String::new();
    for diagnostic in diagnostics.sorted() {
        let report = to_report(source, diagnostic);
        // Writing to a String cannot fail.
        let _ = handler.render_report(&mut out, report.as_ref());
        out.push('\n');
    }
    out
}

fn to_report(source: &SourceFile, d: &Diagnostic) -> Report {
    let mut labels = Vec::new();
    if let Some((span, label)) = &d.primary {
        labels.push(LabeledSpan::new_primary_with_span(
            Some(label.clone()),
            clamp(span, source.text.len()),
        ));
    }
    for (span, label) in &d.secondary {
        labels.push(LabeledSpan::new_with_span(
            Some(label.clone()),
            clamp(span, source.text.len()),
        ));
    }
    let mut m = MietteDiagnostic::new(d.message.clone())
        .with_code(d.code.as_str())
        .with_severity(match d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
        .with_labels(labels);
    if let Some(help) = &d.help {
        m = m.with_help(help.clone());
    }
    Report::new(m).with_source_code(NamedSource::new(source.name.clone(), source.text.clone()))
}

fn clamp(span: &std::ops::Range<usize>, len: usize) -> std::ops::Range<usize> {
    let start = span.start.min(len);
    start..span.end.clamp(start, len)
}

/// Renders the diagnostics of one file as JSON objects with `file`, `code`, `severity`,
/// `message`, `line`, `column`, `label` and `help`.
pub fn render_json(source: &SourceFile, diagnostics: &Diagnostics) -> Vec<Value> {
    diagnostics
        .sorted()
        .into_iter()
        .map(|d| {
            let (line, column, label) = match &d.primary {
                Some((span, label)) => {
                    let (l, c) = source.line_col(span.start);
                    (Some(l), Some(c), Some(label.clone()))
                }
                None => (None, None, None),
            };
            json!({
                "file": source.name,
                "code": d.code.as_str(),
                "severity": match d.severity { Severity::Error => "error", Severity::Warning => "warning" },
                "message": d.message,
                "line": line,
                "column": column,
                "label": label,
                "help": d.help,
            })
        })
        .collect()
}
