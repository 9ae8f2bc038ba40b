//! Every class of invalid input has a fixture in `tests/fixtures/invalid/`, and every lint one
//! in `tests/fixtures/lint/`. Each fixture says which codes it must produce; its whole
//! diagnostic output is a snapshot.

use crate::harness::{check, codes, toml_files};

#[test]
fn every_invalid_fixture_is_refused_with_its_codes_and_a_pointed_message() {
    let files = toml_files("tests/fixtures/invalid");
    assert!(
        files.len() >= 20,
        "expected the fixture set, found {}",
        files.len()
    );
    for file in files {
        let (checked, rendered, header) = check(&file);
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        assert!(
            !header.expect.is_empty(),
            "{name}: the fixture must say what it expects"
        );
        assert!(
            checked.workflow.is_none(),
            "{name}: an invalid workflow must not compile"
        );
        assert!(
            checked.diagnostics.has_errors(),
            "{name}: must report an error"
        );
        let found = codes(&checked);
        for code in &header.expect {
            assert!(
                found.contains(code),
                "{name}: expected {code}, found {found:?}\n{rendered}"
            );
        }
        // Every error points at the file, except those about the command line.
        for d in checked.diagnostics.iter() {
            if d.code.as_str() != "DRC0021" {
                assert!(
                    d.primary.is_some(),
                    "{name}: {} has no place in the file",
                    d.code
                );
            }
        }
        insta::with_settings!({ snapshot_path => "snapshots/invalid", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(name, rendered);
        });
    }
}

#[test]
fn every_lint_fixture_is_valid_but_warned_about() {
    for file in toml_files("tests/fixtures/lint") {
        let (checked, rendered, header) = check(&file);
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        assert!(
            !checked.diagnostics.has_errors(),
            "{name}: lints are not errors\n{rendered}"
        );
        assert!(checked.workflow.is_some(), "{name}: must compile");
        assert_eq!(codes(&checked), header.expect, "{name}\n{rendered}");
        insta::with_settings!({ snapshot_path => "snapshots/lint", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(name, rendered);
        });
    }
}

#[test]
fn the_spec_example_is_valid_and_clean() {
    for file in toml_files("tests/fixtures/valid") {
        let (checked, rendered, _) = check(&file);
        // SPEC §3's example has no allowed signers: only that lint may show.
        assert!(
            checked
                .diagnostics
                .iter()
                .all(|d| d.code == drctl::diagnostic::Code::UnauthenticatedApprovals),
            "{}\n{rendered}",
            file.display()
        );
    }
}

#[test]
fn many_errors_are_reported_in_one_pass() {
    let (checked, rendered, _) =
        check(&crate::harness::root().join("tests/fixtures/invalid/many-errors.toml"));
    assert!(checked.diagnostics.error_count() >= 6, "{rendered}");
}

#[test]
fn every_code_is_documented() {
    let doc = std::fs::read_to_string(crate::harness::root().join("docs/errors.md"))
        .expect("docs/errors.md");
    for code in drctl::diagnostic::Code::ALL {
        assert!(
            doc.contains(&format!("## {}", code.as_str())),
            "docs/errors.md lacks a section for {code}"
        );
    }
}

#[test]
fn generated_workflows_are_valid_and_clean() {
    for (steps, seed) in [(1, 1), (50, 2), (1_000, 42)] {
        let text = drctl::synthetic::large_workflow(steps, seed);
        let checked = drctl::check::check_source(
            drctl::diagnostic::SourceFile::new("generated.toml", text),
            &drctl::actions::Registry::builtin(),
            &[],
        );
        let rendered = drctl::diagnostic::render_text(&checked.source, &checked.diagnostics, false);
        // Generated approvals have no allowed signers: only that lint may show.
        assert!(
            checked
                .diagnostics
                .iter()
                .all(|d| d.code == drctl::diagnostic::Code::UnauthenticatedApprovals),
            "{steps} steps:\n{rendered}"
        );
        assert_eq!(checked.workflow.map(|w| w.steps.len()), Some(steps));
    }
}
