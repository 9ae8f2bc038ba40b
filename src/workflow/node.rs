//! An owned TOML value tree that remembers where every value and key came from.
//!
//! The loader walks this tree instead of deserializing with serde, because serde stops at the
//! first error, and a DR runbook deserves every problem reported in one pass.

use toml::de::{DeTable, DeValue};

use crate::diagnostic::Span;

/// A value from the file, with its byte range.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the value is in the source.
    pub span: Span,
    /// The value itself.
    pub kind: NodeKind,
}

/// The TOML types a node can have.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A string.
    String(String),
    /// An integer that fits in `i64`.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A date-time, kept as written.
    Datetime(String),
    /// An array.
    Array(Vec<Node>),
    /// A table (inline or not), keys in source order.
    Table(Table),
}

/// A key with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key text.
    pub name: String,
    /// Where the key is written.
    pub span: Span,
}

/// A table's entries, in source order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// `(key, value)` pairs.
    pub entries: Vec<(Key, Node)>,
}

impl Table {
    /// The entry for `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| v)
    }

    /// The key entry for `name`, if present.
    pub fn key(&self, name: &str) -> Option<&Key> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(k, _)| k)
    }
}

impl NodeKind {
    /// The TOML type name, for messages ("expected a string, found an integer").
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeKind::String(_) => "a string",
            NodeKind::Integer(_) => "an integer",
            NodeKind::Float(_) => "a float",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Datetime(_) => "a date-time",
            NodeKind::Array(_) => "an array",
            NodeKind::Table(_) => "a table",
        }
    }
}

impl Node {
    /// The string, when this node is one.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::String(s) => Some(s),
            _ => None,
        }
    }

    /// The table, when this node is one.
    pub fn as_table(&self) -> Option<&Table> {
        match &self.kind {
            NodeKind::Table(t) => Some(t),
            _ => None,
        }
    }
}

/// Converts the parser's borrowed tree into an owned [`Table`]. Integers that do not fit in
/// `i64` become floats' worth of nothing: they are reported by the caller as out of range.
pub fn from_de_table(table: &DeTable<'_>) -> Table {
    Table {
        entries: table
            .iter()
            .map(|(k, v)| {
                (
                    Key {
                        name: k.get_ref().to_string(),
                        span: k.span(),
                    },
                    from_de_value(v.get_ref(), v.span()),
                )
            })
            .collect(),
    }
}

fn from_de_value(value: &DeValue<'_>, span: Span) -> Node {
    let kind = match value {
        DeValue::String(s) => NodeKind::String(s.to_string()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            match i64::from_str_radix(&digits, i.radix()) {
                Ok(n) => NodeKind::Integer(n),
                // Out of i64 range: keep it visible as a float so the type check reports it.
                Err(_) => NodeKind::Float(f64::INFINITY),
            }
        }
        DeValue::Float(f) => {
            NodeKind::Float(f.as_str().replace('_', "").parse().unwrap_or(f64::NAN))
        }
        DeValue::Boolean(b) => NodeKind::Bool(*b),
        DeValue::Datetime(d) => NodeKind::Datetime(d.to_string()),
        DeValue::Array(items) => NodeKind::Array(
            items
                .iter()
                .map(|item| from_de_value(item.get_ref(), item.span()))
                .collect(),
        ),
        DeValue::Table(t) => NodeKind::Table(from_de_table(t)),
    };
    Node { span, kind }
}
