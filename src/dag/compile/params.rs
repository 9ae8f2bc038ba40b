//! Workflow parameters: the `[params]` defaults, overridden by `--param name=value`. An
//! override takes the type of its default; an unknown or ill-typed one is reported, never
//! ignored. References to parameters (`${params.X}`) are resolved in `references`.

use crate::diagnostic::{Code, Diagnostic, Diagnostics, did_you_mean};
use crate::workflow::{ParamValue, RawWorkflow, Spanned};

/// A `--param name=value` given on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Override {
    /// The parameter's name.
    pub name: String,
    /// The value as typed.
    pub value: String,
}

impl std::str::FromStr for Override {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => Ok(Override {
                name: name.trim().to_string(),
                value: value.to_string(),
            }),
            _ => Err(format!("`{s}` is not of the form name=value")),
        }
    }
}

impl std::fmt::Display for Override {
    /// `name=value`, as given and as stored with a run.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

impl serde::Serialize for Override {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Override {
    /// Read from `name=value`: a stored override that does not read is an error, never
    /// dropped (it would silently run another workflow than was started).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

pub(super) fn resolve_params(
    raw: &RawWorkflow,
    overrides: &[Override],
    diags: &mut Diagnostics,
) -> Vec<(String, Spanned<ParamValue>)> {
    let mut params: Vec<(String, Spanned<ParamValue>)> = raw
        .params
        .iter()
        .map(|p| (p.name.value.clone(), p.value.clone()))
        .collect();
    for o in overrides {
        let Some((_, slot)) = params.iter_mut().find(|(k, _)| *k == o.name) else {
            let help = did_you_mean(&o.name, raw.params.iter().map(|p| p.name.value.as_str()))
                .unwrap_or_else(|| {
                    if raw.params.is_empty() {
                        "this workflow declares no parameters".into()
                    } else {
                        let names: Vec<_> =
                            raw.params.iter().map(|p| p.name.value.as_str()).collect();
                        format!("the workflow's parameters are: {}", names.join(", "))
                    }
                });
            diags.push(
                Diagnostic::new(
                    Code::BadOverride,
                    format!(
                        "--param {}: the workflow has no parameter `{}`",
                        o.name, o.name
                    ),
                )
                .help(help),
            );
            continue;
        };
        match convert_override(&slot.value, &o.value) {
            Ok(v) => slot.value = v,
            Err(expected) => diags.push(
                Diagnostic::new(
                    Code::BadOverride,
                    format!(
                        "--param {}={}: expected {expected}, like the default",
                        o.name, o.value
                    ),
                )
                .at(
                    slot.span.clone(),
                    "the default's type decides the override's",
                ),
            ),
        }
    }
    params
}

fn convert_override(default: &ParamValue, text: &str) -> Result<ParamValue, &'static str> {
    match default {
        ParamValue::String(_) => Ok(ParamValue::String(text.to_string())),
        ParamValue::Integer(_) => text
            .trim()
            .parse()
            .map(ParamValue::Integer)
            .map_err(|_| "an integer"),
        ParamValue::Float(_) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(ParamValue::Float)
            .ok_or("a number"),
        ParamValue::Bool(_) => match text.trim() {
            "true" => Ok(ParamValue::Bool(true)),
            "false" => Ok(ParamValue::Bool(false)),
            _ => Err("`true` or `false`"),
        },
    }
}
