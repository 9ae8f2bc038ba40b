//! Approval gates across a changed workflow. `drctl resume --allow-changed-workflow` runs the
//! rest of a run with the workflow file as it is now; an edit must not be a way around a gate
//! that has not opened (SPEC §5.8.1): moving a step out from under it, loosening its policy,
//! removing it, or adding a step that does not wait for it.

use std::collections::BTreeSet;

use petgraph::graph::NodeIndex;
use petgraph::visit::Dfs;

use crate::dag::CompiledWorkflow;

/// Checks that every approval of `stored` that has not passed (`passed(id)` is false) is kept
/// by `current`: the same policy, every step it gated still downstream of it, and every step
/// new in `current` downstream of it. Returns what breaks the rule, in words.
pub fn gates_kept(
    stored: &CompiledWorkflow,
    current: &CompiledWorkflow,
    passed: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    let known: BTreeSet<&str> = stored.steps.iter().map(|s| s.id.as_str()).collect();
    for (i, gate) in stored.steps.iter().enumerate() {
        if !gate.is_approval() || passed(&gate.id) {
            continue;
        }
        let id = &gate.id;
        let Some(j) = current.steps.iter().position(|s| &s.id == id) else {
            return Err(format!(
                "the approval `{id}` has not passed and the changed workflow no longer has it"
            ));
        };
        let now = &current.steps[j];
        if now.action != gate.action || now.args != gate.args || now.timeout != gate.timeout {
            return Err(format!(
                "the approval `{id}` has not passed and the changed workflow changes its policy (approvers, quorum, timeout, on_timeout or allow_self_approval)"
            ));
        }
        let before = downstream(stored, i);
        let after = downstream(current, j);
        if let Some(escaped) = before
            .iter()
            .find(|s| current.step(s).is_some() && !after.contains(*s))
        {
            return Err(format!(
                "`{escaped}` waits for the approval `{id}`, which has not passed, and the changed workflow no longer makes it wait"
            ));
        }
        if let Some(added) = current
            .steps
            .iter()
            .map(|s| s.id.as_str())
            .find(|s| !known.contains(s) && !after.contains(*s))
        {
            return Err(format!(
                "the changed workflow adds `{added}`, which does not wait for the approval `{id}` (it has not passed)"
            ));
        }
    }
    Ok(())
}

/// The ids of every step downstream of step `i`.
fn downstream(workflow: &CompiledWorkflow, i: usize) -> BTreeSet<&str> {
    let mut dfs = Dfs::new(&workflow.graph, NodeIndex::new(i));
    let mut found = BTreeSet::new();
    while let Some(n) = dfs.next(&workflow.graph) {
        if n.index() != i {
            found.insert(workflow.steps[n.index()].id.as_str());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Registry;
    use crate::check::check_source;
    use crate::diagnostic::SourceFile;

    fn compile(steps: &str) -> CompiledWorkflow {
        let text = format!("[workflow]\nname = \"t\"\nkind = \"failover\"\n{steps}");
        check_source(SourceFile::new("t.toml", text), &Registry::builtin(), &[])
            .workflow
            .expect("compiles")
    }

    const GATE: &str = "[[steps]]\nid = \"gate\"\naction = \"approval\"\nwith = { approvers = [\"bob\"], timeout = \"1h\" }\n";

    fn gated(extra: &str) -> CompiledWorkflow {
        compile(&format!(
            "{GATE}[[steps]]\nid = \"promote\"\naction = \"noop\"\nneeds = [\"gate\"]\n{extra}"
        ))
    }

    #[test]
    fn edits_that_go_around_a_closed_gate_are_refused() {
        let stored = gated("");
        let closed = |_: &str| false;
        assert!(gates_kept(&stored, &gated(""), &closed).is_ok());
        let cases = [
            (
                compile("[[steps]]\nid = \"promote\"\naction = \"noop\"\n"),
                "no longer has it",
            ),
            (
                compile(&format!(
                    "{}[[steps]]\nid = \"promote\"\naction = \"noop\"\nneeds = [\"gate\"]\n",
                    GATE.replace(
                        "timeout = \"1h\"",
                        "timeout = \"1h\", on_timeout = \"approve\""
                    )
                )),
                "policy",
            ),
            (
                compile(&format!(
                    "{GATE}[[steps]]\nid = \"promote\"\naction = \"noop\"\n"
                )),
                "no longer makes it wait",
            ),
            (
                gated("[[steps]]\nid = \"promote-again\"\naction = \"noop\"\n"),
                "adds `promote-again`",
            ),
        ];
        for (current, why) in cases {
            let refusal = gates_kept(&stored, &current, &closed).unwrap_err();
            assert!(refusal.contains(why), "{refusal}");
        }
        // A gate that has passed constrains nothing more.
        let current = compile("[[steps]]\nid = \"promote\"\naction = \"noop\"\n");
        assert!(gates_kept(&stored, &current, &|_| true).is_ok());
    }
}
