//! SSM Parameter Store through the SDK: a parameter read, written (the value it replaces
//! journaled first), and put back, or deleted when the step created it, by the undo only
//! while it still holds what drctl wrote.
//!
//! `SecureString` parameters are never written, restored or shown: restoring one would mean
//! keeping its secret value in the run's journal.

use aws_sdk_ssm::types::{Parameter, ParameterType};
use serde_json::{Value, json};

use super::LiveState;
use super::outcome::{
    ExecContext, Outputs, Probe, Resolved, StepError, journaled, live_or_unavailable,
    probe_or_undecided, replaced, text,
};
use crate::aws::{AwsContext, Clients, classify};

/// A parameter's content: what the step writes and the undo puts back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Content {
    kind: String,
    value: String,
}

/// A parameter as it is stored now.
#[derive(Debug, Clone)]
struct Stored {
    content: Content,
    version: i64,
}

impl Stored {
    fn of(p: &Parameter) -> Self {
        Self {
            content: Content {
                kind: p
                    .r#type()
                    .map_or("String", ParameterType::as_str)
                    .to_string(),
                value: p.value().unwrap_or_default().to_string(),
            },
            version: p.version(),
        }
    }

    fn secure(&self) -> bool {
        self.content.kind == ParameterType::SecureString.as_str()
    }

    fn to_json(&self) -> Value {
        json!({ "type": self.content.kind, "value": self.content.value, "version": self.version })
    }

    /// The parameter in words; a `SecureString`'s value is never shown.
    fn shown(&self) -> String {
        if self.secure() {
            format!("a SecureString (version {}, value not shown)", self.version)
        } else {
            format!("{} (version {})", self.content, self.version)
        }
    }
}

impl Content {
    /// What a journaled previous value holds, `None` for "no parameter".
    fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            kind: v["type"].as_str()?.to_string(),
            value: v["value"].as_str()?.to_string(),
        })
    }

    /// What the step writes.
    fn wanted(args: &Resolved) -> Result<Self, StepError> {
        let value = match args.get("value") {
            Some(Value::String(s)) => s.clone(),
            // A number or a flag from an earlier step's outputs (a port, say) is written as text.
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            _ => return Err(StepError::fatal("`value` is missing or is not text")),
        };
        Ok(Self {
            kind: text(args, "type").unwrap_or("String").to_string(),
            value,
        })
    }
}

impl std::fmt::Display for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} ({})", self.value, self.kind)
    }
}

fn what(name: &str) -> String {
    format!("SSM parameter {name}")
}

/// The parameter as Parameter Store holds it now, if it exists (never decrypted).
async fn read(c: &Clients, name: &str) -> Result<Option<Stored>, StepError> {
    match c.ssm.get_parameter().name(name).send().await {
        Ok(out) => Ok(out.parameter().map(Stored::of)),
        Err(e)
            if e.as_service_error().is_some_and(
                aws_sdk_ssm::operation::get_parameter::GetParameterError::is_parameter_not_found,
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(classify(&e, &what(name), &c.region).into()),
    }
}

/// Writes `content` as a new version, sent once; returns the version.
async fn write(c: &Clients, name: &str, content: &Content) -> Result<i64, StepError> {
    let out = c
        .ssm
        .put_parameter()
        .name(name)
        .value(&content.value)
        .r#type(ParameterType::from(content.kind.as_str()))
        .overwrite(true)
        .customize()
        .config_override(crate::aws::sent_once_ssm())
        .send()
        .await
        .map_err(|e| classify(&e, &format!("writing {}", what(name)), &c.region))?;
    Ok(out.version())
}

fn refuse_secure(name: &str, region: &str) -> StepError {
    StepError::fatal(format!(
        "{} in {region} is a SecureString: drctl does not overwrite it, as restoring it on rollback would mean keeping its secret value in the run's journal",
        what(name)
    ))
}

fn outputs(version: i64, previous: &Value) -> Outputs {
    let mut out = Outputs::new();
    out.insert("version".into(), version.into());
    out.insert("previous_value".into(), previous["value"].clone());
    out
}

/// `ssm.put_parameter`.
pub async fn put(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(text(args, "region")).await?;
    let name = text(args, "name").unwrap_or_default();
    let ours = Content::wanted(args)?;
    let now = read(&c, name).await?;
    if now.as_ref().is_some_and(Stored::secure) {
        return Err(refuse_secure(name, &c.region));
    }
    let previous = replaced(ctx, || now.as_ref().map_or(Value::Null, Stored::to_json)).await?;
    let version = match &now {
        // An earlier attempt wrote it already, or it held this value before.
        Some(stored) if stored.content == ours => stored.version,
        _ => write(&c, name, &ours).await?,
    };
    Ok(outputs(version, &previous))
}

fn changed_since(name: &str, wrote: &Content, now: &str, before: Option<&Content>) -> StepError {
    StepError::conflict(format!(
        "{} was changed after drctl wrote it: drctl wrote {wrote}, it now holds {now} (before drctl: {})",
        what(name),
        before.map_or_else(|| "no parameter".to_string(), ToString::to_string)
    ))
}

/// Undo of `ssm.put_parameter`: the previous value back (or the parameter deleted when the
/// step created it), only while the parameter still holds what the step wrote.
pub async fn undo_put(
    args: &Resolved,
    _outputs: &Outputs,
    ctx: &ExecContext,
) -> Result<(), StepError> {
    let Some(journal) = journaled(ctx) else {
        return Ok(());
    };
    let before = Content::from_json(&journal);
    let c = ctx.aws.clients(text(args, "region")).await?;
    let name = text(args, "name").unwrap_or_default();
    let ours = Content::wanted(args)?;
    let now = read(&c, name).await?;
    match (&before, &now) {
        // Already as it was (the write never landed, or an undo already ran).
        (None, None) => Ok(()),
        (Some(was), Some(now)) if &now.content == was => Ok(()),
        (_, Some(now)) if now.content != ours => {
            Err(changed_since(name, &ours, &now.shown(), before.as_ref()))
        }
        (Some(_), None) => Err(changed_since(
            name,
            &ours,
            "no parameter (it was deleted)",
            before.as_ref(),
        )),
        (Some(was), Some(_)) => write(&c, name, was).await.map(|_| ()),
        (None, Some(_)) => {
            match c
                .ssm
                .delete_parameter()
                .name(name)
                .customize()
                .config_override(crate::aws::sent_once_ssm())
                .send()
                .await
            {
                Ok(_) => Ok(()),
                // Deleted meanwhile: as it was.
                Err(e)
                    if e.as_service_error().is_some_and(
                        aws_sdk_ssm::operation::delete_parameter::DeleteParameterError::is_parameter_not_found,
                    ) =>
                {
                    Ok(())
                }
                Err(e) => Err(classify(
                    &e,
                    &format!("deleting {}, which drctl created", what(name)),
                    &c.region,
                )
                .into()),
            }
        }
    }
}

/// Probe of `ssm.put_parameter`: the parameter holds what the step writes (it took effect),
/// or still what it replaced (it did not).
pub async fn probe_put(args: &Resolved, ctx: &ExecContext) -> Probe {
    let found = async {
        // Nothing journaled: no attempt got as far as sending its write.
        let Some(journal) = journaled(ctx) else {
            return Ok(Probe::DidNot);
        };
        let before = Content::from_json(&journal);
        let c = ctx.aws.clients(text(args, "region")).await?;
        let name = text(args, "name").unwrap_or_default();
        let ours = Content::wanted(args)?;
        let now = read(&c, name).await?;
        Ok(match (&now, &before) {
            (Some(now), _) if now.content == ours => {
                Probe::TookEffect(outputs(now.version, &journal))
            }
            (None, None) => Probe::DidNot,
            (Some(now), Some(was)) if &now.content == was => Probe::DidNot,
            (now, _) => Probe::Undecided(format!(
                "{} holds {}: neither what drctl writes, {ours}, nor what it replaced",
                what(name),
                now.as_ref()
                    .map_or_else(|| "nothing".to_string(), Stored::shown)
            )),
        })
    };
    probe_or_undecided(found.await)
}

/// Live value of the parameter a step would write, for plan.
pub async fn current_parameter(args: &Resolved, aws: &AwsContext) -> LiveState {
    let lookup = async {
        let c = aws.clients(text(args, "region")).await?;
        let name = text(args, "name").unwrap_or_default();
        Ok(read(&c, name).await?.map_or_else(
            || format!("{name} does not exist"),
            |p| format!("{name} = {}", p.shown()),
        ))
    };
    live_or_unavailable(lookup.await)
}
