//! Step Functions actions: starting a state machine's execution (a reconciliation, a
//! re-drive of work lost in the outage) and waiting for its end.

use super::schema::{ParamSpec as P, ParamType as T, REGION};
use super::stepfunctions_exec as exec;
use super::{Action, ActionSpec, Args, Effect};

pub(super) fn all() -> Vec<Box<dyn Action>> {
    vec![Box::new(StartExecution)]
}

struct StartExecution;

static START_EXECUTION: ActionSpec = ActionSpec {
    name: "stepfunctions.start_execution",
    summary: "Start an execution of a state machine and, unless `wait = false`, wait for its end: the step fails unless it SUCCEEDED. Idempotent by construction: the execution's name is derived from the run, the step and the attempt, and an attempt first looks for the executions of the step's earlier attempts, so a start re-sent after a crash finds the first execution (running or succeeded) instead of starting another.",
    params: &[
        REGION,
        P::required("state_machine_arn", T::String, "the state machine's ARN"),
        P::optional("input", T::Table, "the execution's input"),
        P::defaulted(
            "wait",
            T::Bool,
            "true",
            "wait until the execution ends (and fail unless it SUCCEEDED)",
        ),
    ],
    outputs: &["execution_arn", "status", "output"],
    idempotent: true,
    effect: Effect::Irreversible,
};

impl Action for StartExecution {
    fn spec(&self) -> &'static ActionSpec {
        &START_EXECUTION
    }

    fn describe(&self, args: &Args) -> String {
        let input = args
            .get("input")
            .map_or_else(|| "{}".to_string(), |i| i.to_json().to_string());
        let wait = if args.bool("wait") == Some(false) {
            "without waiting for its end"
        } else {
            "and wait until it succeeds"
        };
        format!(
            "start an execution of state machine {} in {} with input {input}, {wait}",
            args.show("state_machine_arn"),
            args.region(),
        )
    }

    hooks! {
        execute = exec::start_execution,
        current = exec::current_state_machine,
    }
}
