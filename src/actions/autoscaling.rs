//! EC2 Auto Scaling actions: setting a group's capacity, as a standby region's fleet is grown
//! in a failover.

use super::autoscaling_exec as exec;
use super::ecs::COUNT;
use super::schema::{ParamSpec as P, ParamType as T, REGION};
use super::{Action, ActionSpec, ArgProblem, Args, Effect};

pub(super) fn all() -> Vec<Box<dyn Action>> {
    vec![Box::new(SetCapacity)]
}

struct SetCapacity;

static SET_CAPACITY: ActionSpec = ActionSpec {
    name: "autoscaling.set_capacity",
    summary: "Set an Auto Scaling group's desired capacity (and its minimum and maximum) and wait until that many instances are in service. `previous` is the capacity it replaced (`desired`, `min`, `max`), which rollback restores.",
    params: &[
        REGION,
        P::required("group", T::String, "the Auto Scaling group's name"),
        P::required("desired", COUNT, "the desired capacity"),
        P::optional("min", COUNT, "the new minimum size; unchanged when absent"),
        P::optional("max", COUNT, "the new maximum size; unchanged when absent"),
        P::defaulted(
            "wait",
            T::Bool,
            "true",
            "wait until as many instances are InService and healthy as desired",
        ),
    ],
    outputs: &["previous"],
    idempotent: true,
    effect: Effect::SelfUndoing,
};

impl Action for SetCapacity {
    fn spec(&self) -> &'static ActionSpec {
        &SET_CAPACITY
    }

    fn check(&self, args: &Args) -> Vec<ArgProblem> {
        let (desired, min, max) = (
            args.integer("desired"),
            args.integer("min"),
            args.integer("max"),
        );
        let mut problems = Vec::new();
        if let (Some(min), Some(max)) = (min, max)
            && min > max
        {
            problems.push(ArgProblem {
                param: Some("min"),
                message: format!("`min` ({min}) is above `max` ({max})"),
            });
        }
        if let (Some(desired), Some(min)) = (desired, min)
            && desired < min
        {
            problems.push(ArgProblem {
                param: Some("desired"),
                message: format!("`desired` ({desired}) is below `min` ({min})"),
            });
        }
        if let (Some(desired), Some(max)) = (desired, max)
            && desired > max
        {
            problems.push(ArgProblem {
                param: Some("desired"),
                message: format!("`desired` ({desired}) is above `max` ({max})"),
            });
        }
        problems
    }

    fn describe(&self, args: &Args) -> String {
        let mut out = format!(
            "set the desired capacity of Auto Scaling group {} ({}) to {}",
            args.show("group"),
            args.region(),
            args.show("desired"),
        );
        if let Some(min) = args.get("min") {
            out.push_str(&format!(", min {min}"));
        }
        if let Some(max) = args.get("max") {
            out.push_str(&format!(", max {max}"));
        }
        if args.bool("wait") != Some(false) {
            out.push_str("; wait until they are in service");
        }
        out.push_str("; rollback restores the previous capacity");
        out
    }

    hooks! {
        execute = exec::set_capacity,
        undo = exec::undo_capacity,
        probe = exec::probe_capacity,
        current = exec::current_group,
    }
}
