//! What a driven run is given besides its machine: the context its actions run in, and the
//! observers of its events.

use std::path::{Path, PathBuf};

use super::error::CliError;
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

/// What the actions of run `run` are given: where relative paths start, the AWS clients of
/// `services`, and when the outage began (RPO of restores is measured from it when the
/// operator gave it, else from the run's start). A record whose time cannot be read is an error: a
/// restore's RPO is never measured from a made-up moment.
pub fn exec_context(
    run: &crate::store::RunRecord,
    base_dir: PathBuf,
    services: &crate::engine::Services,
) -> Result<ExecContext, CliError> {
    let since = run.incident_start.as_deref().unwrap_or(&run.started_at);
    let incident_start = crate::time::parse_time(since).ok_or_else(|| {
        CliError::invalid(format!(
            "run {}'s record gives `{since}` as when the incident began, which is not an RFC 3339 time: its RPO cannot be measured",
            run.run_id
        ))
    })?;
    Ok(ExecContext {
        base_dir,
        timeout: None,
        aws: services.aws.clone(),
        incident_start,
        previous: None,
        remember: None,
        processes: crate::actions::processes::StepProcesses {
            // This binary guards the shell steps it starts (`drctl step-guard`).
            guard: std::env::current_exe().ok(),
            attempt: None,
        },
    })
}

/// The directory relative paths of a workflow file are taken from.
pub fn base_dir(file: &Path) -> PathBuf {
    file.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RunRecord, RunStatus};

    fn record(started_at: &str, incident_start: Option<&str>) -> RunRecord {
        RunRecord {
            run_id: "r1".into(),
            workflow: "wf".into(),
            mode: "drill".into(),
            status: RunStatus::Running,
            initiator: "alice".into(),
            digest: String::new(),
            workflow_file: "wf.toml".into(),
            overrides: Vec::new(),
            started_at: started_at.into(),
            finished_at: None,
            journal_len: 0,
            last_hash: String::new(),
            incident_start: incident_start.map(str::to_string),
            pid: None,
            detached: false,
        }
    }

    #[test]
    fn the_incident_begins_when_the_record_says_and_a_bad_time_is_an_error() {
        let services = crate::engine::Services::new(crate::aws::AwsContext::new(None));
        let given = exec_context(
            &record("2026-12-07T03:00:00Z", Some("2026-12-07T02:41:00Z")),
            PathBuf::from("."),
            &services,
        )
        .unwrap();
        assert_eq!(rfc(given.incident_start), "2026-12-07T02:41:00.000Z");
        let started = exec_context(
            &record("2026-12-07T03:00:00Z", None),
            PathBuf::new(),
            &services,
        )
        .unwrap();
        assert_eq!(rfc(started.incident_start), "2026-12-07T03:00:00.000Z");
        let bad = exec_context(
            &record("2026-12-07T03:00:00Z", Some("yesterday")),
            PathBuf::new(),
            &services,
        );
        let why = bad.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            why.contains("run r1") && why.contains("`yesterday`"),
            "{why}"
        );
    }

    fn rfc(t: chrono::DateTime<chrono::Utc>) -> String {
        crate::time::rfc3339(t)
    }
}
