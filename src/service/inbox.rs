//! The driver's side of a run's inbox on a shared store: decisions left there by commands on
//! other machines are taken, handed to the run's driver exactly as the control socket hands
//! them ([`super::decide`]), and answered where their sender waits.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::router::Router;
use crate::control::{Request, Response, parse_request};
use crate::engine::ControlRequest;
use crate::store::Store;

/// How often the driver of a run on a shared store looks at the run's inbox.
const INBOX_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Takes the decisions left in run `run_id`'s inbox, for as long as the task runs, and hands
/// each to `driver`.
pub async fn serve_inbox(
    store: Arc<dyn Store>,
    run_id: String,
    driver: mpsc::Sender<ControlRequest>,
) {
    let router = Router::single(&run_id, driver);
    loop {
        tokio::time::sleep(INBOX_POLL).await;
        let (s, r) = (store.clone(), run_id.clone());
        let Ok(Ok(requests)) = tokio::task::spawn_blocking(move || s.inbox(&r)).await else {
            continue;
        };
        for (id, bytes) in requests {
            // Taken first: a request its sender withdrew meanwhile is not applied.
            let (s, r, i) = (store.clone(), run_id.clone(), id.clone());
            match tokio::task::spawn_blocking(move || s.take_request(&r, &i)).await {
                Ok(Ok(true)) => {}
                _ => continue,
            }
            let response = answer(&router, &run_id, &bytes).await;
            let answer = serde_json::to_vec(&response).unwrap_or_default();
            let (s, r) = (store.clone(), run_id.clone());
            let _ = tokio::task::spawn_blocking(move || s.answer(&r, &id, &answer)).await;
        }
    }
}

/// The answer to a request left in run `run`'s inbox: only decisions on that run are taken.
async fn answer(router: &Router, run: &str, bytes: &[u8]) -> Response {
    match parse_request(bytes) {
        Ok(Request::Decide(decision)) if decision.run() == run => {
            super::decide(router, decision).await
        }
        Ok(Request::Decide(decision)) => Response::refused(format!(
            "a decision on run {} left in the inbox of run {run}",
            decision.run()
        )),
        Ok(_) => Response::refused("only decisions are left in a run's inbox"),
        Err(why) => Response::refused(why),
    }
}
