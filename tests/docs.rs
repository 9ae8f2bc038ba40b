//! The docs stay true: the actions reference of docs/workflow-format.md is generated from the
//! registry, and every diagnostic code has its section in docs/errors.md.

use crate::harness::root;

const MARK: &str = "## Actions\n\nGenerated from drctl's action registry (a test keeps this section in step with the code).\n\n";

#[test]
fn the_actions_reference_matches_the_registry() {
    let path = root().join("docs/workflow-format.md");
    let doc = std::fs::read_to_string(&path).expect("docs/workflow-format.md");
    let head = &doc[..doc.find(MARK).expect("the Actions section marker") + MARK.len()];
    let expected = format!(
        "{head}{}",
        drctl::actions::reference::markdown(&drctl::actions::Registry::builtin())
    );
    if std::env::var_os("DRCTL_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    assert!(
        doc == expected,
        "docs/workflow-format.md is out of date: run DRCTL_UPDATE_DOCS=1 cargo test docs"
    );
}
