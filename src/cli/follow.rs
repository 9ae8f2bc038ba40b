//! Following a run that `drctl serve` drives, in the foreground: the same event lines, live
//! view, approval offer, summary and exit code as when the command drives the run itself
//! (SPEC §11). The run's journal is read as it grows (through the agent's control socket, or
//! from the shared store, whose follower reads only what is new: on etcd a watch says what was
//! written) and replayed on a machine of its own, which the printer reads exactly as it reads
//! the driver's. Votes and Ctrl-C's cancel go to the agent the same way (its socket, or the
//! run's inbox in the store).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::error::CliError;
use super::output::{LiveView, RunFormat, exit_code, printer, summary};
use crate::control::{Connection, JournalPage, Request};
use crate::dag::{CompiledWorkflow, Override};
use crate::engine::{ControlRequest, Input, Machine};
use crate::store::{JournalFollower, Store};

/// Where a followed run is read from, and where this terminal's decisions go.
pub enum Via {
    /// The control socket of the state directory's `drctl serve`.
    Socket(Connection),
    /// A shared store (etcd), whichever agent drives the run: its journal is read from the
    /// store, decisions are left in the run's inbox.
    Store(Arc<dyn Store>),
}

/// The agent driving the run, as this follower reaches it.
enum Agent<'s> {
    /// The agent's socket: the journal a page at a time, every [`POLL`].
    Socket(Connection),
    /// The shared store: the journal through the store's follower of the run.
    Store(&'s dyn Store, Box<dyn JournalFollower + 's>),
}

impl Agent<'_> {
    /// The journal from entry `from` on (what the store's follower has not read yet), and
    /// whether the run is still being driven.
    fn page(&mut self, run_id: &str, from: u64) -> Result<JournalPage, CliError> {
        match self {
            Agent::Socket(agent) => super::state::ask(
                agent,
                &Request::Journal {
                    run: run_id.to_string(),
                    from,
                },
            ),
            Agent::Store(_, follower) => {
                let news = follower.read()?;
                Ok(JournalPage {
                    entries: news.entries,
                    driving: news.under_way,
                })
            }
        }
    }

    /// Waits until the journal may have grown.
    async fn changed(&mut self) {
        match self {
            Agent::Socket(_) => tokio::time::sleep(POLL).await,
            Agent::Store(_, follower) => follower.changed().await,
        }
    }

    /// Sends `request` (a vote, a cancel) to the run's driver; its answer.
    fn send(&mut self, run_id: &str, request: &Request) -> Result<Result<(), String>, CliError> {
        let answer = match self {
            Agent::Socket(agent) => agent.call(request).map_err(|e| {
                CliError::internal(format!(
                    "drctl serve stopped answering while it drove run {run_id} ({e}); the next agent on this state directory takes the run up, or `drctl resume {run_id}` does"
                ))
            })?,
            // Followed from the store only when it is shared: its inbox reaches the driver.
            Agent::Store(store, _) => match store.shared() {
                Some(shared) => super::state::through_inbox(shared, run_id, request)?,
                None => {
                    return Err(CliError::internal(format!(
                        "run {run_id} is followed on a store that is not shared: it has no inbox to reach its driver"
                    )));
                }
            },
        };
        Ok(if answer.ok {
            Ok(())
        } else {
            Err(answer.error.unwrap_or_default())
        })
    }
}

/// How often the agent's socket is asked for the journal while the run goes on.
const POLL: Duration = Duration::from_millis(100);

/// What the agent answers when it took a run: what the follower needs to replay it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Taken {
    /// The run.
    pub run_id: String,
    /// The agent's pid.
    pub pid: u32,
    /// Who started the run.
    pub initiator: String,
    /// The workflow file as recorded.
    pub file: String,
    /// The text the agent compiled (with `overrides`).
    pub text: String,
    /// The run's `--param` overrides, `name=value`.
    pub overrides: Vec<String>,
}

impl Taken {
    /// The workflow the agent drives the run on.
    pub fn compile(&self) -> Result<CompiledWorkflow, CliError> {
        let overrides: Vec<Override> = self
            .overrides
            .iter()
            .map(|o| o.parse())
            .collect::<Result<_, String>>()
            .map_err(CliError::internal)?;
        super::load::compile(&self.file, &self.text, &overrides, None)
    }
}

/// Follows run `run_id`, started by `initiator` on `workflow`, until the agent stops driving
/// it; prints as `format` says; approvals the person at this terminal (`operator`) may give
/// are offered here. Ctrl-C asks the agent to cancel the run (a second one stops following
/// and leaves the run to the agent).
pub fn follow(
    agent: Via,
    run_id: &str,
    initiator: &str,
    workflow: &CompiledWorkflow,
    (format, operator): (RunFormat, &str),
) -> Result<u8, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::internal(e.to_string()))?;
    runtime.block_on(follow_async(
        agent,
        run_id,
        Machine::new(workflow, initiator),
        (format, operator),
    ))
}

async fn follow_async(
    via: Via,
    run_id: &str,
    mut machine: Machine<'_>,
    (format, operator): (RunFormat, &str),
) -> Result<u8, CliError> {
    let store: Arc<dyn Store>;
    let mut agent = match via {
        Via::Socket(connection) => Agent::Socket(connection),
        Via::Store(shared) => {
            store = shared;
            Agent::Store(store.as_ref(), store.follow_journal(run_id, 0)?)
        }
    };
    machine.run_id = run_id.to_string();
    let (offer_tx, mut offers) = mpsc::channel::<ControlRequest>(4);
    let live = (format == RunFormat::Text && std::io::stdout().is_terminal()).then(|| {
        let offer = std::io::stdin()
            .is_terminal()
            .then(|| (operator.to_string(), offer_tx));
        Arc::new(LiveView::new(offer))
    });
    let mut observer = printer(run_id.to_string(), format, live.clone());
    let mut from = 0;
    let mut interrupts = 0;
    loop {
        let page = agent.page(run_id, from)?;
        let events = crate::engine::events(run_id, &page.entries)?;
        for recorded in events {
            machine.apply(&recorded.event, recorded.time);
            observer(&recorded.event, recorded.time, &machine);
            from = recorded.seq + 1;
        }
        if !page.driving {
            break;
        }
        tokio::select! {
            () = agent.changed() => {}
            Some(offered) = offers.recv() => {
                let reply = match to_request(run_id, offered.input) {
                    Some(request) => agent.send(run_id, &request)?,
                    None => Err("only votes are sent from this terminal".to_string()),
                };
                let _ = offered.reply.send(reply);
            }
            _ = tokio::signal::ctrl_c() => {
                interrupts += 1;
                if interrupts > 1 {
                    if let Some(view) = &live { view.finish(); }
                    eprintln!("stopped following run {run_id}; its agent goes on driving it (`drctl status {run_id}`)");
                    return Ok(super::exit::RUN_FAILED);
                }
                let cancel = Request::Cancel { run: run_id.to_string(), by: operator.to_string() };
                if let Err(why) = agent.send(run_id, &cancel)? {
                    eprintln!("could not cancel run {run_id}: {why}");
                }
            }
        }
    }
    if let Some(view) = &live {
        view.finish();
    }
    let status = machine.status();
    if format == RunFormat::Text {
        outln!("{}", summary(run_id, status, &machine));
    }
    Ok(exit_code(status))
}

/// A vote offered at this terminal, as a request to the agent.
fn to_request(run: &str, input: Input) -> Option<Request> {
    Some(match input {
        Input::Vote {
            step,
            by,
            decision,
            comment,
        } => Request::Decide {
            run: run.to_string(),
            step,
            by,
            decision,
            comment,
        },
        Input::Cancel { by } => Request::Cancel {
            run: run.to_string(),
            by,
        },
        _ => return None,
    })
}
