//! RDS and `CloudWatch` through the SDK, one file per kind of resource: [`instances`]
//! (promotion, availability, replica lag), [`snapshots`] (snapshots and the restores from
//! them or from backups) and [`clusters`] (cluster and global-cluster failovers).
//! Asynchronous operations wait for their end state, polling; the step's timeout bounds the
//! wait.

pub mod clusters;
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
