//! What a driven run is given besides its machine: the context its actions run in, and the
//! observers of its events.

use std::path::{Path, PathBuf};

use crate::actions::ExecContext;

/// `observer`, then the run events the workflow sends to people, when it sends any.
pub fn with_events(
    mut observer: crate::engine::Observer,
    announcer: Option<crate::notify::Announcer>,
) -> crate::engine::Observer {
    match announcer {
        None => observer,
        Some(mut announcer) => Box::new(move |event, at, machine| {
            observer(event, at, machine);
            announcer.observe(event, at, machine);
        }),
    }
}

/// What the actions of run `run` are given: where relative paths start, the AWS clients,
/// and when the outage began (RPO of restores is measured from it when the operator gave
/// it, else from the run's start).
pub fn exec_context(run: &crate::store::RunRecord, base_dir: PathBuf) -> ExecContext {
    ExecContext {
        base_dir,
        timeout: None,
        aws: crate::aws::AwsContext::global(),
        incident_start: run
            .incident_start
            .as_deref()
            .or(Some(run.started_at.as_str()))
            .and_then(crate::time::parse_time)
            .unwrap_or_else(chrono::Utc::now),
        previous: None,
        remember: None,
        processes: crate::actions::processes::StepProcesses {
            // This binary guards the shell steps it starts (`drctl step-guard`).
            guard: std::env::current_exe().ok(),
            attempt: None,
        },
    }
}

/// The directory relative paths of a workflow file are taken from.
pub fn base_dir(file: &Path) -> PathBuf {
    file.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
