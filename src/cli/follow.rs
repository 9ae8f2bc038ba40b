//! Following a run that `drctl serve` drives, in the foreground: the same event lines, live
//! view, approval offer, summary and exit code as when the command drives the run itself
//! (SPEC §11). The run's journal is read as it grows (through the agent's control socket, or
//! from the shared store, whose follower reads only what is new: on etcd a watch says what was
//! written) and replayed on a machine of its own, which the printer reads exactly as it reads
//! the driver's. Votes and Ctrl-C's cancel go to the agent the same way (its socket, or the
//! run's inbox in the store).

use std::io::IsTerminal;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::error::CliError;
use super::output::{LiveView, RunFormat, exit_code, printer, summary};
use crate::control::{Request, RunDecision};
use crate::dag::CompiledWorkflow;
use crate::engine::{ControlRequest, Input, Machine};
pub use crate::service::follow::{Following, Via, compile_taken};
use crate::store::Store;

/// Follows run `run_id`, started by `initiator` on `workflow`, until the agent stops driving
/// it; prints as `format` says; approvals the person at this terminal (`operator`) may give
/// are offered here. Ctrl-C asks the agent to cancel the run (a second one stops following
/// and leaves the run to the agent).
pub fn follow(
    agent: Via,
    run_id: &str,
    initiator: &str,
    workflow: &std::sync::Arc<CompiledWorkflow>,
    (format, operator): (RunFormat, &str),
) -> Result<u8, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::internal(e.to_string()))?;
    runtime.block_on(follow_async(
        agent,
        run_id,
        Machine::new(std::sync::Arc::clone(workflow), initiator),
        (format, operator),
    ))
}

async fn follow_async(
    via: Via,
    run_id: &str,
    mut machine: Machine,
    (format, operator): (RunFormat, &str),
) -> Result<u8, CliError> {
    let store: Arc<dyn Store>;
    let mut agent = match via {
        Via::Socket(connection) => Following::Socket(connection),
        Via::Store(shared) => {
            store = shared;
            Following::Store(store.as_ref(), store.follow_journal(run_id, 0)?)
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
                let cancel = Request::Decide(RunDecision::Cancel { run: run_id.to_string(), by: operator.to_string() });
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
    Some(Request::Decide(match input {
        Input::Vote {
            step,
            by,
            decision,
            comment,
        } => RunDecision::Vote {
            run: run.to_string(),
            step,
            by,
            decision,
            comment,
        },
        Input::Cancel { by } => RunDecision::Cancel {
            run: run.to_string(),
            by,
        },
        _ => return None,
    }))
}
