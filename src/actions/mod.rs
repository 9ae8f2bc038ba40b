//! The action registry: every action a step can name, with its parameter schema, its nature
//! (idempotent? undoes itself? changes anything?), what it will do, in words, for plan, and
//! how it runs.
//!
//! An action is a unit struct implementing [`Action`]: a static [`ActionSpec`] (name,
//! summary, parameters, outputs, idempotence, effect), the checks and the plan sentence that
//! read its arguments, and its asynchronous hooks: `execute`, and where it has them `undo`
//! (self-undoing actions), `probe` (telling whether an attempt lost in a crash took effect)
//! and `current` (the live value plan shows). The declarations are grouped by service in
//! `builtin.rs`, `route53.rs`, `rds.rs`, `ecs.rs`, `autoscaling.rs`, `ssm.rs`, `sns.rs`,
//! `cloudwatch.rs`, `elasticache.rs`, `dynamodb.rs`, `lambda.rs` and `stepfunctions.rs`, and
//! the replication lag of global databases (Aurora, `DynamoDB`) in `replication.rs`; the code
//! that performs them is in the matching `*_exec` module (`rds_exec/` holds one file per kind
//! of RDS resource, `dynamodb_exec/` one for backups and one for restores; SSM Automation's is
//! `ssm_automation_exec.rs`). The engine decides
//! when to run, retry, probe or undo; an action only does one attempt and says, through
//! [`StepError`] and [`Failure`], what a failure tells about its effect. AWS calls go through
//! [`crate::aws`], whose errors become step errors here (`From<aws::CallError>`).
//!
//! How to add an action: in the service's declaration file, write a `struct`, a `static`
//! [`ActionSpec`] and an `impl Action` with `spec`, `describe` (and `check`, `duration_hint`
//! or `own_timeout` when it needs them), ending with `hooks! { execute = ..., undo = ...,
//! probe = ..., current = ... }` naming the functions, in the `*_exec` module, that do the
//! work (each hook optional, in that order). Add the struct to that file's `all()` and its
//! name to the list in this module's tests. Validation and plan pick it up from the registry;
//! the action reference in `docs/workflow-format.md` is generated from it (a test compares
//! them: `DRCTL_UPDATE_DOCS=1 cargo test docs` rewrites it).

/// The asynchronous hooks of an action, written inside its `impl Action`, each handing over
/// to a function of the action's `*_exec` module. Each is optional; they come in this order:
///
/// - `execute = f`: the action can be run (`f(args, ctx) -> Result<Outputs, StepError>`);
/// - `undo = f`: it puts back what it changed (`f(args, outputs, ctx) -> Result<(), StepError>`);
/// - `probe = f`: it can tell whether a lost attempt took effect (`f(args, ctx) -> Probe`);
/// - `current = f`: plan shows the live value it would change (`f(args, aws) -> LiveState`).
macro_rules! hooks {
    () => {};
    (execute = $execute:path $(, $($rest:tt)*)?) => {
        fn executable(&self) -> bool {
            true
        }
        fn execute<'a>(
            &'a self,
            args: &'a $crate::actions::Resolved,
            ctx: &'a $crate::actions::ExecContext,
        ) -> $crate::actions::ActionFuture<
            'a,
            Result<$crate::actions::Outputs, $crate::actions::StepError>,
        > {
            Box::pin($execute(args, ctx))
        }
        hooks!($($($rest)*)?);
    };
    (undo = $undo:path $(, $($rest:tt)*)?) => {
        fn undo<'a>(
            &'a self,
            args: &'a $crate::actions::Resolved,
            outputs: &'a $crate::actions::Outputs,
            ctx: &'a $crate::actions::ExecContext,
        ) -> $crate::actions::ActionFuture<'a, Result<(), $crate::actions::StepError>> {
            Box::pin($undo(args, outputs, ctx))
        }
        hooks!($($($rest)*)?);
    };
    (probe = $probe:path $(, $($rest:tt)*)?) => {
        fn has_probe(&self) -> bool {
            true
        }
        fn probe<'a>(
            &'a self,
            args: &'a $crate::actions::Resolved,
            ctx: &'a $crate::actions::ExecContext,
        ) -> $crate::actions::ActionFuture<'a, $crate::actions::Probe> {
            Box::pin($probe(args, ctx))
        }
        hooks!($($($rest)*)?);
    };
    (current = $current:path $(,)?) => {
        fn current<'a>(
            &'a self,
            args: &'a $crate::actions::Resolved,
            aws: &'a $crate::aws::AwsContext,
        ) -> $crate::actions::ActionFuture<'a, $crate::actions::LiveState> {
            Box::pin($current(args, aws))
        }
    };
}

mod approval;
mod args;
mod autoscaling;
mod autoscaling_exec;
mod builtin;
mod builtin_exec;
mod cloudwatch;
mod cloudwatch_exec;
mod dynamodb;
mod dynamodb_exec;
mod ecs;
mod ecs_exec;
mod elasticache;
mod elasticache_exec;
mod lambda;
mod lambda_exec;
mod outcome;
pub mod processes;
mod rds;
mod rds_exec;
pub mod reference;
mod replication;
mod replication_exec;
mod route53;
mod route53_exec;
mod route53_record;
mod schema;
mod sns;
mod sns_exec;
mod ssm;
mod ssm_automation_exec;
mod ssm_exec;
mod stepfunctions;
mod stepfunctions_exec;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use approval::{ApprovalPolicy, Barred, OnTimeout, Voter};
pub use args::{Arg, Args};
pub use builtin::APPROVAL;
pub use outcome::{
    ExecContext, Failure, Outputs, PreviousRequest, Probe, Remember, Resolved, StepError, duration,
    text,
};
pub use schema::{ParamSpec, ParamType};

/// A boxed future, for the asynchronous hooks of [`Action`] (execution, undo, probes, live
/// lookups) while keeping the trait object-safe.
pub type ActionFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What running an action does to the world, for safety lints and rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Only reads or waits (health checks, lag checks, approvals).
    ReadOnly,
    /// Creates something new without touching what exists (a snapshot, a restored copy).
    Additive,
    /// Changes something and records enough to put it back by itself (a DNS UPSERT).
    SelfUndoing,
    /// Tells people something; cannot be taken back but changes no system.
    Notification,
    /// Changes something it cannot undo by itself (a replica promotion, an arbitrary command).
    Irreversible,
}

/// The static description of an action.
#[derive(Debug, Clone, Copy)]
pub struct ActionSpec {
    /// The name steps use in `action = "..."`.
    pub name: &'static str,
    /// One line on what it does, for docs and `--help`.
    pub summary: &'static str,
    /// The `with` keys it takes.
    pub params: &'static [ParamSpec],
    /// The outputs later steps may reference.
    pub outputs: &'static [&'static str],
    /// Safe to run again with the same parameters (after a crash, say).
    pub idempotent: bool,
    /// What it does to the world.
    pub effect: Effect,
}

/// A problem spanning several parameters, found by an action's own check. `param` names the
/// key to point at, or `None` for the `with` table as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgProblem {
    /// The key at fault, if one is.
    pub param: Option<&'static str>,
    /// What is wrong.
    pub message: String,
}

/// The live state of what a step would change, read for `drctl plan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveState {
    /// The action has nothing to look up.
    NotApplicable,
    /// The current value, in words, next to the intended one.
    Current(String),
    /// The lookup failed; the plan shows why and goes on.
    Unavailable(String),
}

/// An action a step can perform.
pub trait Action: Send + Sync {
    /// The static description.
    fn spec(&self) -> &'static ActionSpec;

    /// Checks between parameters that one type alone cannot express (a quorum larger than the
    /// list of approvers, two mutually exclusive keys). Run after the schema check passed.
    fn check(&self, _args: &Args) -> Vec<ArgProblem> {
        Vec::new()
    }

    /// What the step will do, in one sentence, for an operator reading the plan.
    fn describe(&self, args: &Args) -> String;

    /// The duration the action itself implies (a `wait`'s or `noop`'s), used by plan when a
    /// step gives no `estimate`.
    fn duration_hint(&self, _args: &Args) -> Option<Duration> {
        None
    }

    /// The timeout the action carries in its own parameters (an approval's `timeout`). When
    /// there is one, the step's and `[defaults]`' timeout and retry do not apply: a decision
    /// by people is waited for once, not retried.
    fn own_timeout(&self, _args: &Args) -> Option<Duration> {
        None
    }

    /// Whether this version of drctl can execute the action (`drctl run` refuses a workflow
    /// using one it cannot, before anything starts).
    fn executable(&self) -> bool {
        false
    }

    /// Performs the action with its resolved parameters. The driver journals the attempt's
    /// start before calling this, and enforces the step's timeout around it.
    fn execute<'a>(
        &'a self,
        _args: &'a Resolved,
        _ctx: &'a ExecContext,
    ) -> ActionFuture<'a, Result<Outputs, StepError>> {
        let name = self.spec().name;
        Box::pin(async move {
            Err(StepError::fatal(format!(
                "`{name}` cannot be executed by this version of drctl"
            )))
        })
    }

    /// Whether [`Action::probe`] can tell if a lost attempt took effect.
    fn has_probe(&self) -> bool {
        false
    }

    /// Read-only: did an attempt whose outcome was lost in a crash take effect?
    fn probe<'a>(&'a self, _args: &'a Resolved, _ctx: &'a ExecContext) -> ActionFuture<'a, Probe> {
        Box::pin(async { Probe::Undecided("this action cannot tell".into()) })
    }

    /// For actions that undo themselves ([`Effect::SelfUndoing`]): puts back what the step
    /// changed, from its parameters and the outputs it recorded.
    fn undo<'a>(
        &'a self,
        _args: &'a Resolved,
        _outputs: &'a Outputs,
        _ctx: &'a ExecContext,
    ) -> ActionFuture<'a, Result<(), StepError>> {
        let name = self.spec().name;
        Box::pin(async move { Err(StepError::fatal(format!("`{name}` cannot undo itself"))) })
    }

    /// Reads the current live value the step would change, without changing anything, for
    /// plan's diff. Actions with nothing to look up keep the default.
    fn current<'a>(
        &'a self,
        _args: &'a Resolved,
        _aws: &'a crate::aws::AwsContext,
    ) -> ActionFuture<'a, LiveState> {
        Box::pin(async { LiveState::NotApplicable })
    }
}

/// Every known action, by name. Built once by the command line and handed to what
/// compiles, plans and drives runs; a test builds its own.
pub struct Registry {
    actions: BTreeMap<&'static str, Arc<dyn Action>>,
}

impl Registry {
    /// The registry of every built-in action of SPEC §6.
    pub fn builtin() -> Self {
        let mut actions: BTreeMap<&'static str, Arc<dyn Action>> = BTreeMap::new();
        for action in builtin::all()
            .into_iter()
            .chain(route53::all())
            .chain(rds::all())
            .chain(ecs::all())
            .chain(autoscaling::all())
            .chain(ssm::all())
            .chain(sns::all())
            .chain(cloudwatch::all())
            .chain(elasticache::all())
            .chain(replication::all())
            .chain(dynamodb::all())
            .chain(lambda::all())
            .chain(stepfunctions::all())
        {
            actions.insert(action.spec().name, Arc::from(action));
        }
        Self { actions }
    }

    /// This registry without the action called `name` (a build that lacks it, for tests).
    #[must_use]
    pub fn without(mut self, name: &str) -> Self {
        self.actions.remove(name);
        self
    }

    /// The action called `name`.
    pub fn get(&self, name: &str) -> Option<&dyn Action> {
        self.actions.get(name).map(AsRef::as_ref)
    }

    /// The action called `name`, for a task that outlives this borrow of the registry.
    pub fn shared(&self, name: &str) -> Option<Arc<dyn Action>> {
        self.actions.get(name).cloned()
    }

    /// Every action name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.actions.keys().copied()
    }

    /// Every action, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &dyn Action> {
        self.actions.values().map(AsRef::as_ref)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.actions.keys()).finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_action_is_known() {
        let registry = Registry::builtin();
        let spec_names = [
            "shell",
            "http.check",
            "wait",
            "approval",
            "notify",
            "noop",
            "route53.upsert_record",
            "route53.delete_record",
            "route53.wait_insync",
            "route53.set_weight",
            "route53.health_check_status",
            "rds.promote_read_replica",
            "rds.failover_db_cluster",
            "rds.failover_global_cluster",
            "rds.switchover_global_cluster",
            "rds.create_snapshot",
            "rds.restore_from_snapshot",
            "rds.restore_point_in_time",
            "rds.wait_available",
            "rds.replica_lag",
            "ecs.scale_service",
            "autoscaling.set_capacity",
            "ssm.put_parameter",
            "sns.publish",
            "cloudwatch.alarm_state",
            "ssm.start_automation",
            "elasticache.failover_global_datastore",
            "rds.global_replication_lag",
            "dynamodb.replication_latency",
            "dynamodb.create_backup",
            "dynamodb.restore_point_in_time",
            "dynamodb.restore_from_backup",
            "lambda.invoke",
            "lambda.set_alias",
            "stepfunctions.start_execution",
        ];
        for name in spec_names {
            assert!(registry.get(name).is_some(), "{name} is missing");
        }
        assert_eq!(registry.names().count(), spec_names.len());
    }

    #[test]
    fn parameter_names_are_unique_per_action() {
        for action in Registry::builtin().iter() {
            let mut names: Vec<_> = action.spec().params.iter().map(|p| p.name).collect();
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len(), "{}", action.spec().name);
        }
    }
}
