//! `drctl validate FILE...`: report every error and lint of each file.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::exit;
use crate::actions::Registry;
use crate::check::check_file;
use crate::diagnostic::{render_json, render_text};

/// Output format of `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    /// Diagnostics for people, pointing at the source.
    Text,
    /// A JSON array of diagnostics for machines.
    Json,
}

/// Check workflow files.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Workflow files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Treat warnings (lints) as errors: exit 2 when there are any.
    #[arg(long)]
    pub deny_warnings: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
    pub format: ValidateFormat,
}

/// Runs `validate`; exit code 2 when any file has an error (or a warning with
/// `--deny-warnings`).
pub fn validate(args: &ValidateArgs) -> anyhow::Result<u8> {
    let registry = Registry::builtin();
    let mut failed = false;
    let mut json = Vec::new();
    let mut text = String::new();
    for file in &args.files {
        let checked = check_file(file, &registry, &[]);
        let d = &checked.diagnostics;
        failed |= d.has_errors() || (args.deny_warnings && d.warning_count() > 0);
        match args.format {
            ValidateFormat::Json => json.extend(render_json(&checked.source, d)),
            ValidateFormat::Text => {
                text.push_str(&render_text(&checked.source, d, super::color_stdout()));
                text.push_str(&summary(
                    &file.display().to_string(),
                    checked.workflow.as_ref().map(|w| w.steps.len()),
                    d.error_count(),
                    d.warning_count(),
                ));
            }
        }
    }
    match args.format {
        ValidateFormat::Json => outln!("{}", serde_json::to_string_pretty(&json)?),
        ValidateFormat::Text => out!("{text}"),
    }
    Ok(if failed {
        exit::INVALID_INPUT
    } else {
        exit::SUCCESS
    })
}

fn summary(file: &str, steps: Option<usize>, errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match steps {
        Some(steps) if errors == 0 => format!(
            "ok: {file} ({}, {})\n",
            plural(steps, "step"),
            plural(warnings, "warning")
        ),
        _ => format!(
            "invalid: {file} ({}, {})\n",
            plural(errors, "error"),
            plural(warnings, "warning")
        ),
    }
}
