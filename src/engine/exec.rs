//! What an action needs to run, and how a step's parameters become concrete values: step
//! outputs and `${env.NAME}` are filled in here, at run time, and never stored.

use serde_json::Value;

use crate::actions::{Arg, Args, Outputs, Resolved, StepError};
use crate::workflow::Segment;

/// The outputs of a step by id, when it has them.
pub type Lookup<'a, 'f> = dyn Fn(&str) -> Option<&'a Outputs> + 'f;

/// Fills in step outputs (from `outputs`, by step id) and environment variables.
pub fn resolve(args: &Args, outputs: &Lookup<'_, '_>) -> Result<Resolved, StepError> {
    args.entries
        .iter()
        .map(|(k, v)| Ok((k.clone(), resolve_arg(v, outputs)?)))
        .collect()
}

fn resolve_arg(arg: &Arg, outputs: &Lookup<'_, '_>) -> Result<Value, StepError> {
    Ok(match arg {
        Arg::Text(t) => {
            // A string that is exactly one step output keeps the output's JSON type.
            if let [Segment::StepOutput { step, key }] = t.segments.as_slice() {
                return output(outputs, step, key).cloned();
            }
            let mut s = String::new();
            for segment in &t.segments {
                match segment {
                    Segment::Literal(l) => s.push_str(l),
                    Segment::Param(p) => s.push_str(&format!("${{params.{p}}}")),
                    Segment::StepOutput { step, key } => match output(outputs, step, key)? {
                        Value::String(v) => s.push_str(v),
                        other => s.push_str(&other.to_string()),
                    },
                    Segment::Env(name) => s.push_str(&std::env::var(name).map_err(|_| {
                        StepError::fatal(format!(
                            "environment variable {name} is not set (read by ${{env.{name}}})"
                        ))
                    })?),
                }
            }
            Value::String(s)
        }
        Arg::Integer(i) => (*i).into(),
        Arg::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Arg::Bool(b) => (*b).into(),
        Arg::List(items) => items
            .iter()
            .map(|i| resolve_arg(i, outputs))
            .collect::<Result<Vec<_>, _>>()?
            .into(),
        Arg::Map(entries) => entries
            .iter()
            .map(|(k, v)| Ok((k.clone(), resolve_arg(v, outputs)?)))
            .collect::<Result<serde_json::Map<_, _>, StepError>>()?
            .into(),
    })
}

fn output<'a>(outputs: &Lookup<'a, '_>, step: &str, key: &str) -> Result<&'a Value, StepError> {
    outputs(step).and_then(|o| o.get(key)).ok_or_else(|| {
        StepError::fatal(format!(
            "step `{step}` has no output `{key}` (it did not run, or did not produce it)"
        ))
    })
}
