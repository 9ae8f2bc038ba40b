//! The digest of runs recorded before digests named their scheme: SHA-256 of the workflow's
//! JSON plan. Kept only so that those runs can be resumed; new runs use
//! `engine::digest` (`v2:`), which does not change when an action's description does.

use sha2::{Digest, Sha256};

use super::{LiveMode, Plan, render_json};
use crate::actions::Registry;
use crate::dag::CompiledWorkflow;
use crate::diagnostic::Diagnostics;

/// The first-scheme digest of `workflow`: its offline plan as JSON, and the allowed signers.
/// The scheme is the plan as the built-in actions describe it, whatever registry compiled the
/// workflow: the registry is part of the scheme, not a dependency of the caller's.
pub fn plan_digest(workflow: &CompiledWorkflow) -> String {
    let plan = Plan::build(
        workflow,
        &Registry::builtin(),
        &Diagnostics::default(),
        LiveMode::Offline,
    );
    let mut hasher = Sha256::new();
    hasher.update(render_json(&plan).as_bytes());
    if let Some(signers) = &workflow.signers {
        hasher.update(b"\nallowed_signers\n");
        hasher.update(signers.as_bytes());
    }
    hasher.finalize()[..16]
        .iter()
        .fold(String::with_capacity(32), |mut s, b| {
            let _ = std::fmt::Write::write_fmt(&mut s, format_args!("{b:02x}"));
            s
        })
}
