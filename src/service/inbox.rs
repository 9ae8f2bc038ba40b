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
    // Only a shared store has an inbox: on another, decisions come through the socket.
    if store.shared().is_none() {
        return;
    }
    let router = Router::single(&run_id, driver);
    loop {
        tokio::time::sleep(INBOX_POLL).await;
        let (s, r) = (store.clone(), run_id.clone());
        let inbox = move || s.shared().map(|shared| shared.inbox(&r));
        let Ok(Some(Ok(requests))) = tokio::task::spawn_blocking(inbox).await else {
            continue;
        };
        for (id, bytes) in requests {
            // Taken first: a request its sender withdrew meanwhile is not applied.
            let (s, r, i) = (store.clone(), run_id.clone(), id.clone());
            let take = move || s.shared().map(|shared| shared.take_request(&r, &i));
            match tokio::task::spawn_blocking(take).await {
                Ok(Some(Ok(true))) => {}
                _ => continue,
            }
            let response = answer(&router, &run_id, &bytes).await;
            let answer = serde_json::to_vec(&response).unwrap_or_default();
            let (s, r) = (store.clone(), run_id.clone());
            let answer = move || s.shared().map(|shared| shared.answer(&r, &id, &answer));
            let _ = tokio::task::spawn_blocking(answer).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Envelope, Reply, RunDecision};

    fn cancel(run: &str) -> Vec<u8> {
        let decision = RunDecision::Cancel {
            run: run.into(),
            by: "bob".into(),
        };
        serde_json::to_vec(&Envelope::new(Request::Decide(decision))).unwrap()
    }

    #[tokio::test]
    async fn only_decisions_on_the_inbox_s_own_run_reach_its_driver() {
        let (driver, mut inputs) = mpsc::channel(4);
        let router = Router::single("r1", driver);
        tokio::spawn(async move {
            while let Some(request) = inputs.recv().await {
                let ControlRequest { reply, .. } = request;
                let _ = reply.send(Ok(()));
            }
        });
        let taken = answer(&router, "r1", &cancel("r1")).await;
        assert!(matches!(taken.into_result(), Ok(Reply::Decided)));

        let elsewhere = answer(&router, "r1", &cancel("r2")).await;
        let why = elsewhere.into_result().unwrap_err().error;
        assert!(why.contains("run r2 left in the inbox of run r1"), "{why}");

        let read = serde_json::to_vec(&Envelope::new(Request::Runs)).unwrap();
        let why = answer(&router, "r1", &read)
            .await
            .into_result()
            .unwrap_err();
        assert!(why.error.contains("only decisions"), "{}", why.error);

        let old = br#"{"op":"decide","run":"r1","step":"gate","by":"bob","decision":"approve"}"#;
        let why = answer(&router, "r1", old).await.into_result().unwrap_err();
        assert!(why.error.contains("control protocol 2"), "{}", why.error);
    }
}
