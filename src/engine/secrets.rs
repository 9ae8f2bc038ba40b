//! Secrets stay secret (SPEC §5.8.4). A step reads `${env.NAME}` at run time; whatever comes
//! back from running it (its outputs, such as a shell step's `stdout_tail`, its error message,
//! a probe's or a compensation's answer) is scrubbed before it becomes an engine input, so the
//! value never reaches the journal, the store, the terminal, the reports or the control
//! socket: it reads `${env.NAME}` there instead.

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
