//! Signed approvals (SPEC 5.9) with real SSH keys made by `ssh-keygen`: signatures made by
//! OpenSSH verify in drctl and the other way round, signing through a real ssh-agent with only
//! the public key, and each reason a signature is refused.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use drctl::identity::{
    self, AllowedSigners, IdentityError, NAMESPACE, SIGNED_FORMAT, Signed, Statement, StatementKind,
};

/// Runs an OpenSSH tool; a missing tool fails the test with what to install.
fn openssh(program: &str, args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot run `{program}` ({e}): these tests need OpenSSH's ssh-keygen, ssh-agent and \
             ssh-add; install them (Debian: `apt-get install openssh-client`)"
        )
    });
    if let Some(input) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn succeed(output: Output, what: &str) -> Output {
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A temporary directory of keys, allowed-signers files and signatures.
struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        Lab {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Generates a key pair with `ssh-keygen`; returns the private key's path (the public key
    /// is beside it with `.pub` added).
    fn key(&self, name: &str, kind: &str) -> PathBuf {
        self.key_with_passphrase(name, kind, "")
    }

    fn key_with_passphrase(&self, name: &str, kind: &str, passphrase: &str) -> PathBuf {
        let path = self.path(name);
        let mut args = vec!["-q", "-t", kind, "-N", passphrase, "-C", name, "-f"];
        let path_text = path.to_str().unwrap();
        args.push(path_text);
        if kind == "rsa" {
            args.extend(["-b", "2048"]);
        }
        succeed(openssh("ssh-keygen", &args, None, &[]), "ssh-keygen -t");
        path
    }

    /// Writes an allowed-signers file with one line per (principals, options, key) and
    /// returns its path and its parsed form.
    fn signers(&self, lines: &[(&str, &str, &Path)]) -> (PathBuf, AllowedSigners) {
        let mut text = String::from("# drctl approvers\n");
        for (principals, options, key) in lines {
            let public = fs::read_to_string(pub_path(key)).unwrap();
            let options = if options.is_empty() {
                String::new()
            } else {
                format!("{options} ")
            };
            text.push_str(&format!("{principals} {options}{}\n", public.trim()));
        }
        let path = self.path("allowed_signers");
        fs::write(&path, &text).unwrap();
        let parsed = AllowedSigners::parse(&text)
            .unwrap_or_else(|errors| panic!("{text} does not parse: {errors:?}"));
        (path, parsed)
    }

    /// Signs `data` with `ssh-keygen -Y sign` in `namespace`; returns the armored signature.
    fn ssh_keygen_sign(&self, key: &Path, namespace: &str, data: &[u8]) -> String {
        let file = self.path("statement");
        fs::write(&file, data).unwrap();
        let sig = self.path("statement.sig");
        let _ = fs::remove_file(&sig);
        succeed(
            openssh(
                "ssh-keygen",
                &[
                    "-Y",
                    "sign",
                    "-f",
                    key.to_str().unwrap(),
                    "-n",
                    namespace,
                    file.to_str().unwrap(),
                ],
                None,
                &[],
            ),
            "ssh-keygen -Y sign",
        );
        fs::read_to_string(sig).unwrap()
    }

    /// `ssh-keygen -Y verify` of `signed` as `identity`.
    fn ssh_keygen_verify(&self, allowed: &Path, identity: &str, signed: &Signed) -> Output {
        let sig = self.path("drctl.sig");
        fs::write(&sig, &signed.signature).unwrap();
        openssh(
            "ssh-keygen",
            &[
                "-Y",
                "verify",
                "-f",
                allowed.to_str().unwrap(),
                "-I",
                identity,
                "-n",
                NAMESPACE,
                "-s",
                sig.to_str().unwrap(),
            ],
            Some(&signed.statement.to_bytes()),
            &[],
        )
    }
}

fn pub_path(key: &Path) -> PathBuf {
    PathBuf::from(format!("{}.pub", key.display()))
}

/// The fingerprint `ssh-keygen -l` prints for a key.
fn ssh_keygen_fingerprint(key: &Path) -> String {
    let output = succeed(
        openssh(
            "ssh-keygen",
            &["-l", "-f", pub_path(key).to_str().unwrap()],
            None,
            &[],
        ),
        "ssh-keygen -l",
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

fn statement(name: &str) -> Statement {
    Statement {
        kind: StatementKind::Approve,
        run_id: "20260301T120000Z-ab12".to_owned(),
        step: Some("approve_failover".to_owned()),
        round: Some(1),
        name: name.to_owned(),
        comment: Some("primary is gone, go".to_owned()),
        digest: "sha256:0123456789abcdef".to_owned(),
        at: identity::format_time(chrono::Utc::now()),
        head: None,
    }
}

#[test]
fn openssh_signatures_verify() {
    let lab = Lab::new();
    let alice = lab.key("alice", "ed25519");
    let carol = lab.key("carol", "ecdsa");
    let dave = lab.key("dave", "rsa");
    let (_, signers) = lab.signers(&[
        ("alice", "", &alice),
        ("carol", "", &carol),
        ("dave", "", &dave),
    ]);
    for (name, key) in [("alice", &alice), ("carol", &carol), ("dave", &dave)] {
        let statement = statement(name);
        let signature = lab.ssh_keygen_sign(key, NAMESPACE, &statement.to_bytes());
        assert!(signature.starts_with("-----BEGIN SSH SIGNATURE-----\n"));
        let signed = Signed {
            statement,
            signature,
        };
        let proof = identity::verify(&signed, &signers).unwrap();
        assert_eq!(proof.name, name);
        assert_eq!(proof.fingerprint, ssh_keygen_fingerprint(key));
        assert_eq!(signed.fingerprint().unwrap(), proof.fingerprint);
    }
}

#[test]
fn drctl_signatures_verify_with_openssh() {
    let lab = Lab::new();
    let alice = lab.key("alice", "ed25519");
    let carol = lab.key("carol", "ecdsa");
    let dave = lab.key("dave", "rsa");
    let (allowed, signers) = lab.signers(&[
        ("alice", "", &alice),
        ("carol", "", &carol),
        ("dave", "", &dave),
    ]);
    for (name, key) in [("alice", &alice), ("carol", &carol), ("dave", &dave)] {
        let signed = identity::sign(statement(name), key).unwrap();
        let output = succeed(
            lab.ssh_keygen_verify(&allowed, name, &signed),
            "ssh-keygen -Y verify",
        );
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(
            said.contains(&format!("Good \"{NAMESPACE}\" signature for {name}")),
            "{said}"
        );
        assert_eq!(identity::verify(&signed, &signers).unwrap().name, name);
    }

    // Ed25519 signatures are deterministic: drctl's is byte for byte what ssh-keygen writes.
    let signed = identity::sign(statement("alice"), &alice).unwrap();
    let by_openssh = lab.ssh_keygen_sign(&alice, NAMESPACE, &signed.statement.to_bytes());
    assert_eq!(signed.signature, by_openssh);
}

/// An ssh-agent on a socket of its own, stopped when dropped.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(lab: &Lab) -> Agent {
        let socket = lab.path("agent.sock");
        let child = Command::new("ssh-agent")
            .args(["-D", "-a"])
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run `ssh-agent` ({e}): install it (Debian: `apt-get install openssh-client`)")
            });
        let agent = Agent { child, socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !agent.socket.exists() {
            assert!(
                Instant::now() < deadline,
                "ssh-agent did not create its socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    fn add(&self, key: &Path) {
        succeed(
            openssh(
                "ssh-add",
                &[key.to_str().unwrap()],
                None,
                &[("SSH_AUTH_SOCK", &self.socket)],
            ),
            "ssh-add",
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ssh_agent_signs_with_only_the_public_key() {
    let lab = Lab::new();
    let alice = lab.key("alice", "ed25519");
    let carol = lab.key("carol", "ecdsa");
    let dave = lab.key("dave", "rsa");
    let bob = lab.key("bob", "ed25519");
    let (allowed, signers) = lab.signers(&[
        ("alice", "", &alice),
        ("carol", "", &carol),
        ("dave", "", &dave),
    ]);
    let agent = Agent::start(&lab);
    for key in [&alice, &carol, &dave] {
        agent.add(key);
    }

    for (name, key) in [("alice", &alice), ("carol", &carol), ("dave", &dave)] {
        let signed =
            identity::sign_with_agent(statement(name), &pub_path(key), Some(&agent.socket))
                .unwrap();
        assert_eq!(identity::verify(&signed, &signers).unwrap().name, name);
        succeed(
            lab.ssh_keygen_verify(&allowed, name, &signed),
            "ssh-keygen -Y verify",
        );
    }

    // A public key whose private half the agent does not hold.
    let err = identity::sign_with_agent(statement("bob"), &pub_path(&bob), Some(&agent.socket))
        .unwrap_err();
    assert!(matches!(err, IdentityError::KeyNotInAgent { .. }), "{err}");
    assert!(
        err.to_string().contains(&ssh_keygen_fingerprint(&bob)),
        "{err}"
    );

    // A public key and no agent at all.
    let err = identity::sign_with_agent(statement("alice"), &pub_path(&alice), None).unwrap_err();
    assert!(matches!(err, IdentityError::NoAgent { .. }), "{err}");
    assert!(err.to_string().contains("SSH_AUTH_SOCK"), "{err}");

    // An agent that is gone.
    drop(agent);
    let err = identity::sign_with_agent(
        statement("alice"),
        &pub_path(&alice),
        Some(&lab.path("agent.sock")),
    )
    .unwrap_err();
    assert!(matches!(err, IdentityError::Agent { .. }), "{err}");
}

#[test]
fn a_changed_statement_does_not_verify() {
    let lab = Lab::new();
    let alice = lab.key("alice", "ed25519");
    let (allowed, signers) = lab.signers(&[("alice", "", &alice)]);
    let signed = identity::sign(statement("alice"), &alice).unwrap();
    for change in [
        |s: &mut Statement| s.digest.push('0'),
        |s: &mut Statement| s.kind = StatementKind::Reject,
        |s: &mut Statement| s.round = Some(2),
        |s: &mut Statement| s.comment = None,
    ] {
        let mut tampered = signed.clone();
        change(&mut tampered.statement);
        let err = identity::verify(&tampered, &signers).unwrap_err();
        assert!(matches!(err, IdentityError::BadSignature { .. }), "{err}");
        assert!(
            err.to_string().starts_with("the signature does not verify"),
            "{err}"
        );
        assert!(
            !lab.ssh_keygen_verify(&allowed, "alice", &tampered)
                .status
                .success()
        );
    }

    // One byte of the signature itself.
    let mut tampered = signed.clone();
    let line = tampered.signature.lines().nth(3).unwrap().to_owned();
    let flipped: String = line
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 10 {
                if c == 'A' { 'B' } else { 'A' }
            } else {
                c
            }
        })
        .collect();
    tampered.signature = tampered.signature.replacen(&line, &flipped, 1);
    assert!(identity::verify(&tampered, &signers).is_err());

    let garbage = Signed {
        signature:
            "-----BEGIN SSH SIGNATURE-----\nbm90IGEgc2lnbmF0dXJl\n-----END SSH SIGNATURE-----\n"
                .to_owned(),
        ..signed
    };
    let err = identity::verify(&garbage, &signers).unwrap_err();
    assert!(
        matches!(err, IdentityError::MalformedSignature { .. }),
        "{err}"
    );
}

#[test]
fn a_signature_for_another_namespace_is_refused() {
    let lab = Lab::new();
    let alice = lab.key("alice", "ed25519");
    let (_, signers) = lab.signers(&[("alice", "", &alice)]);
    let statement = statement("alice");
    let signature = lab.ssh_keygen_sign(&alice, "git", &statement.to_bytes());
    let err = identity::verify(
        &Signed {
            statement,
            signature,
        },
        &signers,
    )
    .unwrap_err();
    assert!(matches!(err, IdentityError::WrongNamespace { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "signed for namespace `git`, not `drctl-approval`"
    );
}

#[test]
fn a_key_of_another_principal_is_refused() {
    let lab = Lab::new();
    let alice = lab.key("alice", "ed25519");
    let bob = lab.key("bob", "ed25519");
    let (allowed, signers) = lab.signers(&[("alice", "", &alice), ("bob", "", &bob)]);

    // Bob signs a statement that says it is Alice's.
    let forged = identity::sign(statement("alice"), &bob).unwrap();
    let err = identity::verify(&forged, &signers).unwrap_err();
    assert!(matches!(err, IdentityError::NotSignersKey { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "signed by a key that is not alice's ({})",
            ssh_keygen_fingerprint(&bob)
        )
    );
    assert!(
        !lab.ssh_keygen_verify(&allowed, "alice", &forged)
            .status
            .success()
    );

    // A certificate authority's key signing by itself, not through a certificate.
    let (allowed, signers) =
        lab.signers(&[("alice", "", &alice), ("*@ops", "cert-authority", &bob)]);
    let by_ca = identity::sign(statement("erin@ops"), &bob).unwrap();
    let err = identity::verify(&by_ca, &signers).unwrap_err();
    assert!(matches!(err, IdentityError::NotSignersKey { .. }), "{err}");
    assert!(
        !lab.ssh_keygen_verify(&allowed, "erin@ops", &by_ca)
            .status
            .success()
    );

    // A name the allowed signers do not know.
    let stranger = identity::sign(statement("mallory"), &bob).unwrap();
    let err = identity::verify(&stranger, &signers).unwrap_err();
    assert!(matches!(err, IdentityError::UnknownSigner { .. }), "{err}");
    assert!(err.to_string().starts_with("`mallory` has no key"), "{err}");
}

#[test]
fn a_principal_with_two_keys_signs_with_either() {
    let lab = Lab::new();
    let laptop = lab.key("alice-laptop", "ed25519");
    let token = lab.key("alice-token", "ecdsa");
    let bob = lab.key("bob", "ed25519");
    let (allowed, signers) = lab.signers(&[
        ("alice", "", &laptop),
        ("bob", "", &bob),
        ("alice", "", &token),
    ]);
    assert_eq!(signers.keys_for("alice").len(), 2);
    for key in [&laptop, &token] {
        let signed = identity::sign(statement("alice"), key).unwrap();
        let proof = identity::verify(&signed, &signers).unwrap();
        assert_eq!(proof.fingerprint, ssh_keygen_fingerprint(key));
        succeed(
            lab.ssh_keygen_verify(&allowed, "alice", &signed),
            "ssh-keygen -Y verify",
        );
    }
}

#[test]
fn the_namespaces_option_can_exclude_drctl() {
    let lab = Lab::new();
    let alice = lab.key("alice", "ed25519");
    let (allowed, signers) = lab.signers(&[("alice", "namespaces=\"git,file\"", &alice)]);
    assert!(!signers.has_key_for("alice"));
    let signed = identity::sign(statement("alice"), &alice).unwrap();
    let err = identity::verify(&signed, &signers).unwrap_err();
    assert!(
        matches!(err, IdentityError::NamespaceNotAllowed { line: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("`git,file`"), "{err}");
    assert!(
        !lab.ssh_keygen_verify(&allowed, "alice", &signed)
            .status
            .success()
    );

    // Patterns, quoted principals and several options, read as ssh-keygen reads them.
    let (allowed, signers) = lab.signers(&[(
        "\"alice smith,ops-*\"",
        "namespaces=\"git,drctl-*\",valid-after=\"20200101Z\"",
        &alice,
    )]);
    for name in ["alice smith", "ops-lead"] {
        let signed = identity::sign(statement(name), &alice).unwrap();
        assert_eq!(identity::verify(&signed, &signers).unwrap().name, name);
        succeed(
            lab.ssh_keygen_verify(&allowed, name, &signed),
            "ssh-keygen -Y verify",
        );
    }
}

#[test]
fn a_key_signs_only_within_its_validity_window() {
    let lab = Lab::new();
    let alice = lab.key("alice", "ed25519");
    let (_, signers) = lab.signers(&[(
        "alice",
        "valid-after=\"20260101Z\",valid-before=\"20270101Z\"",
        &alice,
    )]);
    let at = |time: &str| {
        let mut statement = statement("alice");
        statement.at = time.to_owned();
        identity::sign(statement, &alice).unwrap()
    };
    assert!(identity::verify(&at("2026-06-01T00:00:00Z"), &signers).is_ok());
    for time in ["2025-12-31T23:59:59Z", "2027-01-01T00:00:01Z"] {
        let err = identity::verify(&at(time), &signers).unwrap_err();
        assert!(matches!(err, IdentityError::KeyNotValid { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("valid from 2026-01-01T00:00:00Z to 2027-01-01T00:00:00Z"),
            "{err}"
        );
    }
    let err = identity::verify(&at("next tuesday"), &signers).unwrap_err();
    assert!(matches!(err, IdentityError::BadTime { .. }), "{err}");
}

#[test]
fn unusable_key_files_say_what_to_do() {
    let lab = Lab::new();
    let locked = lab.key_with_passphrase("locked", "ed25519", "correct horse");
    let err = identity::sign(statement("alice"), &locked).unwrap_err();
    assert!(matches!(err, IdentityError::EncryptedKey { .. }), "{err}");
    assert!(err.to_string().contains("ssh-add"), "{err}");
    assert!(err.to_string().contains("locked.pub"), "{err}");

    let missing = lab.path("missing");
    let err = identity::sign(statement("alice"), &missing).unwrap_err();
    assert!(matches!(err, IdentityError::KeyRead { .. }), "{err}");

    let junk = lab.path("junk");
    fs::write(&junk, "hello\n").unwrap();
    let err = identity::sign(statement("alice"), &junk).unwrap_err();
    assert!(matches!(err, IdentityError::NotAKey { .. }), "{err}");

    let legacy = lab.path("legacy");
    fs::write(
        &legacy,
        "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n",
    )
    .unwrap();
    let err = identity::sign(statement("alice"), &legacy).unwrap_err();
    assert!(
        matches!(err, IdentityError::LegacyPrivateKey { .. }),
        "{err}"
    );
}

#[test]
fn the_signed_file_round_trips() {
    let lab = Lab::new();
    let alice = lab.key("alice", "ed25519");
    let (_, signers) = lab.signers(&[("alice", "", &alice)]);
    let signed = identity::sign(statement("alice"), &alice).unwrap();
    let json = signed.to_json();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["format"], SIGNED_FORMAT);
    assert_eq!(value["statement"]["name"], "alice");
    let back = Signed::from_json(&json).unwrap();
    assert_eq!(back, signed);
    assert!(identity::verify(&back, &signers).is_ok());

    let other_format = json.replace(SIGNED_FORMAT, "drctl-signed-decision/v9");
    let err = Signed::from_json(&other_format).unwrap_err();
    assert!(
        err.to_string().contains("drctl-signed-decision/v9"),
        "{err}"
    );
    let extra_field = json.replacen("\"name\"", "\"admin\": true, \"name\"", 1);
    assert!(Signed::from_json(&extra_field).is_err());
}

/// The line, the column and some words of the message of an expected error.
type Expected = (usize, usize, &'static str);

#[test]
fn malformed_allowed_signers_files_point_at_the_line() {
    let lab = Lab::new();
    let alice = lab.key("alice", "ed25519");
    let public = fs::read_to_string(pub_path(&alice)).unwrap();
    let public = public.trim();
    let (key_type, rest) = public.split_once(' ').unwrap();
    let base64 = rest.split_whitespace().next().unwrap();

    // Each file, and the (line, column, words of the message) of each of its errors.
    let cases: Vec<(String, Vec<Expected>)> = vec![
        (
            format!(
                "alice {public}\n# ok so far\n\nbob {key_type} {}\n",
                &base64[..20]
            ),
            vec![(4, 5, "does not parse")],
        ),
        (
            format!("alice\nbob namespaces=\"git\" \ncarol {public}\n"),
            vec![(1, 6, "key is missing"), (2, 21, "key is missing")],
        ),
        (
            format!("alice,bob valid-before=\"tomorrow\" {public}\nerin sometimes {public}\n"),
            vec![
                (1, 25, "not a time"),
                (2, 6, "expected a key type or options"),
            ],
        ),
        (
            format!("alice ecdsa-sha2-nistp256 {base64}\n"),
            vec![(1, 7, "does not parse")],
        ),
    ];
    for (text, expected) in cases {
        let errors = AllowedSigners::parse(&text).unwrap_err();
        let found: Vec<(usize, usize)> = errors.iter().map(|e| (e.line, e.column)).collect();
        let wanted: Vec<(usize, usize)> = expected.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(found, wanted, "{text}\n{errors:#?}");
        for (error, (_, _, words)) in errors.iter().zip(&expected) {
            assert!(error.message.contains(words), "{error}");
        }
    }
}
