//! Lambda actions: invoking a function (a cache warm-up, a data fix, a check), and pointing
//! an alias at a version, as a bad deployment is rolled back to the last good one.

use super::lambda_exec as exec;
use super::schema::{ParamSpec as P, ParamType as T, REGION};
use super::{Action, ActionSpec, Args, Effect};

/// The function an action acts on.
const FUNCTION: P = P::required("function", T::String, "the function's name or ARN");

pub(super) fn all() -> Vec<Box<dyn Action>> {
    vec![Box::new(Invoke), Box::new(SetAlias)]
}

struct Invoke;

static INVOKE: ActionSpec = ActionSpec {
    name: "lambda.invoke",
    summary: "Invoke a function and wait for its answer. An error the function returns (`FunctionError`) fails the step with the function's own error text. Not idempotent unless the step says `idempotent = true`: an invocation whose answer is lost is not sent again, and the run pauses for the operator.",
    params: &[
        REGION,
        FUNCTION,
        P::optional(
            "qualifier",
            T::String,
            "the version or alias to invoke; the function's $LATEST when absent",
        ),
        P::optional("payload", T::Table, "the event the function receives"),
    ],
    outputs: &["status_code", "payload", "function_error"],
    idempotent: false,
    effect: Effect::Irreversible,
};

impl Action for Invoke {
    fn spec(&self) -> &'static ActionSpec {
        &INVOKE
    }

    fn describe(&self, args: &Args) -> String {
        let qualifier = args
            .get("qualifier")
            .map(|q| format!(" ({q})"))
            .unwrap_or_default();
        let payload = args
            .get("payload")
            .map_or_else(|| "an empty event".to_string(), |p| p.to_json().to_string());
        format!(
            "invoke function {}{qualifier} in {} with {payload}",
            args.show("function"),
            args.region(),
        )
    }

    hooks! {
        execute = exec::invoke,
        current = exec::current_function,
    }
}

struct SetAlias;

static SET_ALIAS: ActionSpec = ActionSpec {
    name: "lambda.set_alias",
    summary: "Point a function's alias at a version (all of its traffic: weighted routing is removed). `previous_version` is the version it pointed to, which rollback restores, with its routing, while the alias still points where drctl put it.",
    params: &[
        REGION,
        FUNCTION,
        P::required("alias", T::String, "the alias, e.g. live"),
        P::required("version", T::String, "the published version to point it at"),
    ],
    outputs: &["previous_version"],
    idempotent: true,
    effect: Effect::SelfUndoing,
};

impl Action for SetAlias {
    fn spec(&self) -> &'static ActionSpec {
        &SET_ALIAS
    }

    fn describe(&self, args: &Args) -> String {
        format!(
            "point alias {} of function {} in {} at version {}; rollback restores the previous version",
            args.show("alias"),
            args.show("function"),
            args.region(),
            args.show("version"),
        )
    }

    hooks! {
        execute = exec::set_alias,
        undo = exec::undo_alias,
        probe = exec::probe_alias,
        current = exec::current_alias,
    }
}
