//! The example workflows in `workflows/` validate cleanly, and their plans read as reviewed
//! (snapshots).

use drctl::actions::Registry;
use drctl::plan::{LiveMode, Plan, dot, mermaid, render_json, render_text};

use crate::harness::{check, relative, toml_files};

#[test]
fn every_example_workflow_is_valid_without_warnings() {
    let files = toml_files("workflows");
    assert!(files.len() >= 4, "the four example workflows are expected");
    for file in files {
        let (checked, rendered, _) = check(&file);
        assert!(checked.workflow.is_some(), "{}\n{rendered}", file.display());
        // The local drill approves itself after a few seconds and needs no keys: its
        // approvals are unauthenticated on purpose, and it is the only example allowed that.
        let drill = file.ends_with("local-drill.toml");
        let warnings: Vec<String> = checked
            .diagnostics
            .iter()
            .filter(|d| d.code.is_lint())
            .filter(|d| !(drill && d.code == drctl::diagnostic::Code::UnauthenticatedApprovals))
            .map(|d| d.code.to_string())
            .collect();
        assert!(warnings.is_empty(), "{}\n{rendered}", file.display());
    }
}

#[test]
fn example_plans() {
    let registry = Registry::builtin();
    for file in toml_files("workflows") {
        let (checked, _, _) = check(&file);
        let workflow = checked.workflow.expect("valid");
        let plan = Plan::build(
            &workflow,
            &registry,
            &checked.diagnostics,
            LiveMode::Offline,
        );
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        let json: serde_json::Value =
            serde_json::from_str(&render_json(&plan)).expect("plan JSON parses");
        for field in [
            "workflow",
            "kind",
            "steps",
            "critical_path",
            "predicted_rto_seconds",
            "rto_seconds",
            "rpo_seconds",
            "warnings",
        ] {
            assert!(
                json.get(field).is_some(),
                "{name}: plan JSON lacks `{field}`"
            );
        }
        for step in json["steps"].as_array().unwrap() {
            for field in [
                "id",
                "action",
                "needs",
                "wave",
                "estimate_seconds",
                "on_critical_path",
            ] {
                assert!(
                    step.get(field).is_some(),
                    "{name}: plan step lacks `{field}`"
                );
            }
        }
        insta::with_settings!({ snapshot_path => "snapshots/plans", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(format!("{name}.txt"), render_text(&plan, &relative(&file)));
            insta::assert_snapshot!(format!("{name}.mmd"), mermaid(&plan));
        });
        assert!(dot(&plan).starts_with("digraph"));
    }
}
