//! SSM actions: writing a parameter of the application's configuration (Parameter Store), as
//! the new database endpoint is published after a failover, and running an Automation
//! runbook.

use super::schema::{ParamSpec as P, ParamType as T, REGION};
use super::ssm_automation_exec as automation;
use super::ssm_exec as exec;
use super::{Action, ActionSpec, Args, Effect};

pub(super) fn all() -> Vec<Box<dyn Action>> {
    vec![Box::new(PutParameter), Box::new(StartAutomation)]
}

struct PutParameter;

static PUT_PARAMETER: ActionSpec = ActionSpec {
    name: "ssm.put_parameter",
    summary: "Write a String or StringList parameter to SSM Parameter Store as a new `version`. `previous_value` is the value it replaced (null when it created the parameter), which rollback restores (or it deletes the parameter). A SecureString is refused: restoring it would mean keeping its secret value in the run's journal.",
    params: &[
        REGION,
        P::required(
            "name",
            T::String,
            "the parameter's name, e.g. /orders/db/endpoint",
        ),
        P::required("value", T::String, "the value to write"),
        P::defaulted(
            "type",
            T::OneOf(&["String", "StringList"]),
            "String",
            "the parameter's type (StringList: values separated by commas)",
        ),
    ],
    outputs: &["version", "previous_value"],
    idempotent: true,
    effect: Effect::SelfUndoing,
};

impl Action for PutParameter {
    fn spec(&self) -> &'static ActionSpec {
        &PUT_PARAMETER
    }

    fn describe(&self, args: &Args) -> String {
        format!(
            "write {} parameter {} ({}) = {}; rollback restores the previous value",
            args.show_or("type", "String"),
            args.show("name"),
            args.region(),
            args.show("value"),
        )
    }

    hooks! {
        execute = exec::put,
        undo = exec::undo_put,
        probe = exec::probe_put,
        current = exec::current_parameter,
    }
}

struct StartAutomation;

static START_AUTOMATION: ActionSpec = ActionSpec {
    name: "ssm.start_automation",
    summary: "Start an SSM Automation runbook and, with `wait`, wait until it ends (failing unless it succeeded). Idempotent by construction: the start's client token is derived from the run, the step and the attempt that first sent it, and journaled before it is sent, so a start sent again after a crash finds that execution instead of starting another.",
    params: &[
        REGION,
        P::required(
            "document",
            T::String,
            "the Automation document's name or ARN, e.g. AWS-RestartEC2Instance",
        ),
        P::optional(
            "parameters",
            T::StringListTable,
            "the runbook's parameters, each an array of strings",
        ),
        P::defaulted(
            "wait",
            T::Bool,
            "true",
            "wait until the execution ends; it must end in success",
        ),
    ],
    outputs: &["execution_id", "status", "outputs"],
    idempotent: true,
    effect: Effect::Irreversible,
};

impl Action for StartAutomation {
    fn spec(&self) -> &'static ActionSpec {
        &START_AUTOMATION
    }

    fn describe(&self, args: &Args) -> String {
        let wait = if args.bool("wait") == Some(false) {
            ", without waiting for it to end"
        } else {
            " and wait until it succeeds"
        };
        format!(
            "start SSM Automation {} in {}{wait}",
            args.show("document"),
            args.region()
        )
    }

    hooks! {
        execute = automation::start,
        current = automation::current_document,
    }
}
