//! Secrets stay secret (SPEC §5.8.4): a `${env.TOKEN}` value that a step echoes and puts in
//! its failing command line appears nowhere drctl writes: not on the terminal, not in any
//! report format, not in any file of the state directory. Where it would be, `${env.TOKEN}`
//! is. The state directory is private: 0700, its files 0600.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::harness::root;
use crate::support::Drctl;

const WORKFLOW: &str = r#"
[workflow]
name = "leaky"
kind = "failover"

[[steps]]
id = "echo"
action = "shell"
with = { argv = ["sh", "-c", "echo token is $0", "${env.TOKEN}"] }

[[steps]]
id = "fail"
action = "shell"
needs = ["echo"]
with = { argv = ["sh", "-c", "echo refused $0 >&2; exit 3", "${env.TOKEN}"] }
"#;

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn a_secret_never_reaches_the_terminal_the_reports_or_the_store() {
    let secret = format!(
        "tok-{:016x}",
        u64::from(std::process::id()).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    );
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = dir.path().join("leaky.toml");
    std::fs::write(&file, WORKFLOW).unwrap();
    let drctl = Drctl::new(&state).current_dir(root()).env("TOKEN", &secret);
    // Everything a command printed, on either stream.
    let shown = |args: &[&str]| drctl.run(args).text();
    let mut seen = shown(&["run", file.to_str().unwrap(), "--as", "alice"]);
    let run = seen.split_whitespace().nth(1).unwrap().to_string();
    for args in [
        vec!["status", run.as_str()],
        vec!["status", run.as_str(), "--format", "json"],
        vec!["runs", "--format", "json"],
        vec!["report", run.as_str(), "--format", "md"],
        vec!["report", run.as_str(), "--format", "json"],
        vec!["report", run.as_str(), "--format", "junit"],
        vec!["report", run.as_str(), "--format", "html"],
    ] {
        seen.push_str(&shown(&args));
    }
    assert!(!seen.contains(&secret), "the secret was shown:\n{seen}");
    // It was redacted, not dropped: the placeholder stands where the value was, in the
    // error and in the echoed output.
    assert!(seen.contains("refused ${env.TOKEN}"), "{seen}");
    assert!(seen.contains("token is ${env.TOKEN}"), "{seen}");

    let mut all = Vec::new();
    files(&state, &mut all);
    assert!(!all.is_empty());
    for path in &all {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is in {}",
            path.display()
        );
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", path.display());
    }
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the state directory is {mode:o}");
}

/// Step `names` reads `${env.DRCTL_TEST_SECRET}`; step `prints` does not, and prints it from
/// the environment it inherits: raw on stdout, shell-quoted by `set -x` on stderr, and it
/// fails with the value in its error. Every step of the run is scrubbed of every value the
/// run reads (SPEC §5.8.8).
const INHERITED: &str = r#"
[workflow]
name = "inherited"
kind = "failover"

[[steps]]
id = "names"
action = "shell"
with = { argv = ["sh", "-c", "true", "${env.DRCTL_TEST_SECRET}"] }

[[steps]]
id = "prints"
action = "shell"
needs = ["names"]
with = { argv = ["sh", "-c", "printf 'raw:%s' \"$DRCTL_TEST_SECRET\""] }

[[steps]]
id = "traces"
action = "shell"
needs = ["prints"]
with = { argv = ["sh", "-c", "set -x; : \"$DRCTL_TEST_SECRET\"; printf '%s\\n' \"$DRCTL_TEST_SECRET\" >&2; exit 3"] }
"#;

/// `text` as JSON writes it inside quotes.
pub fn json_escaped(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap();
    quoted[1..quoted.len() - 1].to_string()
}

/// What must never be seen of `secret`: the value, the value trimmed, each line of 4
/// characters or more, each of them JSON-escaped once, twice and three times, and
/// single-quoted for a shell.
pub fn forms_of(secret: &str) -> Vec<String> {
    let mut bases = vec![secret.to_string(), secret.trim().to_string()];
    bases.extend(
        secret
            .lines()
            .map(str::trim)
            .filter(|l| l.chars().count() >= 4)
            .map(String::from),
    );
    let mut forms = Vec::new();
    for base in bases {
        forms.push(base.replace('\'', r"'\''"));
        let mut escaped = base.clone();
        for _ in 0..3 {
            escaped = json_escaped(&escaped);
            forms.push(escaped.clone());
        }
        forms.push(base);
    }
    forms.sort();
    forms.dedup();
    forms
}

/// The forms of `secret` that `bytes` holds.
fn leaked(bytes: &[u8], secret: &str) -> Vec<String> {
    forms_of(secret)
        .into_iter()
        .filter(|f| bytes.windows(f.len()).any(|w| w == f.as_bytes()))
        .collect()
}

#[test]
fn every_form_of_a_secret_is_scrubbed_from_every_step_of_the_run() {
    let tag = format!(
        "{:012x}",
        u64::from(std::process::id()).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16
    );
    let secrets = [
        // Read from a file: the newline at its end comes with it.
        ("trailing-newline", format!("tok-{tag}-from-a-file\n")),
        (
            "multi-line",
            format!(
                "-----BEGIN KEY {tag}-----\r\nline-one-{tag}\nline-two-{tag}\n-----END KEY {tag}-----\n"
            ),
        ),
        ("quotes-and-backslashes", format!(r#"p"a's\s\\w{tag}\n"#)),
    ];
    for (case, secret) in &secrets {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let file = dir.path().join("inherited.toml");
        std::fs::write(&file, INHERITED).unwrap();
        let drctl = Drctl::new(&state)
            .current_dir(root())
            .env("DRCTL_TEST_SECRET", secret);
        let ran = drctl.run(&[
            "run",
            file.to_str().unwrap(),
            "--as",
            "alice",
            "--json",
            "-vv",
        ]);
        let run = ran.run_id();
        let mut seen = vec![(
            "the run's output with --json -vv".to_string(),
            ran.text().into_bytes(),
        )];
        for args in [
            vec!["status", run.as_str(), "--format", "json"],
            vec!["report", run.as_str(), "--format", "md"],
            vec!["report", run.as_str(), "--format", "json"],
            vec!["report", run.as_str(), "--format", "html"],
            vec!["report", run.as_str(), "--format", "evidence"],
        ] {
            let out = drctl.run(&args).ok().text();
            seen.push((format!("drctl {}", args.join(" ")), out.into_bytes()));
        }
        let status = String::from_utf8_lossy(&seen[1].1);
        // Redacted, not dropped: the step that never named the secret shows the placeholder.
        assert!(
            status.contains("raw:${env.DRCTL_TEST_SECRET}"),
            "{case}: the status lacks the placeholder:\n{status}"
        );
        let mut all = Vec::new();
        files(&state, &mut all);
        assert!(!all.is_empty());
        for path in &all {
            seen.push((path.display().to_string(), std::fs::read(path).unwrap()));
        }
        for (place, bytes) in &seen {
            let found = leaked(bytes, secret);
            assert!(
                found.is_empty(),
                "{case}: {found:?} of the secret {secret:?} in {place}:\n{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}

/// Read only by a rollback's parameters and by the events url, and printed by a step that
/// names neither: still a secret of the run.
const READ_ELSEWHERE: &str = r#"
[workflow]
name = "elsewhere"
kind = "failover"
events = { url = "${env.DRCTL_TEST_HOOK}", on = ["run_finished"] }

[[steps]]
id = "change"
action = "noop"
rollback = { action = "shell", with = { argv = ["true", "${env.DRCTL_TEST_UNDO}"] } }

[[steps]]
id = "prints"
action = "shell"
needs = ["change"]
with = { argv = ["sh", "-c", "printf 'hook:%s undo:%s' \"$DRCTL_TEST_HOOK\" \"$DRCTL_TEST_UNDO\""] }
"#;

#[test]
fn a_secret_read_only_by_a_rollback_or_the_events_url_is_scrubbed_too() {
    let tag = format!("{:08x}", std::process::id().wrapping_mul(0x9E37_79B9));
    // Nothing listens there: delivery fails, is logged, and changes nothing about the run.
    let hook = format!("http://127.0.0.1:9/services/T0/B0/hook-{tag}");
    let undo = format!("undo-token-{tag}");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let file = dir.path().join("elsewhere.toml");
    std::fs::write(&file, READ_ELSEWHERE).unwrap();
    let drctl = Drctl::new(&state)
        .current_dir(root())
        .env("DRCTL_TEST_HOOK", &hook)
        .env("DRCTL_TEST_UNDO", &undo);
    let ran = drctl
        .run(&[
            "run",
            file.to_str().unwrap(),
            "--as",
            "alice",
            "--json",
            "-vv",
        ])
        .ok();
    let run = ran.run_id();
    let status = drctl.run(&["status", &run, "--format", "json"]).ok();
    assert!(
        status
            .stdout
            .contains("hook:${env.DRCTL_TEST_HOOK} undo:${env.DRCTL_TEST_UNDO}"),
        "{}",
        status.stdout
    );
    let mut seen = vec![
        ("the run's output".to_string(), ran.text().into_bytes()),
        ("status".to_string(), status.text().into_bytes()),
    ];
    let mut all = Vec::new();
    files(&state, &mut all);
    for path in &all {
        seen.push((path.display().to_string(), std::fs::read(path).unwrap()));
    }
    for (place, bytes) in &seen {
        for secret in [&hook, &undo] {
            let found = leaked(bytes, secret);
            assert!(
                found.is_empty(),
                "{found:?} in {place}:\n{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}
