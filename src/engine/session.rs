//! Creating a run and loading one back: the glue between the store's records and a
//! [`Machine`] (replaying the journal).

use std::sync::Arc;

use super::clock::Clock;
use super::digest::digest;
use super::event::Event;
use super::machine::Machine;
use super::recorder::Recorder;
use crate::dag::{CompiledWorkflow, Override};
use crate::store::{GENESIS, JournalEntry, RunMode, RunRecord, RunStatus, Store, StoreError};
use crate::time::{parse_time, to_millis};

/// What a new run is made of.
pub struct NewRun {
    /// The compiled workflow.
    pub workflow: Arc<CompiledWorkflow>,
    /// The file as given on the command line.
    pub workflow_file: String,
    /// The file's text.
    pub workflow_source: String,
    /// `--param` overrides.
    pub overrides: Vec<Override>,
    /// `run` or `drill`.
    pub mode: RunMode,
    /// Who starts it.
    pub initiator: String,
    /// When the outage began (`--incident-start`).
    pub incident_start: Option<chrono::DateTime<chrono::Utc>>,
    /// The initiator's SSH key (`--key`): signs the run's start. Required when the workflow
    /// names allowed signers, so that who started the run is proven.
    pub key: Option<std::path::PathBuf>,
}

/// Why a run could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The start could not be signed, or its signature is not the initiator's.
    #[error("{0}")]
    Identity(String),
    /// Steps whose action this build of drctl cannot execute (`id` (action)).
    #[error("this version of drctl cannot execute {}", .0.join(", "))]
    NotExecutable(Vec<String>),
    /// A run of the same workflow is unfinished.
    #[error("run {} of {} is unfinished", .0.run_id, .0.workflow)]
    Unfinished(Box<RunRecord>),
}

/// A run id: the second it started and 16 random bits from the operating system.
fn new_run_id(clock: &dyn Clock) -> String {
    let mut random = [0u8; 2];
    // Without randomness the id still differs by time; the caller re-draws a taken one.
    if getrandom::getrandom(&mut random).is_err() {
        random = std::process::id().to_le_bytes()[..2]
            .try_into()
            .unwrap_or_default();
    }
    format!(
        "{}-{:04x}",
        clock.now().format("%Y%m%dT%H%M%SZ"),
        u16::from_le_bytes(random)
    )
}

/// Decides a new run (its `RunStarted` event, signed when the workflow names signers), not yet
/// recorded. Callers go through [`super::Run::start`], which checks first that the run may
/// start, and records it.
pub(super) fn begin_run(
    store: Arc<dyn Store>,
    new: &NewRun,
    clock: &dyn Clock,
) -> Result<Begun, StartError> {
    let now = clock.now();
    // Ids carry the second and 16 random bits: runs started in the same second may draw the
    // same one, and a taken id would overwrite that run. The process owns the store, so
    // nothing can take the id between this check and the commit.
    let mut run_id = new_run_id(clock);
    while store.run(&run_id)?.is_some() {
        run_id = new_run_id(clock);
    }
    let run = RunRecord {
        run_id,
        workflow: new.workflow.name.clone(),
        mode: new.mode,
        status: RunStatus::Running,
        initiator: new.initiator.clone(),
        digest: digest(&new.workflow),
        workflow_file: new.workflow_file.clone(),
        overrides: new.overrides.clone(),
        started_at: to_millis(now),
        finished_at: None,
        journal_len: 0,
        last_hash: GENESIS.to_string(),
        incident_start: new.incident_start.map(to_millis),
        pid: None,
        detached: false,
    };
    let signature = sign_start(new, &run, now)?;
    let mut machine = Machine::new(Arc::clone(&new.workflow), &new.initiator);
    machine.run_id.clone_from(&run.run_id);
    let mut recorder = Recorder::for_new_run(store, run.clone(), new.workflow_source.clone());
    if new.workflow.signers.is_some() {
        // The initiator's key drives the run here, and signs its journal where it rests.
        recorder.sign_with(driver_key(new)?);
    }
    let started = Event::RunStarted {
        workflow: run.workflow.clone(),
        mode: run.mode.to_string(),
        initiator: run.initiator.clone(),
        digest: run.digest.clone(),
        incident_start: new.incident_start,
        allowed_signers: new.workflow.signers.clone(),
        signature,
    };
    machine.apply(&started, now);
    Ok(Begun {
        machine,
        recorder,
        started,
        at: now,
    })
}

/// A new run decided but not yet recorded: its start is `started`, at `at`, already applied
/// to `machine`; nothing is acted on before `recorder` has committed it.
pub(super) struct Begun {
    pub machine: Machine,
    pub recorder: Recorder,
    pub started: Event,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The initiator's key as the run's driver key (SPEC §5.10): the allowed signers must let it
/// sign the journal (`drctl-journal`) as the initiator.
fn driver_key(new: &NewRun) -> Result<Option<super::recorder::DriverKey>, StartError> {
    if new.key.is_none() {
        return Ok(None);
    }
    driver_key_for(
        new.workflow.signers.as_deref(),
        &new.initiator,
        new.key.as_deref(),
    )
    .map_err(StartError::Identity)
}

/// The key a process drives a run with, as `name` (SPEC §5.10): `None` when the run has no
/// allowed signers (nothing to sign for); refused when it has some and no key is given, or
/// when they do not let the key sign the journal as `name`.
pub fn driver_key_for(
    signers: Option<&str>,
    name: &str,
    key: Option<&std::path::Path>,
) -> Result<Option<super::recorder::DriverKey>, String> {
    let Some(text) = signers else {
        return Ok(None);
    };
    let Some(key) = key else {
        return Err(format!(
            "this run has allowed signers, so the process that drives it signs its journal (SPEC 5.10): give the key to drive it with, `--as NAME --key PATH` (`drctl serve --name NAME --key PATH` for an agent); `{name}` has none here"
        ));
    };
    let signers = crate::identity::AllowedSigners::parse(text)
        .map_err(|_| "the allowed signers captured by the run do not parse".to_string())?;
    let key = crate::identity::SigningKey::open(key).map_err(|e| e.to_string())?;
    journal_signer(&signers, name, &key)?;
    Ok(Some(super::recorder::DriverKey {
        name: name.to_string(),
        key: Arc::new(key),
    }))
}

/// Whether `signers` let `key` sign a run's journal as `name` (namespace `drctl-journal`):
/// refused with what to add otherwise.
pub fn journal_signer(
    signers: &crate::identity::AllowedSigners,
    name: &str,
    key: &crate::identity::SigningKey,
) -> Result<(), String> {
    let fingerprint = key.fingerprint();
    let allowed = signers.entries_for(name).any(|e| {
        !e.cert_authority
            && e.key.fingerprint(ssh_key::HashAlg::Sha256).to_string() == fingerprint
            && e.allows_namespace(crate::identity::JOURNAL_NAMESPACE)
    });
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "the key {fingerprint} may not sign this run's journal as `{name}`: the process that drives a run signs its journal (SPEC 5.10), so the allowed signers need a line `{name} namespaces=\"drctl-journal\" <key>` (a line without `namespaces=` allows every namespace)"
        ))
    }
}

/// With allowed signers, the initiator signs the run's start with `--key`: the statement is
/// verified here against the same signers, so the self-approval rule compares proven names.
fn sign_start(
    new: &NewRun,
    run: &RunRecord,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<serde_json::Value>, StartError> {
    use crate::identity::{AllowedSigners, Statement, StatementKind, sign, verify};
    let Some(text) = &new.workflow.signers else {
        return Ok(None);
    };
    let Some(key) = &new.key else {
        return Err(StartError::Identity(format!(
            "{} names allowed signers: its runs are started with a signature, `--as NAME --key PATH`",
            new.workflow_file
        )));
    };
    let signers = AllowedSigners::parse(text)
        .map_err(|_| StartError::Identity("the allowed-signers file does not parse".into()))?;
    let statement = Statement {
        kind: StatementKind::StartRun,
        run_id: run.run_id.clone(),
        step: None,
        round: None,
        name: new.initiator.clone(),
        comment: None,
        digest: run.digest.clone(),
        at: crate::time::rfc3339(now),
        head: None,
    };
    let signed = sign(statement, key).map_err(|e| StartError::Identity(e.to_string()))?;
    verify(&signed, &signers).map_err(|e| {
        StartError::Identity(format!(
            "the run's start is not signed by {}: {e}",
            new.initiator
        ))
    })?;
    serde_json::to_value(&signed)
        .map(Some)
        .map_err(|e| StartError::Identity(e.to_string()))
}

/// A journaled event, decoded, with its entry's time as stored.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Its place in the journal, from 0.
    pub seq: u64,
    /// When it was journaled, as stored (RFC 3339).
    pub at: String,
    /// When it was journaled.
    pub time: chrono::DateTime<chrono::Utc>,
    /// The event.
    pub event: Event,
}

/// Decodes a run's journal into typed events; an entry that does not decode is an error,
/// never skipped.
pub fn events(run_id: &str, journal: &[JournalEntry]) -> Result<Vec<Recorded>, StoreError> {
    journal
        .iter()
        .map(|entry| {
            let event: Event =
                serde_json::from_value(entry.event.clone()).map_err(|e| StoreError::BadRecord {
                    run: run_id.to_string(),
                    reason: format!("journal entry {}: {e}", entry.seq),
                })?;
            let time = parse_time(&entry.at).ok_or_else(|| StoreError::BadRecord {
                run: run_id.to_string(),
                reason: format!("journal entry {} has a bad time `{}`", entry.seq, entry.at),
            })?;
            Ok(Recorded {
                seq: entry.seq,
                at: entry.at.clone(),
                time,
                event,
            })
        })
        .collect()
}

/// Replays a journal into a fresh machine.
pub fn replay(
    workflow: Arc<CompiledWorkflow>,
    run: &RunRecord,
    journal: &[JournalEntry],
) -> Result<Machine, StoreError> {
    let mut machine = Machine::new(workflow, &run.initiator);
    machine.run_id.clone_from(&run.run_id);
    for recorded in events(&run.run_id, journal)? {
        machine.apply(&recorded.event, recorded.time);
    }
    Ok(machine)
}
