//! The parameter schema an action declares for its `with` table, and the type check of one
//! value against it.

use super::args::Arg;
use crate::workflow::parse_duration;

/// The type a parameter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Any string.
    String,
    /// An `http://` or `https://` URL.
    Url,
    /// An integer within an inclusive range.
    Integer {
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// `true` or `false`.
    Bool,
    /// A duration string (`90s`, `15m`).
    Duration,
    /// A non-empty array of strings.
    StringList,
    /// A table of string values (an environment, say).
    StringTable,
    /// A table whose values are arrays of strings (an SSM Automation's parameters).
    StringListTable,
    /// A table of any values, nested tables and arrays included (a JSON document, such as a
    /// function's payload or an execution's input).
    Table,
    /// One of a fixed set of strings.
    OneOf(&'static [&'static str]),
    /// An RFC 3339 timestamp (a string, or a TOML date-time).
    Timestamp,
}

impl ParamType {
    /// How the type reads in docs and messages.
    pub fn describe(self) -> String {
        match self {
            ParamType::String => "a string".into(),
            ParamType::Url => "an http(s) URL".into(),
            ParamType::Integer { min, max } => format!("an integer from {min} to {max}"),
            ParamType::Bool => "`true` or `false`".into(),
            ParamType::Duration => "a duration such as \"90s\"".into(),
            ParamType::StringList => "a non-empty array of strings".into(),
            ParamType::StringTable => "a table of strings".into(),
            ParamType::StringListTable => "a table of arrays of strings".into(),
            ParamType::Table => "a table (sent as JSON)".into(),
            ParamType::OneOf(names) => format!("one of {}", quoted(names)),
            ParamType::Timestamp => "an RFC 3339 timestamp".into(),
        }
    }

    /// Checks `value` against the type. Values holding run-time references are accepted
    /// where a string may stand; they are checked again when the step runs.
    pub fn check(self, value: &Arg) -> Result<(), String> {
        let expected = || format!("expected {}, found {}", self.describe(), kind_of(value));
        // A whole value from a step output or the environment is only known at run time.
        if let Arg::Text(t) = value
            && t.is_runtime()
        {
            return if matches!(
                self,
                ParamType::StringList
                    | ParamType::StringTable
                    | ParamType::StringListTable
                    | ParamType::Table
            ) {
                Err(expected())
            } else {
                Ok(())
            };
        }
        match (self, value) {
            (ParamType::String, Arg::Text(_)) => Ok(()),
            (ParamType::Url, Arg::Text(t)) => {
                let text = t.to_string();
                if text.starts_with("http://") || text.starts_with("https://") {
                    Ok(())
                } else {
                    Err(format!("\"{text}\" is not an http:// or https:// URL"))
                }
            }
            (ParamType::Integer { min, max }, Arg::Integer(i)) => {
                if (min..=max).contains(i) {
                    Ok(())
                } else {
                    Err(format!("{i} is out of range: expected {}", self.describe()))
                }
            }
            (ParamType::Bool, Arg::Bool(_)) => Ok(()),
            (ParamType::Duration, Arg::Text(t)) => {
                let text = t.to_string();
                parse_duration(&text)
                    .map(|_| ())
                    .map_err(|why| format!("\"{text}\" is not a valid duration: {why}"))
            }
            // Arguments and environment values are text to the program: numbers and booleans
            // (often from `${params.X}`) are passed as written.
            (ParamType::StringList, Arg::List(items)) => {
                if items.is_empty() {
                    return Err("the array is empty".into());
                }
                match items.iter().find(|i| !is_scalar(i)) {
                    Some(bad) => Err(format!("expected strings only, found {}", kind_of(bad))),
                    None => Ok(()),
                }
            }
            (ParamType::StringTable, Arg::Map(entries)) => {
                match entries.iter().find(|(_, v)| !is_scalar(v)) {
                    Some((k, bad)) => {
                        Err(format!("`{k}` must be a string, found {}", kind_of(bad)))
                    }
                    None => Ok(()),
                }
            }
            (ParamType::StringListTable, Arg::Map(entries)) => string_lists(entries),
            (ParamType::Table, Arg::Map(_)) => Ok(()),
            (ParamType::OneOf(names), Arg::Text(t)) => {
                let text = t.to_string();
                if names.contains(&text.as_str()) {
                    Ok(())
                } else {
                    let hint = crate::diagnostic::did_you_mean(&text, names.iter().copied())
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default();
                    Err(format!(
                        "\"{text}\" is not allowed: expected {}{hint}",
                        self.describe()
                    ))
                }
            }
            (ParamType::Timestamp, Arg::Text(t)) => {
                let text = t.to_string();
                if looks_like_rfc3339(&text) {
                    Ok(())
                } else {
                    Err(format!(
                        "\"{text}\" is not an RFC 3339 timestamp such as \"2026-11-22T03:00:00Z\""
                    ))
                }
            }
            _ => Err(expected()),
        }
    }
}

/// Checks that every value of a table is an array of strings.
fn string_lists<'a>(entries: impl IntoIterator<Item = &'a (String, Arg)>) -> Result<(), String> {
    for (k, v) in entries {
        let Arg::List(items) = v else {
            return Err(format!(
                "`{k}` must be an array of strings, found {}",
                kind_of(v)
            ));
        };
        if let Some(bad) = items.iter().find(|i| !is_scalar(i)) {
            return Err(format!(
                "`{k}` must hold strings only, found {}",
                kind_of(bad)
            ));
        }
    }
    Ok(())
}

fn is_scalar(arg: &Arg) -> bool {
    matches!(
        arg,
        Arg::Text(_) | Arg::Integer(_) | Arg::Float(_) | Arg::Bool(_)
    )
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn kind_of(value: &Arg) -> &'static str {
    match value {
        Arg::Text(_) => "a string",
        Arg::Integer(_) => "an integer",
        Arg::Float(_) => "a float",
        Arg::Bool(_) => "a boolean",
        Arg::List(_) => "an array",
        Arg::Map(_) => "a table",
    }
}

/// `YYYY-MM-DDTHH:MM:SS` followed by optional fraction and a `Z` or `±HH:MM` offset.
fn looks_like_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || !matches!(b[10], b'T' | b't' | b' ')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match &b[i..] {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// The `region` every regional AWS action takes.
pub(super) const REGION: ParamSpec = ParamSpec::optional(
    "region",
    ParamType::String,
    "AWS region; the standard chain decides when absent",
);

/// One parameter an action takes.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// The `with` key.
    pub name: &'static str,
    /// Its type.
    pub ty: ParamType,
    /// Whether it must be given.
    pub required: bool,
    /// The default when optional, as it would be written (for docs and plan).
    pub default: Option<&'static str>,
    /// What it means, for docs.
    pub doc: &'static str,
    /// Whether it must be written out in the workflow: no `${...}` reference, so neither
    /// `--param` nor the environment nor an earlier step can change it (an approval's policy).
    pub literal: bool,
}

impl ParamSpec {
    /// A required parameter.
    pub const fn required(name: &'static str, ty: ParamType, doc: &'static str) -> Self {
        Self {
            name,
            ty,
            required: true,
            default: None,
            doc,
            literal: false,
        }
    }

    /// An optional parameter without default.
    pub const fn optional(name: &'static str, ty: ParamType, doc: &'static str) -> Self {
        Self {
            name,
            ty,
            required: false,
            default: None,
            doc,
            literal: false,
        }
    }

    /// An optional parameter with a default.
    pub const fn defaulted(
        name: &'static str,
        ty: ParamType,
        default: &'static str,
        doc: &'static str,
    ) -> Self {
        Self {
            name,
            ty,
            required: false,
            default: Some(default),
            doc,
            literal: false,
        }
    }

    /// The same parameter, required to be written out without `${...}` references.
    #[must_use]
    pub const fn literal(self) -> Self {
        Self {
            literal: true,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::Template;

    fn text(s: &str) -> Arg {
        Arg::Text(Template::parse(s).unwrap())
    }

    #[test]
    fn timestamps() {
        assert!(looks_like_rfc3339("2026-11-22T03:00:00Z"));
        assert!(looks_like_rfc3339("2026-11-22T03:00:00.123+02:00"));
        assert!(!looks_like_rfc3339("2026-11-22"));
        assert!(!looks_like_rfc3339("yesterday"));
    }

    #[test]
    fn runtime_values_pass_where_strings_may_stand() {
        assert!(
            ParamType::Integer { min: 0, max: 5 }
                .check(&text("${steps.a.outputs.port}"))
                .is_ok()
        );
        assert!(ParamType::StringList.check(&text("${env.X}")).is_err());
        assert!(
            ParamType::Table
                .check(&text("${steps.a.outputs.p}"))
                .is_err()
        );
    }

    #[test]
    fn a_table_holds_any_values_and_nothing_else_is_one() {
        let nested = Arg::Map(vec![
            ("order".into(), Arg::Integer(7)),
            (
                "items".into(),
                Arg::List(vec![Arg::Map(vec![("sku".into(), text("A-1"))])]),
            ),
        ]);
        assert!(ParamType::Table.check(&nested).is_ok());
        assert!(ParamType::Table.check(&Arg::Map(vec![])).is_ok());
        assert!(ParamType::Table.check(&text("{}")).is_err());
        assert!(ParamType::Table.check(&Arg::List(vec![])).is_err());
    }

    #[test]
    fn types_and_ranges() {
        let int = ParamType::Integer { min: 0, max: 255 };
        assert!(int.check(&Arg::Integer(256)).is_err());
        assert!(int.check(&text("5")).is_err());
        assert!(ParamType::Url.check(&text("ftp://x")).is_err());
        assert!(ParamType::Duration.check(&text("5 min")).is_err());
        assert!(ParamType::StringList.check(&Arg::List(vec![])).is_err());
        let table = |v: Arg| Arg::Map(vec![("InstanceId".into(), v)]);
        assert!(
            ParamType::StringListTable
                .check(&table(Arg::List(vec![text("i-1")])))
                .is_ok()
        );
        assert!(
            ParamType::StringListTable
                .check(&table(text("i-1")))
                .unwrap_err()
                .contains("must be an array of strings")
        );
        assert!(
            ParamType::StringListTable
                .check(&table(Arg::List(vec![Arg::List(vec![])])))
                .is_err()
        );
        assert!(ParamType::StringListTable.check(&text("${env.X}")).is_err());
        assert!(
            ParamType::OneOf(&["A", "CNAME"])
                .check(&text("CNAM"))
                .unwrap_err()
                .contains("did you mean")
        );
    }
}
