//! Following a run that an agent drives, from another process: its journal read as it grows
//! (through the agent's control socket, or from the shared store, whose follower reads only
//! what is new: on etcd a watch says what was written), and the follower's decisions sent to
//! the run's driver the same way (its socket, or the run's inbox in the store).

use std::sync::Arc;
use std::time::Duration;

use super::error::CliError;
use super::session::{ask, expect, through_inbox};
use crate::actions::Registry;
use crate::control::{Connection, JournalPage, Reply, Request, Taken};
use crate::dag::CompiledWorkflow;
use crate::store::{JournalFollower, Store};

/// Where a followed run is read from, and where this terminal's decisions go.
pub enum Via {
    /// The control socket of the state directory's `drctl serve`.
    Socket(Connection),
    /// A shared store (etcd), whichever agent drives the run: its journal is read from the
    /// store, decisions are left in the run's inbox.
    Store(Arc<dyn Store>),
}

/// The agent driving a followed run, as its follower reaches it.
pub enum Following<'s> {
    /// The agent's socket: the journal a page at a time, every [`POLL`].
    Socket(Connection),
    /// The shared store: the journal through the store's follower of the run.
    Store(&'s dyn Store, Box<dyn JournalFollower + 's>),
}

impl Following<'_> {
    /// The journal from entry `from` on (what the store's follower has not read yet), and
    /// whether the run is still being driven.
    pub fn page(&mut self, run_id: &str, from: u64) -> Result<JournalPage, CliError> {
        match self {
            Following::Socket(agent) => {
                let request = Request::Journal {
                    run: run_id.to_string(),
                    from,
                };
                expect(ask(agent, &request)?, |reply| match reply {
                    Reply::Journal(page) => Ok(page),
                    other => Err(other),
                })
            }
            Following::Store(_, follower) => {
                let news = follower.read()?;
                Ok(JournalPage {
                    entries: news.entries,
                    driving: news.under_way,
                })
            }
        }
    }

    /// Waits until the journal may have grown.
    pub async fn changed(&mut self) {
        match self {
            Following::Socket(_) => tokio::time::sleep(POLL).await,
            Following::Store(_, follower) => follower.changed().await,
        }
    }

    /// Sends `request` (a vote, a cancel) to the run's driver; its answer.
    pub fn send(
        &mut self,
        run_id: &str,
        request: &Request,
    ) -> Result<Result<(), String>, CliError> {
        let answer = match self {
            Following::Socket(agent) => agent.call(request).map_err(|e| {
                CliError::internal(format!(
                    "drctl serve stopped answering while it drove run {run_id} ({e}); the next agent on this state directory takes the run up, or `drctl resume {run_id}` does"
                ))
            })?,
            // Followed from the store only when it is shared: its inbox reaches the driver.
            Following::Store(store, _) => match store.shared() {
                Some(shared) => through_inbox(shared, run_id, request)?,
                None => {
                    return Err(CliError::internal(format!(
                        "run {run_id} is followed on a store that is not shared: it has no inbox to reach its driver"
                    )));
                }
            },
        };
        Ok(answer
            .into_result()
            .map(|_| ())
            .map_err(|refusal| refusal.error))
    }
}

/// How often the agent's socket is asked for the journal while the run goes on.
const POLL: Duration = Duration::from_millis(100);

/// The workflow the agent drives the run it took on.
pub fn compile_taken(
    taken: &Taken,
    registry: &Registry,
) -> Result<std::sync::Arc<CompiledWorkflow>, CliError> {
    super::load::compile(registry, &taken.file, &taken.text, &taken.overrides, None)
        .map(std::sync::Arc::new)
}
