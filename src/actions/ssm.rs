//! SSM Parameter Store actions: writing a parameter of the application's configuration, as
//! the new database endpoint is published after a failover.

use super::schema::{ParamSpec as P, ParamType as T, REGION};
use super::ssm_exec as exec;
use super::{Action, ActionSpec, Args, Effect};

pub(super) fn all() -> Vec<Box<dyn Action>> {
    vec![Box::new(PutParameter)]
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
