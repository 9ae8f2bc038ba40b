//! Every form of a secret, and where it is looked for.

use std::sync::Arc;

use super::*;
use crate::actions::Registry;
use crate::check::check_source;
use crate::diagnostic::SourceFile;

fn one(name: &str, value: &str) -> Redactor {
    Redactor::new([(name, value)])
}

/// `text` as a JSON string holds it, `depth` times over.
fn json(text: &str, depth: usize) -> String {
    (0..depth).fold(text.to_string(), |t, _| json_escaped(&t, false))
}

#[test]
fn longer_secrets_win_and_nested_outputs_are_scrubbed() {
    let r = Redactor::new([("LONG", "s3cr3t-long"), ("SHORT", "s3cr3t")]);
    assert_eq!(
        r.scrub("a s3cr3t-long and a s3cr3t"),
        "a ${env.LONG} and a ${env.SHORT}"
    );
    let mut outputs = Outputs::new();
    outputs.insert(
        "nested".into(),
        serde_json::json!({ "list": ["x s3cr3t y"], "n": 3 }),
    );
    let scrubbed = r.scrub_outputs(outputs);
    assert_eq!(
        scrubbed["nested"],
        serde_json::json!({ "list": ["x ${env.SHORT} y"], "n": 3 })
    );
}

#[test]
fn overlapping_secrets_leave_nothing_of_either() {
    let r = Redactor::new([("A", "abcd1234"), ("B", "1234wxyz-long")]);
    assert_eq!(r.scrub("<abcd1234wxyz-long>"), "<${env.B}>");
}

#[test]
fn a_value_read_from_a_file_is_found_without_its_newline() {
    let r = one("TOKEN", "tok-0123456789\n");
    // `stdout_tail` keeps lines, not their ends.
    assert_eq!(r.scrub("token: tok-0123456789"), "token: ${env.TOKEN}");
    assert_eq!(
        r.scrub("token: tok-0123456789\nnext"),
        "token: ${env.TOKEN}next"
    );
    let r = one("PADDED", "  spaced-value \t");
    assert_eq!(r.scrub("[spaced-value]"), "[${env.PADDED}]");
}

#[test]
fn each_line_of_a_multi_line_secret_is_found_alone() {
    let key = "-----BEGIN KEY-----\r\nMIIEvQIBADANBg\n  kqhkiG9w0BAQE  \nabc\n-----END KEY-----\n";
    let r = one("KEY", key);
    assert_eq!(r.scrub(key), "${env.KEY}");
    assert_eq!(
        r.scrub("tail: MIIEvQIBADANBg / kqhkiG9w0BAQE"),
        "tail: ${env.KEY} / ${env.KEY}"
    );
    assert_eq!(r.scrub("-----END KEY-----"), "${env.KEY}");
    // A line under four characters is too common to be one.
    assert_eq!(r.scrub("abc"), "abc");
    assert!(!forms(key).iter().any(|f| f == "abc"));
}

#[test]
fn a_value_with_quotes_and_backslashes_is_found_escaped_at_every_depth() {
    let secret = r#"p"a's\w0rd"#;
    let r = one("PW", secret);
    for depth in 1..=3 {
        let text = format!("{{\"out\":\"x {} y\"}}", json(secret, depth));
        assert_eq!(
            r.scrub(&text),
            "{\"out\":\"x ${env.PW} y\"}",
            "depth {depth}"
        );
    }
    // Quoted for a shell: `sh -x`, Python's `shlex.quote`, `printf %q`, double quotes.
    for quoted in [
        r#"+ echo 'p"a'\''s\w0rd'"#,
        r#"+ echo 'p"a'"'"'s\w0rd'"#,
        r#"+ echo p\"a\'s\\w0rd"#,
        r#"+ echo "p\"a's\\w0rd""#,
    ] {
        let scrubbed = r.scrub(quoted);
        assert!(scrubbed.contains("${env.PW}"), "{quoted} -> {scrubbed}");
        assert!(!scrubbed.contains("w0rd"), "{quoted} -> {scrubbed}");
    }
    // A log field written with `{:?}`, and JSON as Python writes what is not ASCII.
    let r = one("U", "naïve\t\"pass\"");
    assert_eq!(r.scrub(r#"k="naïve\t\"pass\"""#), r#"k="${env.U}""#);
    assert_eq!(
        r.scrub(r#"{"k":"na\u00efve\t\"pass\""}"#),
        r#"{"k":"${env.U}"}"#
    );
}

#[test]
fn no_secret_costs_nothing_and_empty_values_are_none() {
    let r = Redactor::new([("EMPTY", "")]);
    assert!(r.is_empty());
    assert_eq!(r.scrub("anything"), "anything");
    assert!(Redactor::default().is_empty());
}

#[test]
fn a_run_hides_every_variable_its_workflow_reads_anywhere() {
    // Variables cargo sets for every test process: nothing here changes the environment.
    let text = r#"
[workflow]
name = "w"
kind = "failover"
events = { url = "https://hooks.example.com/${env.CARGO_PKG_VERSION}", on = ["run_finished"] }

[[steps]]
id = "a"
action = "shell"
with = { argv = ["echo", "${env.CARGO_PKG_NAME}"] }
rollback = { action = "shell", with = { argv = ["echo", "${env.CARGO_MANIFEST_DIR}"] } }

[[steps]]
id = "b"
action = "shell"
needs = ["a"]
with = { argv = ["echo", "${env.DRCTL_NEVER_SET_IN_A_TEST}"] }
"#;
    let workflow = check_source(SourceFile::new("t.toml", text), &Registry::builtin(), &[])
        .workflow
        .expect("valid");
    let r = Redactor::for_workflow(&workflow);
    let mut placeholders: Vec<&str> = r.secrets.iter().map(|(_, p)| p.as_str()).collect();
    placeholders.sort_unstable();
    assert_eq!(
        placeholders,
        [
            "${env.CARGO_MANIFEST_DIR}",
            "${env.CARGO_PKG_NAME}",
            "${env.CARGO_PKG_VERSION}"
        ]
    );
    let dir = env!("CARGO_MANIFEST_DIR");
    assert_eq!(
        r.scrub(&format!("cd {dir}")),
        "cd ${env.CARGO_MANIFEST_DIR}"
    );
}

#[test]
fn a_registered_run_has_every_form_scrubbed_from_its_logs() {
    let secret = "log-secret-\"quoted\"\\-4f1c\n";
    let redactors = Redactors::new();
    let _registered = redactors.register("run-1", Arc::new(one("LOGGED", secret)));
    let line = serde_json::json!({ "outputs": serde_json::json!({ "out": secret }).to_string() })
        .to_string();
    assert!(line.contains(&json("log-secret-\"quoted\"\\-4f1c", 2)));
    for run in [Some("run-1"), None] {
        let scrubbed = redactors.scrub(run, &line);
        assert!(!scrubbed.contains("4f1c"), "{scrubbed}");
        assert!(scrubbed.contains("${env.LOGGED}"), "{scrubbed}");
    }
}

#[test]
fn two_runs_secrets_are_kept_apart_and_forgotten_when_each_ends() {
    let redactors = Redactors::new();
    let first = redactors.register("run-1", Arc::new(one("FIRST", "first-s3cr3t")));
    let second = redactors.register("run-2", Arc::new(one("SECOND", "second-s3cr3t")));
    let line = "first-s3cr3t and second-s3cr3t";
    // A run's lines are scrubbed of its own secrets, not of another run's.
    assert_eq!(
        redactors.scrub(Some("run-1"), line),
        "${env.FIRST} and second-s3cr3t"
    );
    assert_eq!(
        redactors.scrub(Some("run-2"), line),
        "first-s3cr3t and ${env.SECOND}"
    );
    // A line about no run, or about a run not registered, is scrubbed of every run's.
    for run in [None, Some("run-3")] {
        assert_eq!(redactors.scrub(run, line), "${env.FIRST} and ${env.SECOND}");
    }
    // A clone of a registration keeps it; the last one gone, the run's secrets are too.
    let kept = first.clone();
    drop(first);
    assert_eq!(
        redactors.scrub(None, line),
        "${env.FIRST} and ${env.SECOND}"
    );
    drop(kept);
    assert_eq!(
        redactors.scrub(None, line),
        "first-s3cr3t and ${env.SECOND}"
    );
    assert_eq!(
        redactors.scrub(Some("run-1"), line),
        "first-s3cr3t and ${env.SECOND}"
    );
    drop(second);
    assert_eq!(redactors.scrub(None, line), line);
}
