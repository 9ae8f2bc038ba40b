//! SSM Automation through the SDK: a runbook started with a client token derived from the
//! run, the step and the attempt, and waited for until it ends.
//!
//! The token is what makes the start idempotent: SSM answers a start sent again with the same
//! token (and the same parameters) with the execution the first one started. It is journaled
//! before the start is sent, like the value a self-undoing step replaces (SPEC §5.8.3), so
//! every later attempt of the step (after a crash, a timeout, a throttled wait) sends the
//! first attempt's token and finds that execution instead of starting another.
//!
//! An execution that ended without succeeding is not what a later attempt waits on: an
//! attempt after it (the step retried on `drctl resume` once the cause is mended) tries the
//! runbook again. It walks the attempts' tokens in order from the journaled one: while the
//! execution a token finds has ended without succeeding and an attempt is left before this
//! one, the next attempt's token is sent, which finds the execution that attempt started or
//! starts it. So at most one execution follows each failed one, whatever crashes came between,
//! and one still going or succeeded is never started again.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use aws_sdk_ssm::operation::start_automation_execution::StartAutomationExecutionError;
use aws_sdk_ssm::types::{AutomationExecution, AutomationExecutionStatus as Status};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::LiveState;
use super::outcome::{
    ExecContext, Outputs, Resolved, StepError, live_or_unavailable, replaced, text,
};
use super::processes::AttemptMark;
use crate::aws::{AwsContext, Clients, classify};

/// The client token of the start an attempt sends: a UUID (the form SSM requires) made from a
/// SHA-256 digest of the run, the step and the attempt, so that the same attempt always sends
/// the same token and no two attempts, steps or runs share one.
pub fn client_token(mark: &AttemptMark) -> String {
    let mut digest = Sha256::new();
    for part in [
        "drctl ssm.start_automation",
        &mark.run,
        &mark.step,
        &mark.attempt.to_string(),
    ] {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    let mut b: [u8; 16] = digest.finalize()[..16].try_into().expect("16 of 32 bytes");
    // Version 8 (made by the application), RFC 4122 variant.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = b.iter().fold(String::with_capacity(32), |mut hex, x| {
        let _ = write!(hex, "{x:02x}");
        hex
    });
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The runbook's `parameters` as SSM takes them; numbers and flags (from `${params.X}` or an
/// earlier step's outputs) are sent as written.
fn parameters(args: &Resolved) -> Result<HashMap<String, Vec<String>>, StepError> {
    let Some(table) = args.get("parameters") else {
        return Ok(HashMap::new());
    };
    let not_strings = |key: &str| {
        StepError::fatal(format!(
            "`parameters.{key}` is not an array of strings (each runbook parameter takes an array, e.g. [\"i-0123\"])"
        ))
    };
    let Some(table) = table.as_object() else {
        return Err(StepError::fatal(
            "`parameters` is not a table of arrays of strings",
        ));
    };
    table
        .iter()
        .map(|(key, values)| {
            let values = values.as_array().ok_or_else(|| not_strings(key))?;
            let values = values
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(_) | Value::Bool(_) => Ok(v.to_string()),
                    _ => Err(not_strings(key)),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((key.clone(), values))
        })
        .collect()
}

fn what(document: &str) -> String {
    format!("SSM Automation {document}")
}

/// Sends the start with `token`; returns the execution's id. The SDK may send it again after a
/// timeout or a 5xx: with the same token, that finds the same execution.
async fn send_start(
    c: &Clients,
    document: &str,
    parameters: HashMap<String, Vec<String>>,
    token: &str,
) -> Result<String, StepError> {
    let sent = c
        .ssm
        .start_automation_execution()
        .document_name(document)
        .set_parameters((!parameters.is_empty()).then_some(parameters))
        .client_token(token)
        .send()
        .await;
    let out = match sent {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(StartAutomationExecutionError::is_idempotent_parameter_mismatch) =>
        {
            return Err(StepError::fatal(format!(
                "{} in {}: an earlier attempt of this step started it with other parameters under the same client token {token} (the workflow or its inputs changed since?); SSM does not start another under that token, and drctl does not start one under a new token while the first execution may be running: check the first execution, then mark the step or start a new run",
                what(document),
                c.region
            )));
        }
        Err(e) => {
            return Err(classify(&e, &format!("starting {}", what(document)), &c.region).into());
        }
    };
    out.automation_execution_id()
        .map(str::to_string)
        .ok_or_else(|| {
            StepError::ambiguous(format!(
                "starting {} in {}: SSM answered without an execution id",
                what(document),
                c.region
            ))
        })
}

/// The execution `id` as SSM describes it now.
async fn read(c: &Clients, id: &str) -> Result<AutomationExecution, StepError> {
    let what = format!("SSM Automation execution {id}");
    let out = c
        .ssm
        .get_automation_execution()
        .automation_execution_id(id)
        .send()
        .await
        .map_err(|e| classify(&e, &what, &c.region))?;
    out.automation_execution().cloned().ok_or_else(|| {
        StepError::ambiguous(format!(
            "{what} in {}: SSM answered without the execution",
            c.region
        ))
    })
}

/// How an execution stands: still going, ended well, or ended otherwise.
enum Standing {
    Going,
    Succeeded,
    Ended,
}

fn standing(status: Option<&Status>) -> Standing {
    match status {
        Some(Status::Success | Status::CompletedWithSuccess) => Standing::Succeeded,
        Some(
            Status::Failed
            | Status::Timedout
            | Status::Cancelled
            | Status::Rejected
            | Status::ChangeCalendarOverrideRejected
            | Status::CompletedWithFailure
            | Status::Exited,
        ) => Standing::Ended,
        _ => Standing::Going,
    }
}

fn outputs(id: &str, execution: &AutomationExecution) -> Outputs {
    let runbook: BTreeMap<&String, &Vec<String>> = execution
        .outputs()
        .map(|o| o.iter().collect())
        .unwrap_or_default();
    let mut out = Outputs::new();
    out.insert("execution_id".into(), id.into());
    out.insert(
        "status".into(),
        execution
            .automation_execution_status()
            .map_or(Value::Null, |s| s.as_str().into()),
    );
    out.insert("outputs".into(), json!(runbook));
    out
}

/// `ssm.start_automation`.
pub async fn start(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = ctx.aws.clients(text(args, "region")).await?;
    let document = text(args, "document").unwrap_or_default();
    let parameters = parameters(args)?;
    let Some(mark) = &ctx.processes.attempt else {
        return Err(StepError::fatal(format!(
            "{}: a start needs the run, step and attempt its client token is derived from, and this attempt has none",
            what(document)
        )));
    };
    // The first attempt's token, journaled before any start is sent.
    let journal = replaced(
        ctx,
        || json!({ "client_token": client_token(mark), "attempt": mark.attempt }),
    )
    .await?;
    let (Some(token), Some(first)) = (
        journal["client_token"].as_str(),
        journal["attempt"]
            .as_u64()
            .and_then(|a| u32::try_from(a).ok()),
    ) else {
        return Err(StepError::fatal(format!(
            "{}: what this step journaled before its first start holds no client token and attempt",
            what(document)
        )));
    };
    let (mut tried, mut token) = (first, token.to_string());
    let mut execution;
    let id = loop {
        let id = send_start(&c, document, parameters.clone(), &token).await?;
        tracing::info!(execution = %id, client_token = %token, "SSM Automation started (or found)");
        execution = read(&c, &id).await?;
        let ended = matches!(
            standing(execution.automation_execution_status()),
            Standing::Ended
        );
        if !ended || tried >= mark.attempt {
            break id;
        }
        // It ended without succeeding before this attempt: the attempt after it tries again.
        tracing::info!(execution = %id, "SSM Automation ended without succeeding; the next attempt starts it again");
        tried += 1;
        token = client_token(&AttemptMark {
            attempt: tried,
            ..mark.clone()
        });
    };
    loop {
        match standing(execution.automation_execution_status()) {
            Standing::Succeeded => return Ok(outputs(&id, &execution)),
            Standing::Ended => {
                return Err(StepError::fatal(format!(
                    "{} in {}: execution {id} ended {}{}",
                    what(document),
                    c.region,
                    execution
                        .automation_execution_status()
                        .map_or("?", Status::as_str),
                    execution
                        .failure_message()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                )));
            }
            Standing::Going if args.get("wait") == Some(&Value::Bool(false)) => {
                return Ok(outputs(&id, &execution));
            }
            Standing::Going => tokio::time::sleep(ctx.aws.poll_interval).await,
        }
        execution = read(&c, &id).await?;
    }
}

/// The runbook's document as SSM has it now, for plan.
pub async fn current_document(args: &Resolved, aws: &AwsContext) -> LiveState {
    let lookup = async {
        let c = aws.clients(text(args, "region")).await?;
        let document = text(args, "document").unwrap_or_default();
        let out = c
            .ssm
            .describe_document()
            .name(document)
            .send()
            .await
            .map_err(|e| classify(&e, &format!("SSM document {document}"), &c.region))?;
        let d = out.document();
        Ok(format!(
            "document {document}: version {}, {}",
            d.and_then(|d| d.document_version()).unwrap_or("?"),
            d.and_then(|d| d.status()).map_or("?", |s| s.as_str())
        ))
    };
    live_or_unavailable(lookup.await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(run: &str, step: &str, attempt: u32) -> AttemptMark {
        AttemptMark {
            run: run.into(),
            step: step.into(),
            attempt,
        }
    }

    #[test]
    fn a_client_token_is_a_uuid_of_its_run_step_and_attempt() {
        let token = client_token(&mark("r1", "restart", 1));
        assert_eq!(token, client_token(&mark("r1", "restart", 1)));
        assert_eq!(token.len(), 36);
        assert_eq!(&token[14..15], "8", "version 8: {token}");
        for other in [
            mark("r2", "restart", 1),
            mark("r1", "restart2", 1),
            mark("r1", "restart", 2),
            // The parts are kept apart: "r1"+"1restart" is not "r11"+"restart".
            mark("r11", "estart", 1),
        ] {
            assert_ne!(token, client_token(&other), "{other:?}");
        }
    }

    #[test]
    fn runbook_parameters_are_arrays_of_strings() {
        let args = |v: Value| v.as_object().unwrap().clone();
        let got = parameters(&args(json!({ "parameters": { "Count": [2, true, "x"] } })));
        assert_eq!(
            got.unwrap(),
            HashMap::from([(
                "Count".to_string(),
                vec!["2".into(), "true".into(), "x".into()]
            )])
        );
        assert!(parameters(&args(json!({}))).unwrap().is_empty());
        for bad in [
            json!({ "parameters": { "Count": "2" } }),
            json!({ "parameters": { "Count": [["2"]] } }),
            json!({ "parameters": ["2"] }),
        ] {
            assert_eq!(
                parameters(&args(bad)).unwrap_err().failure,
                super::super::Failure::Fatal
            );
        }
    }
}
