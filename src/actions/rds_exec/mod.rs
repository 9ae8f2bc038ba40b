//! RDS and `CloudWatch` through the SDK, one file per kind of resource: [`instances`]
//! (promotion, availability, replica lag), [`snapshots`] (snapshots and the restores from
//! them or from backups), [`clusters`] (cluster and global-cluster failovers) and
//! [`global_mode`] (which of a switchover and a failover a global cluster gets).
//! Asynchronous operations wait for their end state, polling; the step's timeout bounds the
//! wait.

/// Sends `$request`, an RDS call that changes something, once (no retry by the SDK: drctl
/// decides by the step's idempotence and its probe), its failure classified as about `$what`
/// in the region of the clients `$c`.
macro_rules! send_once {
    ($c:expr, $request:expr, $what:expr) => {
        $request
            .customize()
            .config_override(crate::aws::sent_once_rds())
            .send()
            .await
            .map_err(|e| crate::aws::classify(&e, &$what, &$c.region))
    };
}

pub mod clusters;
pub mod global_mode;
pub mod instances;
pub mod snapshots;

use chrono::{DateTime, Utc};

use super::outcome::{Resolved, text};

fn region_of(args: &Resolved) -> Option<&str> {
    text(args, "region")
}

fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    crate::time::rfc3339(t)
}
