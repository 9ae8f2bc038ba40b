//! `DynamoDB` actions: an on-demand backup of a table, and the restores into a new table, to a
//! point in time or from a backup, whose restore point measures RPO. A restore creates a new
//! table and never touches the source: rollback deletes nothing.

use super::dynamodb_exec::{self as exec, backups, restores};
use super::schema::{ParamSpec as P, ParamType as T, REGION};
use super::{Action, ActionSpec, ArgProblem, Args, Effect};

/// The table a restore creates.
const TARGET_TABLE: P = P::required(
    "target_table",
    T::String,
    "the new table's name (it must not exist)",
);

/// Whether a restore waits for its table.
const WAIT: P = P::defaulted(
    "wait",
    T::Bool,
    "true",
    "wait until the new table is ACTIVE",
);

pub(super) fn all() -> Vec<Box<dyn Action>> {
    vec![
        Box::new(CreateBackup),
        Box::new(RestorePointInTime),
        Box::new(RestoreFromBackup),
    ]
}

/// How a restore's plan sentence ends: whether it waits.
fn waits(args: &Args) -> &'static str {
    if args.bool("wait") == Some(false) {
        ", without waiting for it"
    } else {
        ", and wait until it is ACTIVE"
    }
}

struct CreateBackup;

static CREATE_BACKUP: ActionSpec = ActionSpec {
    name: "dynamodb.create_backup",
    summary: "Take an on-demand backup of a table and wait until it is available. Not sent twice: after a crash, the probe looks for a backup of the table by that name.",
    params: &[
        REGION,
        P::required("table", T::String, "the table to back up"),
        P::required("backup_name", T::String, "the backup's name"),
    ],
    outputs: &["backup_arn", "backup_time"],
    idempotent: false,
    effect: Effect::Additive,
};

impl Action for CreateBackup {
    fn spec(&self) -> &'static ActionSpec {
        &CREATE_BACKUP
    }

    fn describe(&self, args: &Args) -> String {
        format!(
            "back up table {} in {} as {}",
            args.show("table"),
            args.region(),
            args.show("backup_name")
        )
    }

    hooks! {
        execute = backups::create_backup,
        probe = backups::probe_backup,
        current = exec::current_table,
    }
}

struct RestorePointInTime;

static RESTORE_PITR: ActionSpec = ActionSpec {
    name: "dynamodb.restore_point_in_time",
    summary: "Restore a table's point-in-time recovery data into a new table, to a moment or to the latest restorable time. `rpo_seconds` is the incident start minus the restore time.",
    params: &[
        REGION,
        P::required(
            "source_table",
            T::String,
            "the table whose point-in-time recovery data is used",
        ),
        TARGET_TABLE,
        P::optional(
            "restore_time",
            T::Timestamp,
            "the moment to restore to (RFC 3339)",
        ),
        P::optional(
            "use_latest_restorable_time",
            T::Bool,
            "restore to the latest restorable time",
        ),
        WAIT,
    ],
    outputs: &["table_arn", "restore_time", "rpo_seconds"],
    idempotent: false,
    effect: Effect::Additive,
};

impl Action for RestorePointInTime {
    fn spec(&self) -> &'static ActionSpec {
        &RESTORE_PITR
    }

    fn check(&self, args: &Args) -> Vec<ArgProblem> {
        super::rds::restore_point_problems(args)
    }

    fn describe(&self, args: &Args) -> String {
        let point = super::rds::restore_point(args);
        format!(
            "restore table {} in {} to {point} into a new table {}{}",
            args.show("source_table"),
            args.region(),
            args.show("target_table"),
            waits(args)
        )
    }

    hooks! {
        execute = restores::restore_pitr,
        probe = restores::probe_restore,
        current = exec::current_source,
    }
}

struct RestoreFromBackup;

static RESTORE_BACKUP: ActionSpec = ActionSpec {
    name: "dynamodb.restore_from_backup",
    summary: "Restore a backup into a new table. `rpo_seconds` is the incident start minus the time the backup was taken.",
    params: &[
        REGION,
        P::required("backup_arn", T::String, "the backup to restore"),
        TARGET_TABLE,
        WAIT,
    ],
    outputs: &["table_arn", "backup_time", "rpo_seconds"],
    idempotent: false,
    effect: Effect::Additive,
};

impl Action for RestoreFromBackup {
    fn spec(&self) -> &'static ActionSpec {
        &RESTORE_BACKUP
    }

    fn describe(&self, args: &Args) -> String {
        format!(
            "restore backup {} in {} into a new table {}{}",
            args.show("backup_arn"),
            args.region(),
            args.show("target_table"),
            waits(args)
        )
    }

    hooks! {
        execute = restores::restore_backup,
        probe = restores::probe_restore,
        current = exec::current_backup,
    }
}
