//! `CloudWatch` actions: reading an alarm, to confirm an outage before failing over or that the
//! standby is healthy after.

use super::cloudwatch_exec as exec;
use super::schema::{ParamSpec as P, ParamType as T, REGION};
use super::{Action, ActionSpec, Args, Effect};

pub(super) fn all() -> Vec<Box<dyn Action>> {
    vec![Box::new(AlarmState)]
}

struct AlarmState;

static ALARM_STATE: ActionSpec = ActionSpec {
    name: "cloudwatch.alarm_state",
    summary: "Read a CloudWatch alarm (metric or composite); with `expect`, fails unless it is in that state.",
    params: &[
        REGION,
        P::required("alarm", T::String, "the alarm's name"),
        P::optional(
            "expect",
            T::OneOf(&["ALARM", "OK"]),
            "the state required (ALARM confirms an outage, OK a recovery); any state passes when absent",
        ),
    ],
    outputs: &["state", "reason"],
    idempotent: true,
    effect: Effect::ReadOnly,
};

impl Action for AlarmState {
    fn spec(&self) -> &'static ActionSpec {
        &ALARM_STATE
    }

    fn describe(&self, args: &Args) -> String {
        match args.get("expect") {
            Some(state) => format!(
                "check that CloudWatch alarm {} ({}) is in {state}",
                args.show("alarm"),
                args.region()
            ),
            None => format!(
                "read the state of CloudWatch alarm {} ({})",
                args.show("alarm"),
                args.region()
            ),
        }
    }

    hooks! {
        execute = exec::alarm_state,
        current = exec::current_alarm,
    }
}
