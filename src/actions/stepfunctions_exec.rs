//! Step Functions through the SDK: an execution started once per attempt under a name derived
//! from the run, the step and the attempt, after looking for the executions of the step's
//! earlier attempts (a start whose answer was lost, in a crash or a timeout, is found there
//! and followed instead of starting another), then waited for until it ends.

use aws_sdk_sfn::operation::describe_execution::{DescribeExecutionError, DescribeExecutionOutput};
use aws_sdk_sfn::operation::start_execution::StartExecutionError;
use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::Value;

use super::LiveState;
use super::outcome::{ExecContext, Outputs, Resolved, StepError, live_or_unavailable, text};
use super::processes::AttemptMark;
use crate::aws::{AwsContext, Clients, classify};

/// The longest execution name Step Functions takes.
const NAME_MAX: usize = 80;

/// The state machine's region: the step's `region`, else the one its ARN names
/// (`arn:aws:states:REGION:ACCOUNT:stateMachine:NAME`), else the chain's.
fn region_of(args: &Resolved) -> Option<&str> {
    text(args, "region").or_else(|| {
        text(args, "state_machine_arn")
            .and_then(|arn| arn.split(':').nth(3))
            .filter(|r| !r.is_empty())
    })
}

fn machine_of(args: &Resolved) -> &str {
    text(args, "state_machine_arn").unwrap_or_default()
}

/// The name of the execution attempt `attempt` of the step marked `mark` starts:
/// `drctl-RUN-STEP-ATTEMPT`, in the characters Step Functions allows, at most 80 of them (a
/// long step id is cut and told apart by a hash of the whole).
fn execution_name(mark: &AttemptMark, attempt: u32) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let (run, step) = (clean(&mark.run), clean(&mark.step));
    let name = format!("drctl-{run}-{step}-{attempt}");
    if name.len() <= NAME_MAX {
        return name;
    }
    // FNV-1a of the whole step id: two long ids with one beginning stay apart.
    let hash = mark.step.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let suffix = format!("_{:08x}-{attempt}", hash >> 32);
    let keep = NAME_MAX.saturating_sub("drctl-".len() + run.len() + 1 + suffix.len());
    let cut: String = step.chars().take(keep).collect();
    format!("drctl-{run}-{cut}{suffix}")
        .chars()
        .take(NAME_MAX)
        .collect()
}

/// The ARN an execution named `name` of state machine `machine` has:
/// `arn:PARTITION:states:REGION:ACCOUNT:execution:MACHINE:NAME` (a version's or alias's ARN
/// names the same machine).
fn execution_arn(machine: &str, name: &str) -> Option<String> {
    let (head, tail) = machine.split_once(":stateMachine:")?;
    let machine_name = tail.split(':').next().filter(|n| !n.is_empty())?;
    Some(format!("{head}:execution:{machine_name}:{name}"))
}

/// The execution `arn`, if it exists.
async fn describe(c: &Clients, arn: &str) -> Result<Option<DescribeExecutionOutput>, StepError> {
    match c.sfn.describe_execution().execution_arn(arn).send().await {
        Ok(out) => Ok(Some(out)),
        Err(e)
            if e.as_service_error()
                .is_some_and(DescribeExecutionError::is_execution_does_not_exist) =>
        {
            Ok(None)
        }
        Err(e) => Err(classify(&e, &format!("Step Functions execution {arn}"), &c.region).into()),
    }
}

/// The latest execution an earlier attempt of this step started, when it is still running or
/// succeeded: that start took effect, and this attempt follows it. One that failed, timed out
/// or was aborted ended an attempt that failed: this attempt starts anew.
async fn earlier(
    c: &Clients,
    machine: &str,
    mark: &AttemptMark,
) -> Result<Option<String>, StepError> {
    for attempt in (1..mark.attempt).rev() {
        let Some(arn) = execution_arn(machine, &execution_name(mark, attempt)) else {
            return Ok(None);
        };
        if let Some(found) = describe(c, &arn).await? {
            let going = matches!(
                found.status(),
                ExecutionStatus::Running | ExecutionStatus::Succeeded
            );
            return Ok(going.then_some(arn));
        }
    }
    Ok(None)
}

/// Starts the execution this attempt names, sent once; returns its ARN. Step Functions
/// answers a start under a name already running with the same input by that execution, and
/// refuses it otherwise (`ExecutionAlreadyExists`): then it is a start of this attempt that
/// landed, and its execution is followed.
async fn start(c: &Clients, args: &Resolved, name: &str) -> Result<String, StepError> {
    let machine = machine_of(args);
    let input = match args.get("input") {
        Some(v) => serde_json::to_string(v)
            .map_err(|e| StepError::fatal(format!("`input` cannot be sent as JSON: {e}")))?,
        None => "{}".to_string(),
    };
    let sent = c
        .sfn
        .start_execution()
        .state_machine_arn(machine)
        .name(name)
        .input(input)
        .customize()
        .config_override(crate::aws::sent_once_sfn())
        .send()
        .await;
    match sent {
        Ok(out) => Ok(out.execution_arn().to_string()),
        Err(e)
            if e.as_service_error()
                .is_some_and(StartExecutionError::is_execution_already_exists) =>
        {
            execution_arn(machine, name).ok_or_else(|| {
                StepError::fatal(format!(
                    "{machine} is not a state machine ARN (arn:aws:states:REGION:ACCOUNT:stateMachine:NAME)"
                ))
            })
        }
        Err(e) => Err(classify(
            &e,
            &format!("starting execution {name} of state machine {machine}"),
            &c.region,
        )
        .into()),
    }
}

fn outputs(arn: &str, status: &ExecutionStatus, output: Option<&str>) -> Outputs {
    let mut out = Outputs::new();
    out.insert("execution_arn".into(), arn.into());
    out.insert("status".into(), status.as_str().into());
    out.insert(
        "output".into(),
        output.map_or(Value::Null, |o| {
            serde_json::from_str(o).unwrap_or_else(|_| Value::String(o.to_string()))
        }),
    );
    out
}

/// Waits until execution `arn` ends: its outputs when it succeeded, else a fatal error with
/// its status, error and cause.
async fn wait_end(c: &Clients, arn: &str, ctx: &ExecContext) -> Result<Outputs, StepError> {
    loop {
        let e = describe(c, arn).await?.ok_or_else(|| {
            StepError::fatal(format!(
                "Step Functions execution {arn} in {}: not found after it was started",
                c.region
            ))
        })?;
        match e.status() {
            ExecutionStatus::Running | ExecutionStatus::PendingRedrive => {
                tokio::time::sleep(ctx.aws.poll_interval).await;
            }
            ExecutionStatus::Succeeded => {
                return Ok(outputs(arn, e.status(), e.output()));
            }
            other => {
                return Err(StepError::fatal(format!(
                    "Step Functions execution {arn} in {} ended {}: {}{}",
                    c.region,
                    other.as_str(),
                    e.error().unwrap_or("no error given"),
                    e.cause().map(|c| format!(" ({c})")).unwrap_or_default()
                )));
            }
        }
    }
}

/// `stepfunctions.start_execution`.
pub async fn start_execution(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let Some(mark) = ctx.processes.attempt.as_ref() else {
        return Err(StepError::fatal(
            "stepfunctions.start_execution names its execution after the run, the step and the attempt: it runs only as a step of a run",
        ));
    };
    let c = ctx.aws.clients(region_of(args)).await?;
    let machine = machine_of(args);
    let arn = match earlier(&c, machine, mark).await? {
        Some(arn) => {
            tracing::info!(execution = %arn, "following the execution an earlier attempt started");
            arn
        }
        None => start(&c, args, &execution_name(mark, mark.attempt)).await?,
    };
    if args.get("wait").and_then(Value::as_bool) == Some(false) {
        return Ok(outputs(&arn, &ExecutionStatus::Running, None));
    }
    wait_end(&c, &arn, ctx).await
}

/// The state machine a step would start, for plan: its status and type.
pub async fn current_state_machine(args: &Resolved, aws: &AwsContext) -> LiveState {
    let lookup = async {
        let c = aws.clients(region_of(args)).await?;
        let machine = machine_of(args);
        let out = c
            .sfn
            .describe_state_machine()
            .state_machine_arn(machine)
            .send()
            .await
            .map_err(|e| classify(&e, &format!("state machine {machine}"), &c.region))?;
        Ok(format!(
            "state machine {} is {} ({})",
            out.name(),
            out.status().map_or("of unknown status", |s| s.as_str()),
            out.r#type().as_str()
        ))
    };
    live_or_unavailable(lookup.await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(step: &str, attempt: u32) -> AttemptMark {
        AttemptMark {
            run: "20261207T062153Z-ab12".into(),
            step: step.into(),
            attempt,
        }
    }

    #[test]
    fn an_execution_is_named_after_the_run_the_step_and_the_attempt() {
        let m = mark("re-run.reconcile", 2);
        assert_eq!(
            execution_name(&m, 1),
            "drctl-20261207T062153Z-ab12-re-run_reconcile-1"
        );
        assert_ne!(execution_name(&m, 1), execution_name(&m, 2));
        let long = |tail: &str| mark(&format!("{}{tail}", "x".repeat(90)), 3);
        let (a, b) = (execution_name(&long("a"), 3), execution_name(&long("b"), 3));
        assert!(a.len() <= NAME_MAX && b.len() <= NAME_MAX, "{a} {b}");
        assert_ne!(a, b, "long step ids that differ at the end stay apart");
        assert!(a.ends_with("-3"), "{a}");
    }

    #[test]
    fn an_executions_arn_follows_from_its_machine_and_name() {
        let machine = "arn:aws:states:us-west-2:123456789012:stateMachine:reconcile";
        assert_eq!(
            execution_arn(machine, "n").as_deref(),
            Some("arn:aws:states:us-west-2:123456789012:execution:reconcile:n")
        );
        assert_eq!(
            execution_arn(&format!("{machine}:prod"), "n").as_deref(),
            Some("arn:aws:states:us-west-2:123456789012:execution:reconcile:n")
        );
        assert_eq!(execution_arn("reconcile", "n"), None);
    }
}
