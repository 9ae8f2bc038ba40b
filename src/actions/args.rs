//! An action's compiled parameters: the `with` table after `${params.X}` substitution, with
//! step-output and environment references still to be filled in at run time.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::workflow::{Template, parse_duration};

/// One parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A string, possibly holding run-time references.
    Text(Template),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// An array.
    List(Vec<Arg>),
    /// A table, keys in source order.
    Map(Vec<(String, Arg)>),
}

impl Arg {
    /// The string, when it holds no run-time reference.
    pub fn literal_text(&self) -> Option<String> {
        match self {
            Arg::Text(t) => t.as_literal(),
            _ => None,
        }
    }

    /// Whether the value is only known at run time (it holds a step output or `${env...}`).
    pub fn is_runtime(&self) -> bool {
        match self {
            Arg::Text(t) => t.is_runtime(),
            Arg::List(items) => items.iter().any(Arg::is_runtime),
            Arg::Map(entries) => entries.iter().any(|(_, v)| v.is_runtime()),
            _ => false,
        }
    }

    /// Every template inside, depth first.
    pub fn templates(&self) -> Vec<&Template> {
        match self {
            Arg::Text(t) => vec![t],
            Arg::List(items) => items.iter().flat_map(Arg::templates).collect(),
            Arg::Map(entries) => entries.iter().flat_map(|(_, v)| v.templates()).collect(),
            _ => Vec::new(),
        }
    }

    /// The value as JSON; templates appear as written (`${env.X}` is never resolved here).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Arg::Text(t) => serde_json::Value::String(t.to_string()),
            Arg::Integer(i) => (*i).into(),
            Arg::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
            }
            Arg::Bool(b) => (*b).into(),
            Arg::List(items) => items.iter().map(Arg::to_json).collect(),
            Arg::Map(entries) => entries
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Text(t) => write!(f, "{t}"),
            Arg::Integer(i) => write!(f, "{i}"),
            Arg::Float(x) => write!(f, "{x}"),
            Arg::Bool(b) => write!(f, "{b}"),
            Arg::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Arg::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} = {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// An action's parameters by name, in the order they were written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Args {
    /// `(name, value)` pairs.
    pub entries: Vec<(String, Arg)>,
}

impl Args {
    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&Arg> {
        self.entries.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// `name` for display: the value as written, or `fallback` when absent.
    pub fn show_or(&self, name: &str, fallback: &str) -> String {
        self.get(name)
            .map_or_else(|| fallback.to_string(), ToString::to_string)
    }

    /// `name` for display, `?` when absent.
    pub fn show(&self, name: &str) -> String {
        self.show_or(name, "?")
    }

    /// The region of an AWS step, for display: its `region`, or the default region.
    pub fn region(&self) -> String {
        self.show_or("region", "the default region")
    }

    /// A literal integer parameter.
    pub fn integer(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(Arg::Integer(i)) => Some(*i),
            _ => None,
        }
    }

    /// A literal boolean parameter.
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some(Arg::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    /// A literal duration parameter.
    pub fn duration(&self, name: &str) -> Option<Duration> {
        self.get(name)
            .and_then(Arg::literal_text)
            .and_then(|t| parse_duration(&t).ok())
    }

    /// The parameters as a JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        self.entries
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

impl Serialize for Args {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}
