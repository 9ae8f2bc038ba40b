//! A run's digest: what the run executes, hashed, so that a resume can tell whether the file
//! on disk would run something else than was started (SPEC §5.3).
//!
//! The digest hashes a canonical serialization of the compiled workflow: each step's id,
//! action, parameters, dependencies, timeout, retry policy, compensation, idempotence and
//! markers, the workflow's failure policy, objectives and concurrency, and the allowed signers.
//! Descriptions, estimates and comments are not hashed: rewording them changes nothing that
//! runs. Digests carry their scheme, `v2:…`; runs recorded before schemes were named carry
//! a bare hex digest of their plan, which [`Scheme::of`] recognises so they stay resumable.

use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::actions::Args;
use crate::dag::CompiledWorkflow;
use crate::workflow::{OnFailure, WorkflowKind};

/// How a digest was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// The hash of the workflow's JSON plan, for runs recorded before schemes were named.
    PlanV1,
    /// The hash of the canonical compiled workflow, `v2:` and 32 hex digits.
    CompiledV2,
}

impl Scheme {
    /// The scheme a stored digest was computed with.
    pub fn of(digest: &str) -> Scheme {
        if digest.starts_with("v2:") {
            Scheme::CompiledV2
        } else {
            Scheme::PlanV1
        }
    }
}

/// The digest of a compiled workflow, in the current scheme.
pub fn digest(workflow: &CompiledWorkflow) -> String {
    let mut hasher = HashWriter(Sha256::new());
    // Streamed into the hash: a 10,000-step workflow is never built as one JSON tree.
    let written = serde_json::to_writer(&mut hasher, &Canonical::of(workflow));
    debug_assert!(
        written.is_ok(),
        "serializing plain data into a hash cannot fail"
    );
    format!("v2:{}", hex(&hasher.0.finalize()[..16]))
}

/// Feeds what is written into the hash.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = std::fmt::Write::write_fmt(&mut s, format_args!("{b:02x}"));
            s
        })
}

fn millis(d: Option<Duration>) -> Option<u128> {
    d.map(|d| d.as_millis())
}

/// What executes, in a fixed order of fields.
#[derive(Serialize)]
struct Canonical<'a> {
    scheme: &'static str,
    name: &'a str,
    kind: WorkflowKind,
    rto_ms: Option<u128>,
    rpo_ms: Option<u128>,
    concurrency: u32,
    on_failure: OnFailure,
    steps: Vec<CanonicalStep<'a>>,
    allowed_signers: Option<&'a str>,
}

#[derive(Serialize)]
struct CanonicalStep<'a> {
    id: &'a str,
    action: &'a str,
    with: &'a Args,
    needs: Vec<&'a str>,
    timeout_ms: Option<u128>,
    retry: CanonicalRetry,
    rollback: Option<CanonicalRollback<'a>>,
    idempotent: bool,
    marks_recovered: bool,
    measures_rpo: bool,
}

#[derive(Serialize)]
struct CanonicalRetry {
    attempts: u32,
    initial_ms: u128,
    max_ms: u128,
}

#[derive(Serialize)]
struct CanonicalRollback<'a> {
    action: &'a str,
    with: &'a Args,
}

/// The steps of `new` that are not the same step in `old`, and the steps of `old` that `new`
/// no longer has: added, removed, or changed in anything the digest hashes (action,
/// parameters, needs, timeout, retry, compensation, idempotence, markers). In `new`'s order,
/// then the removed ones in `old`'s.
pub fn changed_steps(old: &CompiledWorkflow, new: &CompiledWorkflow) -> Vec<String> {
    let canonical = |w: &CompiledWorkflow| -> Vec<(String, String)> {
        Canonical::of(w)
            .steps
            .iter()
            .map(|s| {
                let text = serde_json::to_string(s).unwrap_or_default();
                (s.id.to_string(), text)
            })
            .collect()
    };
    let before: std::collections::HashMap<String, String> = canonical(old).into_iter().collect();
    let after = canonical(new);
    let mut changed: Vec<String> = after
        .iter()
        .filter(|(id, text)| before.get(id) != Some(text))
        .map(|(id, _)| id.clone())
        .collect();
    changed.extend(
        old.steps
            .iter()
            .filter(|s| new.step(&s.id).is_none())
            .map(|s| s.id.clone()),
    );
    changed
}

impl<'a> Canonical<'a> {
    fn of(workflow: &'a CompiledWorkflow) -> Self {
        let steps = workflow
            .steps
            .iter()
            .map(|s| CanonicalStep {
                id: &s.id,
                action: &s.action,
                with: &s.args,
                needs: s
                    .needs
                    .iter()
                    .map(|&i| workflow.steps[i].id.as_str())
                    .collect(),
                timeout_ms: millis(s.timeout),
                retry: CanonicalRetry {
                    attempts: s.retry.attempts,
                    initial_ms: s.retry.initial.as_millis(),
                    max_ms: s.retry.max.as_millis(),
                },
                rollback: s.rollback.as_ref().map(|r| CanonicalRollback {
                    action: &r.action,
                    with: &r.args,
                }),
                idempotent: s.idempotent,
                marks_recovered: s.marks_recovered,
                measures_rpo: s.measures_rpo,
            })
            .collect();
        Canonical {
            scheme: "v2",
            name: &workflow.name,
            kind: workflow.kind,
            rto_ms: millis(workflow.rto),
            rpo_ms: millis(workflow.rpo),
            concurrency: workflow.concurrency,
            on_failure: workflow.on_failure,
            steps,
            allowed_signers: workflow.signers.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Registry;
    use crate::check::check_source;
    use crate::diagnostic::SourceFile;

    fn compiled(text: &str) -> CompiledWorkflow {
        check_source(SourceFile::new("t.toml", text), &Registry::builtin(), &[])
            .workflow
            .expect("valid")
    }

    const BASE: &str = r#"
[workflow]
name = "w"
kind = "failover"
description = "first words"

[[steps]]
id = "a"
action = "noop"
estimate = "1s"

[[steps]]
id = "b"
action = "shell"
needs = ["a"]
with = { argv = ["echo", "hi"] }
"#;

    #[test]
    fn the_digest_names_its_scheme() {
        let d = digest(&compiled(BASE));
        assert!(d.starts_with("v2:") && d.len() == 35, "{d}");
        assert_eq!(Scheme::of(&d), Scheme::CompiledV2);
        assert_eq!(
            Scheme::of("3105ce4ac08214b22e1818fa74de5dcd"),
            Scheme::PlanV1
        );
    }

    /// The scheme is a stored format: a digest recorded today must be computed the same way
    /// by every later build, or its run could no longer be resumed.
    #[test]
    fn the_v2_scheme_does_not_change() {
        assert_eq!(
            digest(&compiled(BASE)),
            "v2:2004200dc2f9809c2f343bca1b8a2fc2"
        );
    }

    #[test]
    fn words_and_estimates_do_not_change_the_digest() {
        let reworded = BASE
            .replace("first words", "other words")
            .replace("estimate = \"1s\"", "estimate = \"9m\"");
        assert_eq!(digest(&compiled(BASE)), digest(&compiled(&reworded)));
    }

    #[test]
    fn what_executes_changes_the_digest() {
        let base = digest(&compiled(BASE));
        for changed in [
            BASE.replace("[\"echo\", \"hi\"]", "[\"echo\", \"ho\"]"),
            BASE.replace("needs = [\"a\"]\n", ""),
            BASE.replace("id = \"b\"\n", "id = \"b\"\ntimeout = \"5s\"\n"),
            BASE.replace("id = \"b\"\n", "id = \"b\"\nidempotent = true\n"),
            BASE.replace(
                "kind = \"failover\"",
                "kind = \"failover\"\non_failure = \"abort\"",
            ),
        ] {
            assert_ne!(base, digest(&compiled(&changed)), "{changed}");
        }
        let mut signed = compiled(BASE);
        signed.signers = Some("alice ssh-ed25519 AAAA".into());
        assert_ne!(base, digest(&signed));
    }

    #[test]
    fn changed_steps_are_those_added_removed_or_executing_otherwise() {
        let base = compiled(BASE);
        let reworded = compiled(&BASE.replace("first words", "other words"));
        assert!(changed_steps(&base, &reworded).is_empty());
        let edited = compiled(&format!(
            "{}\n[[steps]]\nid = \"c\"\naction = \"noop\"\n",
            BASE.replace(r#"["echo", "hi"]"#, r#"["echo", "promote"]"#)
        ));
        assert_eq!(changed_steps(&base, &edited), ["b", "c"]);
        assert_eq!(changed_steps(&edited, &base), ["b", "c"]);
        let idempotent =
            compiled(&BASE.replace("needs = [\"a\"]", "needs = [\"a\"]\nidempotent = true"));
        assert_eq!(changed_steps(&base, &idempotent), ["b"]);
    }
}
