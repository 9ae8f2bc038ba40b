//! Lambda through the SDK: a function invoked once, its answer (or its own error) read; an
//! alias read, pointed at a version (where it pointed journaled first), and put back by the
//! undo only while it still points where drctl put it.

use std::collections::BTreeMap;

use aws_sdk_lambda::operation::get_alias::GetAliasOutput;
use aws_sdk_lambda::operation::update_alias::UpdateAliasError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{AliasRoutingConfiguration, InvocationType};
use serde_json::{Value, json};

use super::LiveState;
use super::outcome::{
    ExecContext, Outputs, Probe, Resolved, StepError, journaled, live_or_unavailable,
    probe_or_undecided, replaced, text,
};
use crate::aws::{AwsContext, Clients, classify};

async fn clients(args: &Resolved, aws: &AwsContext) -> Result<Clients, StepError> {
    Ok(aws.clients(text(args, "region")).await?)
}

fn function_of(args: &Resolved) -> &str {
    text(args, "function").unwrap_or_default()
}

/// The function's own account of its error, from the payload it returned: `errorType:
/// errorMessage` when it is Lambda's error document, else the payload as it came.
fn error_text(payload: &[u8]) -> String {
    let raw = String::from_utf8_lossy(payload);
    match serde_json::from_slice::<Value>(payload) {
        Ok(doc) if doc.get("errorMessage").is_some() => {
            let message = doc["errorMessage"]
                .as_str()
                .map_or_else(|| doc["errorMessage"].to_string(), str::to_string);
            match doc["errorType"].as_str() {
                Some(kind) => format!("{kind}: {message}"),
                None => message,
            }
        }
        _ => raw.into_owned(),
    }
}

/// `lambda.invoke`: one synchronous invocation, sent once.
pub async fn invoke(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = clients(args, &ctx.aws).await?;
    let function = function_of(args);
    let qualifier = text(args, "qualifier");
    let named = match qualifier {
        Some(q) => format!("Lambda function {function} ({q})"),
        None => format!("Lambda function {function}"),
    };
    let mut request = c
        .lambda
        .invoke()
        .function_name(function)
        .set_qualifier(qualifier.map(str::to_string))
        .invocation_type(InvocationType::RequestResponse);
    if let Some(payload) = args.get("payload") {
        let bytes = serde_json::to_vec(payload)
            .map_err(|e| StepError::fatal(format!("`payload` cannot be sent as JSON: {e}")))?;
        request = request.payload(Blob::new(bytes));
    }
    let out = request
        .customize()
        .config_override(crate::aws::sent_once_lambda())
        .send()
        .await
        .map_err(|e| classify(&e, &format!("invoking {named}"), &c.region))?;
    let payload = out.payload().map(Blob::as_ref).unwrap_or_default();
    if let Some(kind) = out.function_error() {
        return Err(StepError::fatal(format!(
            "{named} in {} returned an error ({kind}): {}",
            c.region,
            error_text(payload)
        )));
    }
    let mut o = Outputs::new();
    o.insert("status_code".into(), out.status_code().into());
    o.insert(
        "payload".into(),
        serde_json::from_slice(payload)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned())),
    );
    o.insert("function_error".into(), Value::Null);
    Ok(o)
}

/// The function a step would invoke, for plan: the version it runs and its state.
pub async fn current_function(args: &Resolved, aws: &AwsContext) -> LiveState {
    let lookup = async {
        let c = clients(args, aws).await?;
        let function = function_of(args);
        let qualifier = text(args, "qualifier");
        let out = c
            .lambda
            .get_function()
            .function_name(function)
            .set_qualifier(qualifier.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify(&e, &format!("Lambda function {function}"), &c.region))?;
        let config = out.configuration();
        Ok(format!(
            "function {function}{} runs version {} ({}, last modified {})",
            qualifier.map(|q| format!(":{q}")).unwrap_or_default(),
            config.and_then(|f| f.version()).unwrap_or("?"),
            config
                .and_then(|f| f.state())
                .map_or("state unknown", |s| s.as_str()),
            config.and_then(|f| f.last_modified()).unwrap_or("?"),
        ))
    };
    live_or_unavailable(lookup.await)
}

/// Where an alias sends its traffic: its version, and the weights of any other versions.
#[derive(Debug, Clone, PartialEq)]
struct Pointing {
    version: String,
    weights: BTreeMap<String, f64>,
}

impl Pointing {
    fn of(alias: &GetAliasOutput) -> Self {
        Self {
            version: alias.function_version().unwrap_or_default().to_string(),
            weights: alias
                .routing_config()
                .and_then(AliasRoutingConfiguration::additional_version_weights)
                .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
                .unwrap_or_default(),
        }
    }

    /// What the step sets: every request to `version`.
    fn wanted(args: &Resolved) -> Result<Self, StepError> {
        let version = match args.get("version") {
            Some(Value::String(s)) => s.clone(),
            // A version number from an earlier step's outputs.
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(StepError::fatal("`version` is missing or is not text")),
        };
        Ok(Self {
            version,
            weights: BTreeMap::new(),
        })
    }

    fn to_json(&self) -> Value {
        json!({ "version": self.version, "weights": self.weights })
    }

    fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            version: v["version"].as_str()?.to_string(),
            weights: v["weights"]
                .as_object()?
                .iter()
                .map(|(k, w)| Some((k.clone(), w.as_f64()?)))
                .collect::<Option<_>>()?,
        })
    }
}

impl std::fmt::Display for Pointing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "version {}", self.version)?;
        for (version, weight) in &self.weights {
            write!(f, " (+{:.0}% to version {version})", weight * 100.0)?;
        }
        Ok(())
    }
}

/// The alias a step names.
struct Alias<'a> {
    function: &'a str,
    name: &'a str,
}

impl<'a> Alias<'a> {
    fn of(args: &'a Resolved) -> Self {
        Self {
            function: function_of(args),
            name: text(args, "alias").unwrap_or_default(),
        }
    }

    fn what(&self) -> String {
        format!("alias {} of Lambda function {}", self.name, self.function)
    }

    async fn read(&self, c: &Clients) -> Result<Pointing, StepError> {
        Ok(self.read_revision(c).await?.0)
    }

    /// Where the alias points, and the revision Lambda gives that state.
    async fn read_revision(&self, c: &Clients) -> Result<(Pointing, Option<String>), StepError> {
        let out = c
            .lambda
            .get_alias()
            .function_name(self.function)
            .name(self.name)
            .send()
            .await
            .map_err(|e| classify(&e, &self.what(), &c.region))?;
        Ok((Pointing::of(&out), out.revision_id().map(str::to_string)))
    }

    /// Points the alias as `to` says, sent once, and only while it is still at `revision`
    /// (what drctl read just before): one moved by someone else in between is left as they
    /// put it, and the step says so.
    async fn write(
        &self,
        c: &Clients,
        to: &Pointing,
        revision: Option<&str>,
    ) -> Result<(), StepError> {
        let routing = AliasRoutingConfiguration::builder()
            .set_additional_version_weights(Some(
                to.weights.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            ))
            .build();
        c.lambda
            .update_alias()
            .function_name(self.function)
            .name(self.name)
            .function_version(&to.version)
            .routing_config(routing)
            .set_revision_id(revision.map(str::to_string))
            .customize()
            .config_override(crate::aws::sent_once_lambda())
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(UpdateAliasError::is_precondition_failed_exception)
                {
                    return StepError::conflict(format!(
                        "{} in {} was moved by someone else between drctl's read of it and its change (revision {}); drctl leaves it as they put it and changed nothing",
                        self.what(),
                        c.region,
                        revision.unwrap_or("?")
                    ));
                }
                classify(&e, &format!("pointing {}", self.what()), &c.region).into()
            })?;
        Ok(())
    }
}

fn outputs(previous: &Value) -> Outputs {
    let mut out = Outputs::new();
    out.insert("previous_version".into(), previous["version"].clone());
    out
}

/// `lambda.set_alias`.
pub async fn set_alias(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = clients(args, &ctx.aws).await?;
    let alias = Alias::of(args);
    let ours = Pointing::wanted(args)?;
    let (now, revision) = alias.read_revision(&c).await?;
    let previous = replaced(ctx, || now.to_json()).await?;
    // An earlier attempt set it already, or it pointed there before.
    if now != ours {
        alias.write(&c, &ours, revision.as_deref()).await?;
    }
    Ok(outputs(&previous))
}

/// Undo of `lambda.set_alias`: the alias back where it pointed, only while it still points
/// where drctl put it; otherwise a conflict showing both.
pub async fn undo_alias(
    args: &Resolved,
    _outputs: &Outputs,
    ctx: &ExecContext,
) -> Result<(), StepError> {
    let Some(journal) = journaled(ctx) else {
        return Ok(());
    };
    let alias = Alias::of(args);
    let before = Pointing::from_json(&journal).ok_or_else(|| {
        StepError::fatal(format!(
            "what {} pointed to before cannot be read from the journal: {journal}",
            alias.what()
        ))
    })?;
    let c = clients(args, &ctx.aws).await?;
    let ours = Pointing::wanted(args)?;
    let (now, revision) = alias.read_revision(&c).await?;
    if now == before {
        // Already as it was (the change never landed, or an undo already ran).
        return Ok(());
    }
    if now != ours {
        return Err(StepError::conflict(format!(
            "{} in {} was moved after drctl set it: drctl set {ours}, it now points to {now} (before drctl: {before}); drctl leaves it as it is",
            alias.what(),
            c.region
        )));
    }
    alias.write(&c, &before, revision.as_deref()).await
}

/// Probe of `lambda.set_alias`: the alias points where the step puts it (it took effect), or
/// still where it pointed before (it did not).
pub async fn probe_alias(args: &Resolved, ctx: &ExecContext) -> Probe {
    let found = async {
        // Nothing journaled: no attempt got as far as sending its change.
        let Some(journal) = journaled(ctx) else {
            return Ok(Probe::DidNot);
        };
        let c = clients(args, &ctx.aws).await?;
        let alias = Alias::of(args);
        let ours = Pointing::wanted(args)?;
        let now = alias.read(&c).await?;
        Ok(if now == ours {
            Probe::TookEffect(outputs(&journal))
        } else if Pointing::from_json(&journal).as_ref() == Some(&now) {
            Probe::DidNot
        } else {
            Probe::Undecided(format!(
                "{} points to {now}: neither where drctl puts it, {ours}, nor where it pointed before",
                alias.what()
            ))
        })
    };
    probe_or_undecided(found.await)
}

/// Where the alias a step would move points now, for plan.
pub async fn current_alias(args: &Resolved, aws: &AwsContext) -> LiveState {
    let lookup = async {
        let c = clients(args, aws).await?;
        let alias = Alias::of(args);
        Ok(format!(
            "{} points to {}",
            alias.what(),
            alias.read(&c).await?
        ))
    };
    live_or_unavailable(lookup.await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_functions_own_error_is_what_the_step_says() {
        let doc = br#"{"errorMessage": "table tasks-restored has 0 rows", "errorType": "ReconcileError", "stackTrace": []}"#;
        assert_eq!(
            error_text(doc),
            "ReconcileError: table tasks-restored has 0 rows"
        );
        assert_eq!(error_text(b"not json"), "not json");
    }

    #[test]
    fn where_an_alias_pointed_reads_back_from_the_journal() {
        let p = Pointing {
            version: "7".into(),
            weights: BTreeMap::from([("8".into(), 0.1)]),
        };
        assert_eq!(Pointing::from_json(&p.to_json()), Some(p.clone()));
        assert_eq!(p.to_string(), "version 7 (+10% to version 8)");
        assert_eq!(Pointing::from_json(&json!({"version": 7})), None);
    }
}
