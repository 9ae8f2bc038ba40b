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
