//! The process that drives runs, answering what other processes ask of them: the same answers
//! whether a request came through the control socket or a run's inbox on a shared store.
//! Decisions go to the driver of their run (one place: [`decide`]); reads are answered from
//! the store, off the runtime's worker threads so the runs driven here are never starved.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::router::Router;
use crate::control::{
    Active, Answering, Handler, JournalPage, Reply, Request, Response, RunDecision,
};
use crate::engine::{ControlRequest, Input};
use crate::store::Store;

/// The run service of a process that serves the control socket: its store and the runs it
/// drives.
pub struct Host {
    store: Arc<dyn Store>,
    router: Arc<Router>,
}

impl Host {
    /// The service of `store`, whose driven runs (and agent, when there is one) `router`
    /// knows.
    pub fn new(store: Arc<dyn Store>, router: Arc<Router>) -> Arc<Self> {
        Arc::new(Self { store, router })
    }

    async fn respond(&self, request: Request) -> Response {
        match request {
            Request::Active => {
                let runs = self.router.driving();
                Response::reply(Reply::Active(Active {
                    pid: std::process::id(),
                    agent: self.router.agent_ref().is_some(),
                    runs,
                }))
            }
            Request::Decide(decision) => {
                // The agent owns the store: a decision on a run it does not drive (paused,
                // cancelled, let go of) is recorded by it, as the command would offline.
                if let Some(agent) = self.router.agent_ref().cloned()
                    && !self.router.drives(decision.run())
                {
                    return blocking(move || agent.record(decision)).await;
                }
                decide(&self.router, decision).await
            }
            Request::Start(start) => match self.router.agent_ref().cloned() {
                Some(agent) => blocking(move || agent.start(*start)).await,
                None => Response::refused(NOT_AN_AGENT),
            },
            Request::TakeUp { run, by, how } => match self.router.agent_ref().cloned() {
                Some(agent) => blocking(move || agent.take_up(&run, &by, how)).await,
                None => Response::refused(NOT_AN_AGENT),
            },
            read => {
                let (store, router) = (self.store.clone(), self.router.clone());
                blocking(move || read_store(read, store.as_ref(), &router)).await
            }
        }
    }
}

impl Handler for Host {
    fn answer(&self, request: Request) -> Answering<'_> {
        Box::pin(self.respond(request))
    }
}

/// Why a foreground run does not take runs over.
const NOT_AN_AGENT: &str = "the live drctl process drives one run from a terminal; runs are handed over only to `drctl serve`";

/// Runs `f` off the runtime's worker threads, so the runs driven here are never starved.
async fn blocking(f: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Response::refused(format!("the request failed: {e}")))
}

/// Answers a read from the store. Blocking: called off the runtime's worker threads.
fn read_store(request: Request, store: &dyn Store, router: &Router) -> Response {
    fn answer<T, E: std::fmt::Display>(result: Result<T, E>, reply: fn(T) -> Reply) -> Response {
        match result {
            Ok(v) => Response::reply(reply(v)),
            Err(e) => Response::refused(e.to_string()),
        }
    }
    let driving = router.driving();
    match request {
        Request::Status { run } => {
            answer(crate::view::status_view(store, &run, &driving), |view| {
                Reply::Status(Box::new(view))
            })
        }
        Request::Runs => answer(crate::view::run_lines(store, &driving), Reply::Runs),
        Request::Journal { run, from } => {
            // Whether the run is driven is looked at first: once it is not, every entry its
            // driver wrote is in the journal read after.
            let driving = router.drives(&run);
            // Only what is new: a follower asks from the entry after the last it has.
            answer(
                store
                    .journal_from(&run, from)
                    .map(|entries| JournalPage { entries, driving }),
                Reply::Journal,
            )
        }
        Request::Report { run } => answer(crate::report::build(store, &run), |r| {
            Reply::Report(Box::new(r))
        }),
        Request::Medians { workflow } => answer(
            crate::report::step_medians(store, &workflow),
            |(medians, runs)| Reply::Medians(medians, runs),
        ),
        Request::History { workflow } => answer(crate::report::history(store, &workflow), |h| {
            Reply::History(Box::new(h))
        }),
        Request::Evidence { run } => match crate::evidence::collect(store, &run) {
            Ok(Some(e)) => Response::reply(Reply::Evidence(Box::new(e))),
            Ok(None) => Response::refused(format!("no run `{run}` in this state directory")),
            Err(e) => Response::refused(e.to_string()),
        },
        Request::Active | Request::Decide(_) | Request::Start(_) | Request::TakeUp { .. } => {
            Response::refused("not a read")
        }
    }
}

/// Hands a decision to the driver of its run and says how it was taken. The socket and, on a
/// shared store, the run's inbox both go through here.
pub async fn decide(router: &Router, decision: RunDecision) -> Response {
    let run = decision.run().to_string();
    let Some(driver) = router.driver(&run) else {
        return Response::refused(match router.driving().as_slice() {
            [] => format!("run {run} is not driven by the live process; try again"),
            [live] => format!("run {run} is not the live run of this store (that is {live})"),
            live => format!(
                "run {run} is not one of the runs driven here ({})",
                live.join(", ")
            ),
        });
    };
    to_driver(&driver, decision.input()).await
}

async fn to_driver(driver: &mpsc::Sender<ControlRequest>, input: Input) -> Response {
    let (reply, answer) = oneshot::channel();
    if driver.send(ControlRequest { input, reply }).await.is_err() {
        return Response::refused("the run is no longer being driven by this process; try again");
    }
    match answer.await {
        Ok(Ok(())) => Response::reply(Reply::Decided),
        Ok(Err(e)) => Response::refused(e),
        Err(_) => Response::refused("the run stopped before answering; try again"),
    }
}
