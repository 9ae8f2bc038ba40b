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

/// What the actions of run `run` are given: where relative paths start, the AWS clients of
/// `services`, and when the outage began (RPO of restores is measured from it when the
/// operator gave it, else from the run's start). The record's times are typed: a record whose
/// time does not read never loads, so a restore's RPO is never measured from a made-up moment.
pub fn exec_context(
    run: &crate::store::RunRecord,
    base_dir: PathBuf,
    services: &crate::engine::Services,
) -> ExecContext {
    let incident_start = run.incident_start.unwrap_or(run.started_at);
    ExecContext {
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
    }
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
    use crate::store::RunRecord;

    fn record(started_at: &str, incident_start: Option<&str>) -> Result<RunRecord, String> {
        serde_json::from_value(serde_json::json!({
            "run_id": "r1", "workflow": "wf", "mode": "drill", "status": "running",
            "initiator": "alice", "digest": "", "workflow_file": "wf.toml", "overrides": [],
            "started_at": started_at, "finished_at": null, "journal_len": 0, "last_hash": "",
            "incident_start": incident_start,
        }))
        .map_err(|e| e.to_string())
    }

    #[test]
    fn the_incident_begins_when_the_record_says_and_a_bad_time_never_loads() {
        let services = crate::engine::Services::new(crate::aws::AwsContext::new(None));
        let given = record("2026-12-07T03:00:00Z", Some("2026-12-07T02:41:00Z")).unwrap();
        let given = exec_context(&given, PathBuf::from("."), &services);
        assert_eq!(rfc(given.incident_start), "2026-12-07T02:41:00.000Z");
        let started = record("2026-12-07T03:00:00Z", None).unwrap();
        let started = exec_context(&started, PathBuf::new(), &services);
        assert_eq!(rfc(started.incident_start), "2026-12-07T03:00:00.000Z");
        let why = record("2026-12-07T03:00:00Z", Some("yesterday")).unwrap_err();
        assert!(why.contains("`yesterday` is not an RFC 3339 time"), "{why}");
    }

    fn rfc(t: chrono::DateTime<chrono::Utc>) -> String {
        crate::time::rfc3339(t)
    }
}
