//! The documented exit codes (SPEC §9). Scripts and CI pipelines rely on them.

use std::process::ExitCode;

/// Success.
pub const SUCCESS: u8 = 0;
/// drctl itself failed (a bug, an I/O error unrelated to the input).
pub const INTERNAL: u8 = 1;
/// The input is invalid (a workflow, a flag, a parameter).
pub const INVALID_INPUT: u8 = 2;
/// The run waits for approvals.
pub const AWAITING_APPROVAL: u8 = 3;
/// The run failed.
pub const RUN_FAILED: u8 = 4;
/// The run was rolled back.
pub const ROLLED_BACK: u8 = 5;
/// Another run of this workflow is active.
pub const RUN_ACTIVE: u8 = 6;

/// Turns a code into the process's exit code.
pub fn code(value: u8) -> ExitCode {
    ExitCode::from(value)
}

/// The exit code of a run that rests with `status`.
pub fn of_status(status: crate::store::RunStatus) -> u8 {
    use crate::store::RunStatus;
    match status {
        RunStatus::Succeeded => SUCCESS,
        RunStatus::AwaitingApproval => AWAITING_APPROVAL,
        RunStatus::RolledBack => ROLLED_BACK,
        RunStatus::Failed
        | RunStatus::Paused
        | RunStatus::Cancelled
        | RunStatus::Running
        | RunStatus::RollingBack => RUN_FAILED,
    }
}
