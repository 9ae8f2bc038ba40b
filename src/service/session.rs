//! A command's way to the runs of a store: the one place that decides where a read or a
//! decision goes. Through the live process's control socket when one serves the store; on a
//! shared store (etcd), to a run's driver through the run's inbox; when nobody drives the
//! run, the store itself, opened here. Every path gives the same typed answer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::CliError;
use super::exit;
use super::load::apply_offline;
use crate::control::{
    Active, Connection, Envelope, JournalPage, Reply, Request, Response, RunDecision, Taken,
    connect,
};
use crate::engine::Services;
use crate::evidence::Evidence;
use crate::report::{History, Report};
use crate::store::{EtcdAddress, EtcdStore, Owner, SharedStore, SledStore, Store, StoreError};
use crate::view::{RunLine, StatusView};

/// A shared store (`--store etcd://…`): where, the lease runs are driven with, and whose name
/// owner keys carry.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The cluster and prefix.
    pub address: EtcdAddress,
    /// `--lease`.
    pub lease: Duration,
    /// `--name`.
    pub name: String,
}

/// Where the runs are: a state directory (its sled store and control socket), and the shared
/// store used instead of the directory's, when there is one; and the services runs are
/// compiled, decided and driven with. Chosen once, from the command line.
#[derive(Clone)]
pub struct Session {
    dir: PathBuf,
    shared: Option<Shared>,
    services: Services,
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The live process driving the run answered (and, for a decision, applied it).
    Live,
    /// No process drives the run: this one opened the store and answered from it.
    Local,
}

/// A command's way to the runs, for one request.
enum Access {
    /// A live process owns the store: ask it.
    Live(Connection),
    /// Nobody does: this process opened it.
    Local(Arc<dyn Store>),
    /// The store is shared (etcd): read it; tell a run's driver through the run's inbox.
    Shared(Arc<dyn Store>),
}

/// How long a decision left in a run's inbox waits for its driver's answer.
const INBOX_PATIENCE: Duration = Duration::from_secs(30);

/// How long a read, decision or cancel waits for a store another process holds to start
/// answering on its control socket: a `run` takes the store a moment before its socket
/// answers.
const OWNER_PATIENCE: Duration = Duration::from_secs(10);

/// How often the socket is tried again meanwhile.
const OWNER_POLL: Duration = Duration::from_millis(50);

impl Session {
    /// The runs of state directory `dir`, kept in `shared` instead when it is given, handled
    /// with `services`.
    pub fn new(dir: &Path, shared: Option<Shared>, services: Services) -> Self {
        Self {
            dir: dir.to_path_buf(),
            shared,
            services,
        }
    }

    /// The services runs are compiled, decided and driven with.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The shared store used, if any.
    pub fn shared(&self) -> Option<&Shared> {
        self.shared.as_ref()
    }

    /// The status view of run `run` (as `drctl status --format json` prints it).
    pub fn status(&self, run: &str) -> Result<StatusView, CliError> {
        let request = Request::Status {
            run: run.to_string(),
        };
        self.read(&request, |reply| match reply {
            Reply::Status(v) => Ok(*v),
            other => Err(other),
        })
        .or_local(|store| Ok(crate::view::status_view(store, run, &[])?))
    }

    /// Every run (as `drctl runs --format json` prints it).
    pub fn runs(&self) -> Result<Vec<RunLine>, CliError> {
        self.read(&Request::Runs, |reply| match reply {
            Reply::Runs(v) => Ok(v),
            other => Err(other),
        })
        .or_local(|store| Ok(crate::view::run_lines(store, &[])?))
    }

    /// The report of run `run`.
    pub fn report(&self, run: &str) -> Result<Report, CliError> {
        let request = Request::Report {
            run: run.to_string(),
        };
        self.read(&request, |reply| match reply {
            Reply::Report(r) => Ok(*r),
            other => Err(other),
        })
        .or_local(|store| Ok(crate::report::build(store, run)?))
    }

    /// The evidence of run `run`.
    pub fn evidence(&self, run: &str) -> Result<Evidence, CliError> {
        let request = Request::Evidence {
            run: run.to_string(),
        };
        self.read(&request, |reply| match reply {
            Reply::Evidence(e) => Ok(*e),
            other => Err(other),
        })
        .or_local(|store| {
            crate::evidence::collect(store, run)?.ok_or_else(|| {
                CliError::invalid(format!(
                    "no run `{run}` in this state directory (`drctl runs` lists them)"
                ))
            })
        })
    }

    /// Median step durations of `workflow`'s past succeeded runs, and their number.
    pub fn medians(&self, workflow: &str) -> Result<(HashMap<String, f64>, usize), CliError> {
        let request = Request::Medians {
            workflow: workflow.to_string(),
        };
        self.read(&request, |reply| match reply {
            Reply::Medians(medians, runs) => Ok((medians, runs)),
            other => Err(other),
        })
        .or_local(|store| Ok(crate::report::step_medians(store, workflow)?))
    }

    /// The history of `workflow`.
    pub fn history(&self, workflow: &str) -> Result<History, CliError> {
        let request = Request::History {
            workflow: workflow.to_string(),
        };
        self.read(&request, |reply| match reply {
            Reply::History(h) => Ok(*h),
            other => Err(other),
        })
        .or_local(|store| Ok(crate::report::history(store, workflow)?))
    }

    /// Run `run`'s journal from entry `from` on, and whether a live process drives it.
    pub fn journal_from(&self, run: &str, from: u64) -> Result<JournalPage, CliError> {
        let request = Request::Journal {
            run: run.to_string(),
            from,
        };
        self.read(&request, |reply| match reply {
            Reply::Journal(page) => Ok(page),
            other => Err(other),
        })
        .or_local(|store| {
            Ok(JournalPage {
                entries: store.journal_from(run, from)?,
                driving: false,
            })
        })
    }

    /// Takes `decision` to its run: to the live process driving it (through the socket, or
    /// the run's inbox on a shared store), else recorded in the store for the next `resume`.
    /// Says which.
    pub fn decide(&self, decision: &RunDecision) -> Result<Source, CliError> {
        let request = Request::Decide(decision.clone());
        match self.access()? {
            Access::Live(mut connection) => {
                expect(ask(&mut connection, &request)?, |reply| match reply {
                    Reply::Decided => Ok(()),
                    other => Err(other),
                })?;
                Ok(Source::Live)
            }
            Access::Shared(store) => {
                // A decision on a run some process drives goes to that process; on a run
                // nobody drives, it is recorded here.
                let shared = store.shared().ok_or_else(|| {
                    CliError::internal("the store given with --store is not a shared store")
                })?;
                if shared.owner(decision.run())?.is_some() {
                    let response = through_inbox(shared, decision.run(), &request)?;
                    expect(response, |reply| match reply {
                        Reply::Decided => Ok(()),
                        other => Err(other),
                    })?;
                    return Ok(Source::Live);
                }
                apply_offline(&self.services, store, decision)?;
                Ok(Source::Local)
            }
            Access::Local(store) => {
                apply_offline(&self.services, store, decision)?;
                Ok(Source::Local)
            }
        }
    }

    /// Asks the live process `request` and expects the reply `pick` takes; when no process
    /// drives the store, the caller answers from the store ([`Read::or_local`]).
    fn read<T>(&self, request: &Request, pick: fn(Reply) -> Result<T, Reply>) -> Read<'_, T> {
        Read {
            session: self,
            request: request.clone(),
            pick,
        }
    }

    /// The live process serving the state directory, if one does. A process that is busy is
    /// waited for (see [`connect`]); one that refuses, or never answers, is this command's
    /// error, with the cause.
    pub fn live(&self) -> Result<Option<Connection>, CliError> {
        connect(&self.dir).map_err(|e| {
            CliError::internal(format!(
                "cannot reach the drctl process serving {}: {e}",
                self.dir.display()
            ))
        })
    }

    /// The `drctl serve` agent that owns the state directory, when one does.
    pub fn agent(&self) -> Result<Option<Connection>, CliError> {
        if self.shared.is_some() {
            return Ok(None);
        }
        Ok(self.live()?.filter(|connection| connection.active().agent))
    }

    /// Opens the store to drive a run, refusing when a live process owns it (exit 6, naming
    /// that process and what it drives).
    pub fn own(&self) -> Result<Arc<dyn Store>, CliError> {
        // On a shared store each run has its own owner (its lease); nothing is held here.
        if let Some(shared) = &self.shared {
            return open_shared(shared);
        }
        if let Some(connection) = self.live()? {
            return Err(CliError::new(
                exit::RUN_ACTIVE,
                held_by(&self.dir, connection.active()),
            ));
        }
        Ok(Arc::new(SledStore::open(&self.dir)?))
    }

    /// Opens the store for reading or a one-off write, or connects to its live owner. A
    /// store that another process holds is waited for (up to [`OWNER_PATIENCE`]) until that
    /// process's control socket answers, so a read never fails because the store is busy.
    fn access(&self) -> Result<Access, CliError> {
        // A shared store is read by anyone at any time; runs on it are told through it.
        if let Some(shared) = &self.shared {
            return Ok(Access::Shared(open_shared(shared)?));
        }
        let deadline = Instant::now() + OWNER_PATIENCE;
        loop {
            if let Some(connection) = self.live()? {
                return Ok(Access::Live(connection));
            }
            // The wait is here, between tries of the socket, not inside the store's own
            // retry.
            match SledStore::open_waiting(&self.dir, Duration::ZERO) {
                Ok(store) => return Ok(Access::Local(Arc::new(store) as Arc<dyn Store>)),
                Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(OWNER_POLL);
                }
                Err(e) => return Err(CliError::from(e)),
            }
        }
    }
}

/// A read on its way: asked of the live process, or answered from the store.
struct Read<'s, T> {
    session: &'s Session,
    request: Request,
    pick: fn(Reply) -> Result<T, Reply>,
}

impl<T> Read<'_, T> {
    /// The live process's answer, or `local`'s from the store when no process drives it.
    fn or_local(
        self,
        local: impl FnOnce(&dyn Store) -> Result<T, CliError>,
    ) -> Result<T, CliError> {
        match self.session.access()? {
            Access::Live(mut connection) => expect(ask(&mut connection, &self.request)?, self.pick),
            Access::Local(store) | Access::Shared(store) => local(store.as_ref()),
        }
    }
}

/// Asks the live process `request`: its response, or why it gave none.
pub fn ask(connection: &mut Connection, request: &Request) -> Result<Response, CliError> {
    connection
        .call(request)
        .map_err(|e| CliError::internal(format!("the live drctl process did not answer: {e}")))
}

/// The reply `pick` takes from a response, through the socket or a run's inbox alike; a
/// refusal is this command's error, with the exit code it stands for.
pub fn expect<T>(response: Response, pick: fn(Reply) -> Result<T, Reply>) -> Result<T, CliError> {
    let reply = response
        .into_result()
        .map_err(|refusal| match refusal.code {
            Some(code) => CliError::new(code, refusal.error),
            None => CliError::invalid(refusal.error),
        })?;
    pick(reply).map_err(|other| {
        CliError::internal(format!(
            "the live drctl process answered something else than was asked: {other:?}"
        ))
    })
}

/// Hands a run to the agent on `connection` (`request` is a start or a take-up): what the
/// agent took, for the command to follow.
pub fn hand_over(connection: &mut Connection, request: &Request) -> Result<Taken, CliError> {
    expect(ask(connection, request)?, |reply| match reply {
        Reply::Taken(taken) => Ok(*taken),
        other => Err(other),
    })
}

/// Leaves `request` in run `run`'s inbox and waits for its driver's answer. A request its
/// driver has not taken within [`INBOX_PATIENCE`] is withdrawn, and then never applied; one
/// it took is waited for as long again, since it is being applied.
pub fn through_inbox(
    shared: &dyn SharedStore,
    run: &str,
    request: &Request,
) -> Result<Response, CliError> {
    let bytes = serde_json::to_vec(&Envelope::new(request.clone()))
        .map_err(|e| CliError::internal(e.to_string()))?;
    let id = shared.post(run, &bytes)?;
    let mut deadline = Instant::now() + INBOX_PATIENCE;
    let mut taken = false;
    loop {
        if let Some(answer) = shared.take_answer(run, &id)? {
            return Ok(crate::control::parse_response(&answer));
        }
        if Instant::now() >= deadline {
            if taken {
                return Err(CliError::internal(format!(
                    "the process driving run {run} took the request but gave no answer within {} s; `drctl status {run}` shows whether it was applied",
                    2 * INBOX_PATIENCE.as_secs()
                )));
            }
            if shared.withdraw(run, &id)? {
                return Err(CliError::internal(format!(
                    "the process driving run {run} did not take the request within {} s; it was withdrawn and will not be applied (drctl status shows the run's votes and who drives it)",
                    INBOX_PATIENCE.as_secs()
                )));
            }
            // Its driver has it: the answer follows.
            taken = true;
            deadline = Instant::now() + INBOX_PATIENCE;
        }
        std::thread::sleep(OWNER_POLL);
    }
}

/// Opens the shared store `shared`, as this process.
pub fn open_shared(shared: &Shared) -> Result<Arc<dyn Store>, CliError> {
    let owner = Owner {
        name: shared.name.clone(),
        host: hostname(),
        pid: std::process::id(),
        since: String::new(),
    };
    let store = EtcdStore::open(shared.address.clone(), shared.lease, owner)?;
    Ok(Arc::new(store))
}

/// This machine's name, for owner records.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Why a store held by the live process `active` is not this command's to drive.
fn held_by(dir: &Path, active: &Active) -> String {
    let runs = match active.runs.as_slice() {
        [] => "no run at the moment".to_string(),
        [one] => format!("run {one}"),
        many => format!("runs {}", many.join(", ")),
    };
    if active.agent {
        format!(
            "drctl serve (pid {}) drives the runs of {} ({runs}): `drctl run`, `resume` and `rollback` hand their runs to it",
            active.pid,
            dir.display()
        )
    } else {
        format!(
            "{runs} is live in {}, driven from a terminal by pid {}: only one process drives runs of a state directory; wait for it, use another --state, or start `drctl serve` there to drive many runs at once",
            dir.display(),
            active.pid
        )
    }
}
