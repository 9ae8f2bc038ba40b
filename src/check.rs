//! The whole front end in one call: read a file, compile it, lint it. `validate`, `plan` and
//! (later) `run` all start here.

use std::path::Path;

use crate::actions::Registry;
use crate::dag::{CompiledWorkflow, Override, compile};
use crate::diagnostic::{Code, Diagnostic, Diagnostics, SourceFile};
use crate::lint::lint;
use crate::workflow::read_workflow;

/// The outcome of checking one workflow file.
#[derive(Debug, Clone)]
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
            Ok(text) => {
                let mut checked = check_source(SourceFile::new(name, text), registry, overrides);
                read_signers(&mut checked, path);
                checked
            }
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
    checked(source, registry, overrides, true)
}

/// Compiles the text of a run already recorded: as [`check_source`], without the lints. They
/// are advice for the review of a workflow before it runs; a run's readers (status, reports,
/// evidence, a take-up) use only what it compiles to, and whether it does.
pub fn compile_source(source: SourceFile, registry: &Registry, overrides: &[Override]) -> Checked {
    checked(source, registry, overrides, false)
}

fn checked(
    source: SourceFile,
    registry: &Registry,
    overrides: &[Override],
    lints: bool,
) -> Checked {
    let mut diagnostics = Diagnostics::default();
    let workflow = read_workflow(&source, &mut diagnostics).and_then(|raw| {
        let compiled = compile(&raw, registry, overrides, &mut diagnostics)?;
        // Errors found while reading leave gaps the compiler filled with nothing: such a
        // workflow is never handed on, and linting it would only add noise.
        if diagnostics.has_errors() {
            return None;
        }
        if lints {
            diagnostics.extend(lint(&raw, &compiled, registry));
        }
        Some(compiled)
    });
    Checked {
        source,
        workflow,
        diagnostics,
    }
}

/// Reads the workflow's `allowed_signers` file (relative to the workflow file) into the
/// compiled workflow, and checks it: it exists and parses, and every approver of every
/// approval has a key in it. Any problem is an error and the workflow is not handed on.
pub fn read_signers(checked: &mut Checked, workflow_file: &Path) {
    let Some(workflow) = &mut checked.workflow else {
        return;
    };
    let Some((file, span)) = workflow.allowed_signers.clone() else {
        return;
    };
    let path = workflow_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| Path::new(".").join(&file), |dir| dir.join(&file));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            checked.diagnostics.push(
                Diagnostic::new(
                    Code::BadSigners,
                    format!("cannot read the allowed-signers file `{}`: {e}", path.display()),
                )
                .at(span, "read relative to the workflow file")
                .help("create it with one line per approver: `NAME ssh-ed25519 AAAA...` (the format of ssh-keygen's ALLOWED SIGNERS)"),
            );
            checked.workflow = None;
            return;
        }
    };
    let problems = signer_problems(workflow, &text, &file, &span);
    if problems.is_empty() {
        workflow.signers = Some(text);
    } else {
        for problem in problems {
            checked.diagnostics.push(problem);
        }
        checked.workflow = None;
    }
}

/// What is wrong with `text` as the allowed-signers file of `workflow`.
pub fn signer_problems(
    workflow: &CompiledWorkflow,
    text: &str,
    file: &str,
    span: &crate::diagnostic::Span,
) -> Vec<Diagnostic> {
    let signers = match crate::identity::AllowedSigners::parse(text) {
        Ok(signers) => signers,
        Err(errors) => {
            return errors
                .into_iter()
                .map(|e| {
                    Diagnostic::new(
                        Code::BadSigners,
                        format!("{file}:{}:{}: {}", e.line, e.column, e.message),
                    )
                    .at(span.clone(), "this allowed-signers file does not parse")
                })
                .collect();
        }
    };
    let mut problems = Vec::new();
    for (step, policy) in workflow
        .steps
        .iter()
        .filter_map(|s| Some((s, s.approval()?)))
    {
        let mut owners: Vec<(String, Vec<String>)> = Vec::new();
        for name in policy.approvers.clone() {
            for key in signers.keys_for(&name) {
                let fingerprint = key.fingerprint(ssh_key::HashAlg::Sha256).to_string();
                match owners.iter_mut().find(|(f, _)| *f == fingerprint) {
                    Some((_, names)) if !names.contains(&name) => names.push(name.clone()),
                    Some(_) => {}
                    None => owners.push((fingerprint, vec![name.clone()])),
                }
            }
        }
        for (fingerprint, names) in owners.into_iter().filter(|(_, n)| n.len() > 1) {
            problems.push(
                Diagnostic::new(
                    Code::SharedApproverKey,
                    format!(
                        "the key {fingerprint} belongs to {} in {file}, all approvers of `{}`: one key is one person, and a quorum counts keys",
                        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" and "),
                        step.id
                    ),
                )
                .at(step.span.clone(), "one person could vote here under several names")
                .help("give every approver a key of their own (a pattern like `alice,*-oncall` gives one key to every name it matches)"),
            );
        }
        for name in policy.approvers.clone() {
            if !signers.has_key_for(&name) {
                problems.push(
                    Diagnostic::new(
                        Code::ApproverWithoutKey,
                        format!(
                            "`{name}` approves `{}` but has no key for drctl approvals in {file}",
                            step.id
                        ),
                    )
                    .at(
                        step.span.clone(),
                        "an approver without a key could never approve",
                    )
                    .help(format!("add a line `{name} ssh-ed25519 AAAA...` to {file}")),
                );
            }
        }
    }
    problems
}
