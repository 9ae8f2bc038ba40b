//! Secrets stay secret (SPEC §5.8.4). A step reads `${env.NAME}` at run time; whatever comes
//! back from running it (its outputs, such as a shell step's `stdout_tail`, its error message,
//! a probe's or a compensation's answer) is scrubbed before it becomes an engine input, so the
//! value never reaches the journal, the store, the terminal, the reports or the control
//! socket: it reads `${env.NAME}` there instead.
//!
//! Every secret a step resolves is also remembered for the whole process, so that the log
//! writer can replace it in any line, whoever wrote the line ([`scrub_known`]).

use std::sync::{PoisonError, RwLock};

use serde_json::Value;

use crate::actions::{Arg, Args, Outputs};
use crate::workflow::Segment;

/// The environment values a step uses, and what to show in their place.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// (value, placeholder), longest value first so that one secret inside another is not
    /// half-replaced.
    secrets: Vec<(String, String)>,
}

impl Redactor {
    /// The secrets `${env.NAME}` references in `args` resolve to now. An unset or empty
    /// variable is nothing to hide.
    pub fn for_args<'a>(args: impl IntoIterator<Item = &'a Args>) -> Self {
        let mut secrets = Vec::new();
        for args in args {
            for arg in args.entries.iter().map(|(_, v)| v) {
                collect(arg, &mut secrets);
            }
        }
        secrets.sort_by_key(|(value, _): &(String, String)| std::cmp::Reverse(value.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// Adds these secrets to the ones every log line is scrubbed of ([`scrub_known`]).
    pub fn remember(&self) {
        for (value, placeholder) in &self.secrets {
            remember_secret(value, placeholder);
        }
    }

    /// `text` with every secret replaced by its placeholder.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (value, placeholder) in &self.secrets {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), placeholder);
            }
        }
        out
    }

    /// Every string in `outputs` scrubbed, keys included.
    pub fn scrub_outputs(&self, outputs: Outputs) -> Outputs {
        if self.secrets.is_empty() {
            return outputs;
        }
        outputs
            .into_iter()
            .map(|(k, v)| (self.scrub(&k), self.scrub_value(v)))
            .collect()
    }

    fn scrub_value(&self, value: Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.scrub(&s)),
            Value::Array(items) => items.into_iter().map(|v| self.scrub_value(v)).collect(),
            Value::Object(map) => Value::Object(self.scrub_outputs(map)),
            other => other,
        }
    }
}

/// Every secret resolved in this process so far, longest first, with its placeholder.
static KNOWN: RwLock<Vec<(String, String)>> = RwLock::new(Vec::new());

/// Remembers `value` as a secret of the process, shown as `placeholder` in logs. Its
/// JSON-escaped form is remembered too, for lines written as JSON.
pub fn remember_secret(value: &str, placeholder: &str) {
    if value.is_empty() {
        return;
    }
    let escaped = serde_json::to_string(value).unwrap_or_default();
    let escaped = escaped
        .strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(value);
    let mut known = KNOWN.write().unwrap_or_else(PoisonError::into_inner);
    for form in [value, escaped] {
        if !known.iter().any(|(v, _)| v == form) {
            known.push((form.to_string(), placeholder.to_string()));
        }
    }
    known.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
}

/// `text` with every secret this process resolved replaced by its placeholder.
pub fn scrub_known(text: &str) -> String {
    let known = KNOWN.read().unwrap_or_else(PoisonError::into_inner);
    let mut out = text.to_string();
    for (value, placeholder) in known.iter() {
        if out.contains(value.as_str()) {
            out = out.replace(value.as_str(), placeholder);
        }
    }
    out
}

fn collect(arg: &Arg, out: &mut Vec<(String, String)>) {
    match arg {
        Arg::Text(t) => {
            for segment in &t.segments {
                if let Segment::Env(name) = segment
                    && let Ok(value) = std::env::var(name)
                    && !value.is_empty()
                {
                    out.push((value, format!("${{env.{name}}}")));
                }
            }
        }
        Arg::List(items) => items.iter().for_each(|i| collect(i, out)),
        Arg::Map(entries) => entries.iter().for_each(|(_, v)| collect(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longer_secrets_are_replaced_first_and_nested_outputs_are_scrubbed() {
        let r = Redactor {
            secrets: vec![
                ("s3cr3t-long".into(), "${env.LONG}".into()),
                ("s3cr3t".into(), "${env.SHORT}".into()),
            ],
        };
        assert_eq!(
            r.scrub("a s3cr3t-long and a s3cr3t"),
            "a ${env.LONG} and a ${env.SHORT}"
        );
        let mut outputs = Outputs::new();
        outputs.insert(
            "nested".into(),
            serde_json::json!({ "list": ["x s3cr3t y"], "n": 3 }),
        );
        let scrubbed = r.scrub_outputs(outputs);
        assert_eq!(
            scrubbed["nested"],
            serde_json::json!({ "list": ["x ${env.SHORT} y"], "n": 3 })
        );
    }
}
