//! Starting a run, wherever it is to be driven: by the agent that owns the state directory
//! (handed over through its socket), by the agents announced on a shared store (started here,
//! then let go of for them), or by the process that started it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::CliError;
use super::session::{Session, hand_over};
use super::starting::start_refusal;
use crate::control::{Connection, Request, StartRequest, Taken};
use crate::dag::CompiledWorkflow;
use crate::engine::{NewRun, Run};
use crate::store::{SharedStore, Store};

/// A run to start: the workflow the command checked, and who starts it, how.
pub struct StartSpec {
    /// The workflow file, as given.
    pub file: PathBuf,
    /// The workflow, compiled and checked.
    pub workflow: Arc<CompiledWorkflow>,
    /// The file's text.
    pub source: String,
    /// `--param` overrides.
    pub overrides: Vec<crate::dag::Override>,
    /// `run` or `drill`.
    pub mode: crate::store::RunMode,
    /// Who starts it.
    pub initiator: String,
    /// When the outage began (`--incident-start`).
    pub incident_start: Option<chrono::DateTime<chrono::Utc>>,
    /// The initiator's key (`--key`).
    pub key: Option<PathBuf>,
}

/// Where a started run is driven.
pub enum Started {
    /// The agent owning the state directory started it and drives it; `agent` is the
    /// connection to follow it through.
    ByAgent {
        /// What the agent took.
        taken: Taken,
        /// The connection to the agent.
        agent: Connection,
    },
    /// Started here on a shared store, and let go of for the agents announced there.
    Handed {
        /// The run.
        run_id: String,
        /// The agents' names.
        agents: Vec<String>,
        /// The shared store.
        store: Arc<dyn Store>,
    },
    /// Started here: this process drives it.
    Here {
        /// The run, recorded.
        run: Box<Run>,
        /// The store, owned by this process.
        store: Arc<dyn Store>,
    },
}

impl StartSpec {
    /// What is handed to an agent, which runs elsewhere: paths are given whole.
    fn request(&self) -> Result<StartRequest, CliError> {
        let absolute = |p: &Path| {
            std::path::absolute(p)
                .map(|p| p.display().to_string())
                .map_err(|e| CliError::invalid(format!("cannot resolve {}: {e}", p.display())))
        };
        Ok(StartRequest {
            file: absolute(&self.file)?,
            source: self.source.clone(),
            overrides: self.overrides.clone(),
            mode: self.mode,
            initiator: self.initiator.clone(),
            incident_start: self.incident_start,
            key: self.key.as_deref().map(absolute).transpose()?,
        })
    }
}

impl Session {
    /// Starts the run `spec` describes, and says where it is driven.
    pub fn start(&self, spec: &StartSpec) -> Result<Started, CliError> {
        if let Some(mut agent) = self.agent()? {
            let request = Request::Start(Box::new(spec.request()?));
            let taken = hand_over(&mut agent, &request)?;
            return Ok(Started::ByAgent { taken, agent });
        }
        let store = self.own()?;
        let new = NewRun {
            workflow: Arc::clone(&spec.workflow),
            workflow_file: spec.file.display().to_string(),
            workflow_source: spec.source.clone(),
            overrides: spec.overrides.clone(),
            mode: spec.mode,
            initiator: spec.initiator.clone(),
            incident_start: spec.incident_start,
            key: spec.key.clone(),
        };
        let run = Run::start(store.clone(), &new, self.services().clock.as_ref())
            .map_err(|e| start_refusal(e, &[]))?;
        // On a shared store with agents standing by, one of them drives the run: started
        // (and its workflow's one unfinished run decided) here, then let go of for them.
        let agents = match store.shared() {
            Some(shared) => shared.agents()?,
            None => Vec::new(),
        };
        let Some(shared) = store.shared().filter(|_| !agents.is_empty()) else {
            return Ok(Started::Here {
                run: Box::new(run),
                store,
            });
        };
        let run_id = run.id().to_string();
        drop(run);
        shared.release(&run_id)?;
        Ok(Started::Handed {
            run_id,
            agents: agents.into_iter().map(|a| a.name).collect(),
            store,
        })
    }

    /// Waits for one of the agents to take up run `run_id`, handed to them on `store`: true
    /// once one has; false when none did within the lease and 2 s (they were announced but
    /// are gone) and this process took the run back, to drive it itself.
    pub fn await_agent(&self, store: &dyn SharedStore, run_id: &str) -> Result<bool, CliError> {
        let lease = self.shared().map_or(Duration::from_secs(5), |s| s.lease);
        let deadline = Instant::now() + lease + AGENT_GRACE;
        while store.owner(run_id)?.is_none() {
            if Instant::now() >= deadline {
                // Taking it back fails only when an agent claimed it meanwhile.
                return Ok(store.claim(run_id).is_err());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(true)
    }
}

/// How long past the lease a run handed to agents waits for one to take it.
pub const AGENT_GRACE: Duration = Duration::from_secs(2);
