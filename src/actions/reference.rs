//! The actions reference of `docs/workflow-format.md`, generated from the registry so the
//! docs can never drift from what validation accepts (a test compares the two).

use std::fmt::Write;

use super::{Effect, Registry};

/// Markdown: one section per action with its summary, nature, parameters and outputs.
pub fn markdown(registry: &Registry) -> String {
    let mut out = String::new();
    for action in registry.iter() {
        let spec = action.spec();
        let _ = writeln!(out, "### `{}`\n\n{}\n", spec.name, spec.summary);
        let nature = match spec.effect {
            Effect::ReadOnly => "read-only",
            Effect::Additive => "creates new resources, changes nothing existing",
            Effect::SelfUndoing => "changes something and undoes itself on rollback",
            Effect::Notification => "sends a message",
            Effect::Irreversible => {
                "changes something it cannot undo by itself (give it a `rollback` or put an approval before it)"
            }
        };
        let _ = writeln!(
            out,
            "Nature: {nature}; {}.\n",
            if spec.idempotent {
                "idempotent (re-run after a crash)"
            } else {
                "not idempotent (after a crash the operator decides)"
            }
        );
        if spec.params.is_empty() {
            out.push_str("Parameters: none.\n\n");
        } else {
            out.push_str(
                "| parameter | type | required | default | meaning |\n|---|---|---|---|---|\n",
            );
            for p in spec.params {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} | {} |",
                    p.name,
                    p.ty.describe().replace('|', "\\|"),
                    if p.required { "yes" } else { "no" },
                    p.default.map_or_else(String::new, |d| format!("`{d}`")),
                    p.doc.replace('|', "\\|"),
                );
            }
            out.push('\n');
        }
        if spec.outputs.is_empty() {
            out.push_str("Outputs: none.\n\n");
        } else {
            let names: Vec<String> = spec.outputs.iter().map(|o| format!("`{o}`")).collect();
            let _ = writeln!(out, "Outputs: {}.\n", names.join(", "));
        }
    }
    out
}
