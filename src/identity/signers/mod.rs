//! The OpenSSH allowed-signers file: which principal may sign with which key.
//!
//! This is the format `ssh-keygen -Y verify -f FILE` and git's `gpg.ssh.allowedSignersFile`
//! read (`man ssh-keygen`, section ALLOWED SIGNERS). Each line is
//!
//! ```text
//! principals [options] keytype base64-key [comment]
//! ```
//!
//! `principals` is a comma-separated list of patterns (`*` and `?` wildcards, `!` to exclude),
//! quoted with `"` when it holds spaces. The options are `cert-authority`, `namespaces="a,b"`,
//! `valid-after="YYYYMMDD[HHMM[SS]][Z]"` and `valid-before=...`, comma-separated. Blank lines
//! and lines starting with `#` are ignored. Each line is read as OpenSSH's `sshsig.c` reads it.
//! Unlike `ssh-keygen`, which only reads the lines of the principal it looks for, a malformed
//! line anywhere makes the whole file invalid, and every bad line is reported at once with its
//! line and column: a mistake shows when the workflow is checked, not when someone signs.
//!
//! This module only reads text: the caller reads the file (or the copy captured with a run).

use std::fmt;

use chrono::{DateTime, Utc};
use ssh_key::PublicKey;

use super::NAMESPACE;

mod parse;

use parse::parse_line;

/// A parsed allowed-signers file.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    entries: Vec<SignerEntry>,
}

/// One line of an allowed-signers file.
#[derive(Debug, Clone)]
pub struct SignerEntry {
    /// The 1-based line number in the file.
    pub line: usize,
    /// The principal patterns, as written (after removing quotes).
    pub principals: Vec<String>,
    /// The public key of the line.
    pub key: PublicKey,
    /// `cert-authority`: the key is a CA whose certificates may sign, not a signer itself.
    pub cert_authority: bool,
    /// `namespaces="..."`: the namespace patterns this key may sign in; `None` means any.
    pub namespaces: Option<Vec<String>>,
    /// `valid-after=...`: the key signs nothing dated before this instant.
    pub valid_after: Option<DateTime<Utc>>,
    /// `valid-before=...`: the key signs nothing dated after this instant.
    pub valid_before: Option<DateTime<Utc>>,
}

/// A malformed line of an allowed-signers file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignersError {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column (in characters) where the problem starts.
    pub column: usize,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for SignersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for SignersError {}

impl AllowedSigners {
    /// Parses the text of an allowed-signers file. Returns every malformed line, not only the
    /// first.
    pub fn parse(text: &str) -> Result<AllowedSigners, Vec<SignersError>> {
        let mut entries = Vec::new();
        let mut errors = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            match parse_line(raw) {
                Ok(None) => {}
                Ok(Some(parsed)) => entries.push(SignerEntry {
                    line,
                    principals: parsed.principals,
                    key: parsed.key,
                    cert_authority: parsed.options.cert_authority,
                    namespaces: parsed.options.namespaces,
                    valid_after: parsed.options.valid_after,
                    valid_before: parsed.options.valid_before,
                }),
                Err((offset, message)) => errors.push(SignersError {
                    line,
                    column: raw[..offset].chars().count() + 1,
                    message,
                }),
            }
        }
        if errors.is_empty() {
            Ok(AllowedSigners { entries })
        } else {
            Err(errors)
        }
    }

    /// Every line of the file, in order.
    pub fn entries(&self) -> &[SignerEntry] {
        &self.entries
    }

    /// The distinct principal patterns the file names, in the order they first appear
    /// (exclusions written `!pattern` are not principals and are left out).
    pub fn principals(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for pattern in self.entries.iter().flat_map(|e| &e.principals) {
            if !pattern.starts_with('!') && !seen.contains(&pattern.as_str()) {
                seen.push(pattern);
            }
        }
        seen
    }

    /// Whether `name` has at least one key that may sign drctl approvals.
    pub fn has_key_for(&self, name: &str) -> bool {
        !self.keys_for(name).is_empty()
    }

    /// The keys `name` may sign drctl approvals with: the lines whose principals match `name`,
    /// that are not `cert-authority` lines, and whose `namespaces=` (when present) allows
    /// [`NAMESPACE`]. Validity times are not considered here: they depend on when a statement
    /// was signed, which [`super::verify`] checks.
    pub fn keys_for(&self, name: &str) -> Vec<&PublicKey> {
        self.entries
            .iter()
            .filter(|e| e.matches_principal(name))
            .filter(|e| !e.cert_authority && e.allows_namespace(NAMESPACE))
            .map(|e| &e.key)
            .collect()
    }

    /// Every line whose principals match `name`, whatever its options.
    pub fn entries_for<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a SignerEntry> {
        self.entries
            .iter()
            .filter(move |e| e.matches_principal(name))
    }
}

impl SignerEntry {
    /// Whether `name` matches this line's principal patterns (OpenSSH `match_pattern_list`).
    pub fn matches_principal(&self, name: &str) -> bool {
        match_pattern_list(name, &self.principals)
    }

    /// Whether this line lets its key sign in `namespace`.
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|patterns| match_pattern_list(namespace, patterns))
    }
}

/// OpenSSH's `match_pattern_list`: true if some pattern matches and no `!pattern` does.
fn match_pattern_list(subject: &str, patterns: &[String]) -> bool {
    let mut positive = false;
    for pattern in patterns {
        if let Some(negated) = pattern.strip_prefix('!') {
            if match_pattern(subject, negated) {
                return false;
            }
        } else if match_pattern(subject, pattern) {
            positive = true;
        }
    }
    positive
}

/// Glob matching with `*` (any run of characters) and `?` (one character), case-sensitive.
fn match_pattern(subject: &str, pattern: &str) -> bool {
    let s: Vec<char> = subject.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut si, mut pi) = (0, 0);
    // Where the last `*` was and which subject position it is currently made to cover up to.
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((star_pi, star_si)) = star {
            pi = star_pi + 1;
            si = star_si + 1;
            star = Some((star_pi, star_si + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::parse::parse_time;
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti";

    fn one_error(text: &str) -> SignersError {
        let errors = AllowedSigners::parse(text).expect_err("the text should not parse");
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.into_iter().next().unwrap()
    }

    #[test]
    fn patterns_match_like_openssh() {
        assert!(match_pattern("alice", "alice"));
        assert!(!match_pattern("alice", "alic"));
        assert!(!match_pattern("alic", "alice"));
        assert!(match_pattern("alice@example.com", "*@example.com"));
        assert!(match_pattern("alice", "a?ice"));
        assert!(match_pattern("alice", "*"));
        assert!(match_pattern("", "*"));
        assert!(match_pattern("aXbXc", "a*b*c"));
        assert!(!match_pattern("aXbX", "a*b*c"));
        assert!(!match_pattern("Alice", "alice"));
        let list = |s: &str| s.split(',').map(str::to_owned).collect::<Vec<_>>();
        assert!(match_pattern_list("alice", &list("bob,alice")));
        assert!(!match_pattern_list(
            "mallory@example.com",
            &list("*@example.com,!mallory@*")
        ));
        assert!(match_pattern_list(
            "alice@example.com",
            &list("*@example.com,!mallory@*")
        ));
        assert!(!match_pattern_list("alice", &list("!bob")));
    }

    #[test]
    fn reads_principals_options_and_comments() {
        let text = format!(
            "# approvers\n\n  alice,\"bob smith\" {KEY} alice@laptop\n\
             carol namespaces=\"git,drctl-*\",valid-after=\"20240101Z\",valid-before=\"20300101000000Z\" {KEY}\n\
             *@ops.example.com CERT-AUTHORITY {KEY}\n"
        );
        let signers = AllowedSigners::parse(&text).unwrap();
        assert_eq!(signers.entries().len(), 3);
        assert_eq!(signers.entries()[0].line, 3);
        assert_eq!(
            signers.principals(),
            ["alice", "bob smith", "carol", "*@ops.example.com"]
        );
        assert!(signers.has_key_for("bob smith"));
        assert!(
            signers.has_key_for("carol"),
            "drctl-* allows drctl-approval"
        );
        let carol = &signers.entries()[1];
        assert_eq!(
            carol.valid_after.unwrap().to_rfc3339(),
            "2024-01-01T00:00:00+00:00"
        );
        assert_eq!(
            carol.valid_before.unwrap().to_rfc3339(),
            "2030-01-01T00:00:00+00:00"
        );
        assert!(signers.entries()[2].cert_authority);
        assert!(
            !signers.has_key_for("dave@ops.example.com"),
            "a certificate authority's key is not a signer's key"
        );
        assert!(!signers.has_key_for("mallory"));
    }

    #[test]
    fn namespaces_option_can_exclude_drctl() {
        let signers =
            AllowedSigners::parse(&format!("alice namespaces=\"git,file\" {KEY}\n")).unwrap();
        assert!(!signers.has_key_for("alice"));
        assert!(signers.keys_for("alice").is_empty());
        assert_eq!(signers.entries_for("alice").count(), 1);
    }

    #[test]
    fn reports_every_bad_line_with_its_position() {
        let text = format!(
            "alice {KEY}\n\
             bob\n\
             carol ssh-ed25519 not-base64!\n\
             dave namespace=\"git\" {KEY}\n\
             erin valid-after=\"2024-01-01\" {KEY}\n\
             \"frank {KEY}\n"
        );
        let errors = AllowedSigners::parse(&text).unwrap_err();
        let positions: Vec<(usize, usize)> = errors.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(
            positions,
            [(2, 4), (3, 7), (4, 6), (5, 19), (6, 1)],
            "{errors:#?}"
        );
        assert!(
            errors[0].message.contains("key is missing"),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].message.contains("does not parse"),
            "{}",
            errors[1]
        );
        assert!(
            errors[2].message.contains("`namespace=\"git\"`"),
            "{}",
            errors[2]
        );
        assert!(errors[3].message.contains("not a time"), "{}", errors[3]);
        assert!(
            errors[4].message.contains("unterminated quote"),
            "{}",
            errors[4]
        );
    }

    #[test]
    fn rejects_malformed_options() {
        let e = one_error(&format!("alice namespaces=git {KEY}"));
        assert_eq!((e.line, e.column), (1, 18));
        assert!(e.message.contains("double quotes"), "{e}");

        let e = one_error(&format!("alice namespaces=\"git\",namespaces=\"x\" {KEY}"));
        assert!(e.message.contains("twice"), "{e}");

        let e = one_error(&format!("alice cert-authority, {KEY}"));
        assert!(e.message.contains("missing after the comma"), "{e}");

        let e = one_error(&format!(
            "alice valid-after=\"20300101Z\",valid-before=\"20200101Z\" {KEY}"
        ));
        assert!(e.message.contains("not later"), "{e}");

        let e = one_error("alice ssh-foo AAAA");
        assert!(e.message.contains("ssh-foo"), "{e}");

        let e = one_error(&format!("\"alice smith\",bob {KEY}"));
        assert_eq!((e.line, e.column), (1, 14));
        assert!(e.message.contains("closing quote"), "{e}");

        let e = one_error("x,,y ssh-ed25519 AAAA");
        assert!(e.message.contains("empty principal"), "{e}");

        let e = one_error(
            "alice ecdsa-sha2-nistp256 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti",
        );
        assert!(
            e.message.contains("does not parse"),
            "a key of another type: {e}"
        );
    }

    #[test]
    fn times_follow_openssh() {
        assert_eq!(
            parse_time("202401021304Z").unwrap().to_rfc3339(),
            "2024-01-02T13:04:00+00:00"
        );
        assert_eq!(
            parse_time("20240102130405utc").unwrap().to_rfc3339(),
            "2024-01-02T13:04:05+00:00"
        );
        assert!(parse_time("20240230Z").is_err());
        assert!(parse_time("2024010Z").is_err());
        assert!(parse_time("Z").is_err());
        assert!(parse_time("20240101").is_ok(), "local time");
    }
}
