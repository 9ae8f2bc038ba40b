//! Reading one line of an allowed-signers file as OpenSSH's `sshsig.c` does: principals,
//! options (`cert-authority`, `namespaces`, `valid-after`, `valid-before`), the key. Errors
//! carry the byte offset in the line where they are.

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
use ssh_key::PublicKey;

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

pub(super) struct ParsedLine {
    pub(super) principals: Vec<String>,
    pub(super) options: Options,
    pub(super) key: PublicKey,
}

#[derive(Default)]
pub(super) struct Options {
    pub(super) cert_authority: bool,
    pub(super) namespaces: Option<Vec<String>>,
    pub(super) valid_after: Option<DateTime<Utc>>,
    pub(super) valid_before: Option<DateTime<Utc>>,
}

/// An error at a byte offset of the line.
pub(super) type LineError = (usize, String);

pub(super) fn parse_line(raw: &str) -> Result<Option<ParsedLine>, LineError> {
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

pub(super) fn is_key_type(word: &str) -> bool {
    KEY_TYPES.contains(&word) || word.ends_with("-cert-v01@openssh.com")
}

pub(super) fn skip_space(line: &str, from: usize) -> usize {
    line[from..]
        .find(|c: char| c != ' ' && c != '\t')
        .map_or(line.len(), |i| from + i)
}

/// Reads the principals field starting at `start`: a run of non-blank characters in which
/// `"..."` sections may hold blanks (the quotes are removed). Returns the text and the offset
/// just past it.
pub(super) fn principals_token(line: &str, start: usize) -> Result<(String, usize), LineError> {
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
pub(super) fn parse_options(line: &str, start: usize) -> Result<(Options, usize), LineError> {
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
pub(super) fn quoted_value(
    line: &str,
    at: usize,
    name: &str,
) -> Result<(String, usize), LineError> {
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
pub(super) fn parse_time(value: &str) -> Result<DateTime<Utc>, String> {
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
