//! ECS actions: scaling a service's tasks, as a standby region is scaled up in a failover.

use super::ecs_exec as exec;
use super::schema::{ParamSpec as P, ParamType as T, REGION};
use super::{Action, ActionSpec, Args, Effect};

pub(super) fn all() -> Vec<Box<dyn Action>> {
    vec![Box::new(ScaleService)]
}

/// A count of tasks, instances or capacity units, as AWS takes it.
pub(super) const COUNT: T = T::Integer {
    min: 0,
    max: 2_147_483_647,
};

struct ScaleService;

static SCALE_SERVICE: ActionSpec = ActionSpec {
    name: "ecs.scale_service",
    summary: "Set the desired task count of an ECS service and wait until that many tasks run and the service is steady. `previous_desired_count` is the count it replaced, which rollback restores.",
    params: &[
        REGION,
        P::required("cluster", T::String, "the cluster's name or ARN"),
        P::required("service", T::String, "the service's name or ARN"),
        P::required("desired_count", COUNT, "the number of tasks to run"),
        P::defaulted(
            "wait",
            T::Bool,
            "true",
            "wait until the running count equals the desired count and the service has one deployment, steady",
        ),
    ],
    outputs: &["previous_desired_count", "running_count"],
    idempotent: true,
    effect: Effect::SelfUndoing,
};

impl Action for ScaleService {
    fn spec(&self) -> &'static ActionSpec {
        &SCALE_SERVICE
    }

    fn describe(&self, args: &Args) -> String {
        let wait = if args.bool("wait") == Some(false) {
            ""
        } else {
            "; wait until they run and the service is steady"
        };
        format!(
            "scale service {} in cluster {} ({}) to {} tasks{wait}; rollback restores the previous count",
            args.show("service"),
            args.show("cluster"),
            args.region(),
            args.show("desired_count"),
        )
    }

    hooks! {
        execute = exec::scale,
        undo = exec::undo_scale,
        probe = exec::probe_scale,
        current = exec::current_service,
    }
}
