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

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
use ssh_key::PublicKey;

use super::NAMESPACE;

/// The key types `ssh-keygen` writes in public key lines. A second field that is none of these
/// is read as options, the way OpenSSH first tries a key and then options.
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

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

struct ParsedLine {
    principals: Vec<String>,
    options: Options,
    key: PublicKey,
}

#[derive(Default)]
struct Options {
    cert_authority: bool,
    namespaces: Option<Vec<String>>,
    valid_after: Option<DateTime<Utc>>,
    valid_before: Option<DateTime<Utc>>,
}

/// An error at a byte offset of the line.
type LineError = (usize, String);

fn parse_line(raw: &str) -> Result<Option<ParsedLine>, LineError> {
    let line = raw.trim_end();
    let start = line.len() - line.trim_start().len();
    if start == line.len() || line[start..].starts_with('#') {
        return Ok(None);
    }

    let (principals_text, after) = principals_token(line, start)?;
    let principals: Vec<String> = principals_text.split(',').map(str::to_owned).collect();
    if principals.iter().any(String::is_empty) {
        return Err((
            start,
            "empty principal in the list (a stray comma?)".to_owned(),
        ));
    }

    let rest_start = skip_space(line, after);
    if rest_start == line.len() {
        return Err((
            rest_start,
            "a key is missing after the principals".to_owned(),
        ));
    }
    let first_word_end = line[rest_start..]
        .find([' ', '\t'])
        .map_or(line.len(), |i| rest_start + i);
    let first_word = &line[rest_start..first_word_end];

    let (options, key_start) = if is_key_type(first_word) {
        (Options::default(), rest_start)
    } else {
        let (options, options_end) = parse_options(line, rest_start)?;
        let key_start = skip_space(line, options_end);
        if key_start == line.len() {
            return Err((key_start, "a key is missing after the options".to_owned()));
        }
        (options, key_start)
    };

    let key_type_end = line[key_start..]
        .find([' ', '\t'])
        .map_or(line.len(), |i| key_start + i);
    let key_type = &line[key_start..key_type_end];
    if key_type.ends_with("-cert-v01@openssh.com") {
        return Err((
            key_start,
            format!(
                "`{key_type}` is a certificate; list the certificate authority's key with \
                 `cert-authority` instead"
            ),
        ));
    }
    if !is_key_type(key_type) {
        return Err((
            key_start,
            format!(
                "unknown key type `{key_type}` (expected e.g. ssh-ed25519 or ecdsa-sha2-nistp256)"
            ),
        ));
    }
    let key = PublicKey::from_openssh(&line[key_start..])
        .map_err(|e| (key_start, format!("the {key_type} key does not parse: {e}")))?;

    Ok(Some(ParsedLine {
        principals,
        options,
        key,
    }))
}

fn is_key_type(word: &str) -> bool {
    KEY_TYPES.contains(&word) || word.ends_with("-cert-v01@openssh.com")
}

fn skip_space(line: &str, from: usize) -> usize {
    line[from..]
        .find(|c: char| c != ' ' && c != '\t')
        .map_or(line.len(), |i| from + i)
}

/// Reads the principals field starting at `start`: a run of non-blank characters in which
/// `"..."` sections may hold blanks (the quotes are removed). Returns the text and the offset
/// just past it.
fn principals_token(line: &str, start: usize) -> Result<(String, usize), LineError> {
    let mut text = String::new();
    let mut chars = line[start..].char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            ' ' | '\t' => return Ok((text, start + i)),
            '"' => {
                let mut closed = false;
                for (_, q) in chars.by_ref() {
                    if q == '"' {
                        closed = true;
                        break;
                    }
                    text.push(q);
                }
                if !closed {
                    return Err((start + i, "unterminated quote in the principals".to_owned()));
                }
                // As in OpenSSH, the closing quote ends the field.
                return match chars.next() {
                    None => Ok((text, line.len())),
                    Some((j, ' ' | '\t')) => Ok((text, start + j)),
                    Some((j, _)) => Err((
                        start + j,
                        "expected a blank after the closing quote (quote the whole list: \
                         \"alice smith,bob\")"
                            .to_owned(),
                    )),
                };
            }
            _ => text.push(c),
        }
    }
    Ok((text, line.len()))
}

/// Parses `opt[,opt...]` starting at `start` (OpenSSH `sshsigopt_parse`). Returns the options
/// and the offset where they end (a blank or the end of the line).
fn parse_options(line: &str, start: usize) -> Result<(Options, usize), LineError> {
    let mut options = Options::default();
    let mut pos = start;
    loop {
        let name_end = line[pos..]
            .find([' ', '\t', ',', '='])
            .map_or(line.len(), |i| pos + i);
        let name = &line[pos..name_end];
        let lower = name.to_ascii_lowercase();
        let has_value = line[name_end..].starts_with('=');
        let value_at = name_end + 1;
        match lower.as_str() {
            "cert-authority" if !has_value => {
                options.cert_authority = true;
                pos = name_end;
            }
            "namespaces" | "valid-after" | "valid-before" => {
                if !has_value {
                    return Err((
                        pos,
                        format!("option `{name}` needs a value: {name}=\"...\""),
                    ));
                }
                let (value, end) = quoted_value(line, value_at, name)?;
                match lower.as_str() {
                    "namespaces" => {
                        if options.namespaces.is_some() {
                            return Err((pos, "`namespaces` is given twice".to_owned()));
                        }
                        let patterns: Vec<String> =
                            value.split(',').map(|s| s.trim().to_owned()).collect();
                        if patterns.iter().any(String::is_empty) {
                            return Err((
                                value_at + 1,
                                "empty namespace in `namespaces`".to_owned(),
                            ));
                        }
                        options.namespaces = Some(patterns);
                    }
                    "valid-after" => {
                        if options.valid_after.is_some() {
                            return Err((pos, "`valid-after` is given twice".to_owned()));
                        }
                        options.valid_after =
                            Some(parse_time(&value).map_err(|m| (value_at + 1, m))?);
                    }
                    _ => {
                        if options.valid_before.is_some() {
                            return Err((pos, "`valid-before` is given twice".to_owned()));
                        }
                        options.valid_before =
                            Some(parse_time(&value).map_err(|m| (value_at + 1, m))?);
                    }
                }
                pos = end;
            }
            _ => {
                return Err((
                    pos,
                    format!(
                        "expected a key type or options, found `{}` (the options are \
                         cert-authority, namespaces=\"...\", valid-after=\"...\", \
                         valid-before=\"...\")",
                        line[pos..].split([' ', '\t']).next().unwrap_or_default()
                    ),
                ));
            }
        }
        match line[pos..].chars().next() {
            None | Some(' ' | '\t') => break,
            Some(',') => {
                pos += 1;
                if matches!(line[pos..].chars().next(), None | Some(' ' | '\t')) {
                    return Err((pos, "an option is missing after the comma".to_owned()));
                }
            }
            Some(_) => {
                return Err((
                    pos,
                    "expected a comma or a blank after the option".to_owned(),
                ));
            }
        }
    }
    if let (Some(after), Some(before)) = (options.valid_after, options.valid_before)
        && before <= after
    {
        return Err((
            start,
            "`valid-before` is not later than `valid-after`".to_owned(),
        ));
    }
    Ok((options, pos))
}

/// Reads `"value"` at `at`; returns the value and the offset just past the closing quote.
fn quoted_value(line: &str, at: usize, name: &str) -> Result<(String, usize), LineError> {
    let Some(body) = line[at..].strip_prefix('"') else {
        return Err((
            at,
            format!("the value of `{name}` must be in double quotes"),
        ));
    };
    match body.find('"') {
        Some(close) => Ok((body[..close].to_owned(), at + 1 + close + 1)),
        None => Err((at, format!("unterminated quote in the value of `{name}`"))),
    }
}

/// OpenSSH `parse_absolute_time`: `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, in UTC when
/// followed by `Z` (or `UTC`), otherwise in the local time zone, as `ssh-keygen` reads it.
fn parse_time(value: &str) -> Result<DateTime<Utc>, String> {
    let bad = || {
        format!(
            "`{value}` is not a time: expected YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS, \
             optionally followed by Z for UTC"
        )
    };
    let upper = value.to_ascii_uppercase();
    let (digits, utc) = if let Some(d) = upper.strip_suffix("UTC").filter(|d| d.len() > 1) {
        (d, true)
    } else if let Some(d) = upper.strip_suffix('Z').filter(|d| !d.is_empty()) {
        (d, true)
    } else {
        (upper.as_str(), false)
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let field = |range: std::ops::Range<usize>| digits[range].parse::<u32>().map_err(|_| bad());
    let (hour, minute, second) = match digits.len() {
        8 => (0, 0, 0),
        12 => (field(8..10)?, field(10..12)?, 0),
        14 => (field(8..10)?, field(10..12)?, field(12..14)?),
        _ => return Err(bad()),
    };
    let year = digits[0..4].parse::<i32>().map_err(|_| bad())?;
    let naive: NaiveDateTime = NaiveDate::from_ymd_opt(year, field(4..6)?, field(6..8)?)
        .and_then(|d| d.and_hms_opt(hour, minute, second))
        .ok_or_else(bad)?;
    if utc {
        Ok(naive.and_utc())
    } else {
        Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
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
