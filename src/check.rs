//! The whole front end in one call: read a file, compile it, lint it. `validate`, `plan` and
//! (later) `run` all start here.

use std::path::Path;

use crate::actions::Registry;
use crate::dag::{CompiledWorkflow, Override, compile};
use crate::diagnostic::{Code, Diagnostic, Diagnostics, SourceFile};
use crate::lint::lint;
use crate::workflow::read_workflow;

/// The outcome of checking one workflow file.
#[derive(Debug)]
pub struct Checked {
    /// The file, for pointing at it.
    pub source: SourceFile,
    /// The compiled workflow, when there was no error.
    pub workflow: Option<CompiledWorkflow>,
    /// Every error and lint found.
    pub diagnostics: Diagnostics,
}

/// Reads and checks the workflow at `path`.
pub fn check_file(path: &Path, registry: &Registry, overrides: &[Override]) -> Checked {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => check_source(SourceFile::new(name, text), registry, overrides),
            Err(e) => unreadable(
                name,
                format!(
                    "`{}` is not UTF-8 text (invalid byte at offset {})",
                    path.display(),
                    e.utf8_error().valid_up_to()
                ),
            ),
        },
        Err(e) => unreadable(name, format!("cannot read `{}`: {e}", path.display())),
    }
}

fn unreadable(name: String, message: String) -> Checked {
    let mut diagnostics = Diagnostics::default();
    diagnostics.push(Diagnostic::new(Code::Unreadable, message));
    Checked {
        source: SourceFile::new(name, String::new()),
        workflow: None,
        diagnostics,
    }
}

/// Checks a workflow held in memory.
pub fn check_source(source: SourceFile, registry: &Registry, overrides: &[Override]) -> Checked {
    let mut diagnostics = Diagnostics::default();
    let workflow = read_workflow(&source, &mut diagnostics).and_then(|raw| {
        let compiled = compile(&raw, registry, overrides, &mut diagnostics)?;
        // Errors found while reading leave gaps the compiler filled with nothing: such a
        // workflow is never handed on, and linting it would only add noise.
        if diagnostics.has_errors() {
            return None;
        }
        diagnostics.extend(lint(&raw, &compiled, registry));
        Some(compiled)
    });
    Checked {
        source,
        workflow,
        diagnostics,
    }
}
