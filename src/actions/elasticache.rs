//! `ElastiCache` actions: failing a global datastore (Redis or Valkey across regions) over to a
//! secondary region, as the cache tier follows the database in a regional failover.

use super::elasticache_exec as exec;
use super::schema::{ParamSpec as P, ParamType as T, REGION};
use super::{Action, ActionSpec, Args, Effect};

pub(super) fn all() -> Vec<Box<dyn Action>> {
    vec![Box::new(FailoverGlobalDatastore)]
}

struct FailoverGlobalDatastore;

static FAILOVER_GLOBAL_DATASTORE: ActionSpec = ActionSpec {
    name: "elasticache.failover_global_datastore",
    summary: "Make a secondary cluster of an ElastiCache global datastore its primary, and wait until the datastore is available again. `previous_primary_region` is the region that was primary, read (and journaled) before the failover is sent; after a crash the probe reads which region is primary now.",
    params: &[
        REGION,
        P::required(
            "global_datastore",
            T::String,
            "the global datastore's id (its GlobalReplicationGroupId)",
        ),
        P::required("primary_region", T::String, "the region to become primary"),
        P::required(
            "primary_replication_group",
            T::String,
            "the replication group in that region to become primary",
        ),
    ],
    outputs: &["previous_primary_region"],
    idempotent: false,
    effect: Effect::Irreversible,
};

impl Action for FailoverGlobalDatastore {
    fn spec(&self) -> &'static ActionSpec {
        &FAILOVER_GLOBAL_DATASTORE
    }

    fn describe(&self, args: &Args) -> String {
        format!(
            "fail global datastore {} over to {} in {} (the old primary becomes a secondary)",
            args.show("global_datastore"),
            args.show("primary_replication_group"),
            args.show("primary_region")
        )
    }

    hooks! {
        execute = exec::failover,
        probe = exec::probe_failover,
        current = exec::current_primary,
    }
}
