//! The driver's side of a run's inbox on a shared store: decisions left there by commands on
//! other machines are taken, handed to the run's driver exactly as the control socket hands
//! them ([`super::decide`]), and answered where their sender waits.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::router::Router;
use crate::control::{Request, Response, parse_request};
use crate::engine::ControlRequest;
use crate::store::{self, SharedStore, Store, StoreError};

/// How often the driver of a run on a shared store looks at the run's inbox.
const INBOX_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// How long a closing inbox is given to answer the requests it took.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// A run's inbox being served to its driver (on a shared store).
pub struct Inbox {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Inbox {
    /// Serves run `run_id`'s inbox to `driver` until [`Inbox::close`]; `None` on a store with
    /// no inbox (not shared: decisions come through the socket there).
    pub fn open(
        store: Arc<dyn Store>,
        run_id: String,
        driver: mpsc::Sender<ControlRequest>,
    ) -> Option<Self> {
        store.shared()?;
        Some(Self::serve(Arc::new(OfStore(store)), run_id, driver))
    }

    /// Serves run `run_id`'s requests in `inbox` to `driver` until [`Inbox::close`].
    fn serve(
        inbox: Arc<dyn store::Inbox>,
        run_id: String,
        driver: mpsc::Sender<ControlRequest>,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(serve_inbox(inbox, run_id, driver, stopped));
        Self { stop, task }
    }

    /// Takes no more requests, and answers those already taken before it returns: a vote
    /// that ended the run is answered, not left for its sender to time out on. Given
    /// [`CLOSE_GRACE`] (a store that does not answer is not waited on longer).
    pub async fn close(self) {
        self.stop.send_replace(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(CLOSE_GRACE, self.task).await.is_err() {
            abort.abort();
        }
    }
}

/// Takes the decisions left in run `run_id`'s inbox until `stopped`, and hands each to
/// `driver`. A request taken is always answered, even once stopped.
async fn serve_inbox(
    store: Arc<dyn store::Inbox>,
    run_id: String,
    driver: mpsc::Sender<ControlRequest>,
    mut stopped: watch::Receiver<bool>,
) {
    let router = Router::single(&run_id, driver);
    loop {
        tokio::select! {
            () = tokio::time::sleep(INBOX_POLL) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        let (s, r) = (store.clone(), run_id.clone());
        let inbox = move || s.inbox(&r);
        let Ok(Ok(requests)) = tokio::task::spawn_blocking(inbox).await else {
            continue;
        };
        for (id, bytes) in requests {
            // Left for whoever drives the run next once stopped.
            if *stopped.borrow() {
                return;
            }
            // Taken first: a request its sender withdrew meanwhile is not applied.
            let (s, r, i) = (store.clone(), run_id.clone(), id.clone());
            let take = move || s.take_request(&r, &i);
            match tokio::task::spawn_blocking(take).await {
                Ok(Ok(true)) => {}
                _ => continue,
            }
            let response = answer(&router, &run_id, &bytes).await;
            let answer = serde_json::to_vec(&response).unwrap_or_default();
            let (s, r) = (store.clone(), run_id.clone());
            let answer = move || s.answer(&r, &id, &answer);
            let why = match tokio::task::spawn_blocking(answer).await {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            tracing::warn!(run_id = %run_id, error = %why, "cannot answer a request left in the run's inbox");
        }
    }
}

/// A shared store's inbox, reached through the store.
struct OfStore(Arc<dyn Store>);

impl OfStore {
    fn shared(&self) -> Result<&dyn SharedStore, StoreError> {
        self.0
            .shared()
            .ok_or_else(|| StoreError::Io("this store has no inbox (it is not shared)".into()))
    }
}

impl store::Inbox for OfStore {
    fn post(&self, run_id: &str, request: &[u8]) -> Result<String, StoreError> {
        self.shared()?.post(run_id, request)
    }
    fn inbox(&self, run_id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.shared()?.inbox(run_id)
    }
    fn take_request(&self, run_id: &str, id: &str) -> Result<bool, StoreError> {
        self.shared()?.take_request(run_id, id)
    }
    fn withdraw(&self, run_id: &str, id: &str) -> Result<bool, StoreError> {
        self.shared()?.withdraw(run_id, id)
    }
    fn answer(&self, run_id: &str, id: &str, answer: &[u8]) -> Result<(), StoreError> {
        self.shared()?.answer(run_id, id, answer)
    }
    fn take_answer(&self, run_id: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.shared()?.take_answer(run_id, id)
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

    /// An inbox in memory that says when a request is taken.
    #[derive(Default)]
    struct Fake {
        waiting: std::sync::Mutex<Vec<(String, Vec<u8>)>>,
        answers: std::sync::Mutex<Vec<(String, Vec<u8>)>>,
        taken: tokio::sync::Notify,
    }

    impl store::Inbox for Fake {
        fn post(&self, _: &str, request: &[u8]) -> Result<String, StoreError> {
            let mut waiting = self.waiting.lock().unwrap();
            let id = format!("q{}", waiting.len() + 1);
            waiting.push((id.clone(), request.to_vec()));
            Ok(id)
        }
        fn inbox(&self, _: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
            Ok(self.waiting.lock().unwrap().clone())
        }
        fn take_request(&self, _: &str, id: &str) -> Result<bool, StoreError> {
            self.waiting.lock().unwrap().retain(|(i, _)| i != id);
            self.taken.notify_one();
            Ok(true)
        }
        fn withdraw(&self, _: &str, _: &str) -> Result<bool, StoreError> {
            Ok(false)
        }
        fn answer(&self, _: &str, id: &str, answer: &[u8]) -> Result<(), StoreError> {
            self.answers
                .lock()
                .unwrap()
                .push((id.to_string(), answer.to_vec()));
            Ok(())
        }
        fn take_answer(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(None)
        }
    }

    #[tokio::test]
    async fn a_closing_inbox_answers_the_request_it_took_and_leaves_the_others() {
        let fake = Arc::new(Fake::default());
        let first = store::Inbox::post(fake.as_ref(), "r1", &cancel("r1")).unwrap();
        let second = store::Inbox::post(fake.as_ref(), "r1", &cancel("r1")).unwrap();
        // A driver slow to answer, that ends the run with its answer (its receiver dropped).
        let (driver, mut inputs) = mpsc::channel(4);
        let driving = tokio::spawn(async move {
            let ControlRequest { reply, .. } = inputs.recv().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let _ = reply.send(Ok(()));
        });
        let inbox = Inbox::serve(fake.clone(), "r1".into(), driver);
        fake.taken.notified().await;
        // Closed while the first request is being applied: it is answered all the same.
        inbox.close().await;
        driving.await.unwrap();
        let answers = fake.answers.lock().unwrap().clone();
        assert_eq!(answers.len(), 1, "{answers:?}");
        assert_eq!(answers[0].0, first);
        let answered = crate::control::parse_response(&answers[0].1);
        assert!(matches!(answered.into_result(), Ok(Reply::Decided)));
        // The second was not taken: it waits for whoever drives the run next.
        let waiting = fake.waiting.lock().unwrap().clone();
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].0, second);
    }
}
