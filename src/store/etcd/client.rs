//! The store's etcd client, on a thread of its own: [`super::Store`] is synchronous and
//! etcd's client is not. Each request is a job sent to that thread, tried again while a
//! failure says nothing was decided.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use super::super::StoreError;
use super::{EtcdStore, io};

/// How long one request to the cluster may take, retries included, before the store gives
/// up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The pause between two tries of a request that failed without a decision.
pub(super) const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Whether `e` says the request may be sent again: no leader (or a new one), a member
/// unavailable, a connection broken or not made. A connection broken under a request may
/// leave it decided or not; every request drctl sends is safe to send twice (see
/// [`EtcdStore::call`]).
fn transient(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Aborted
            ) || status.message().contains("leader changed")
                || status.message().contains("no leader")
                // A connection broken under a request: tonic reports it as an unknown status.
                || (status.code() == tonic::Code::Unknown
                    && status.message().contains("transport error"))
        }
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        _ => false,
    }
}

/// Runs `f` with `client` until it answers; a failure that says nothing was decided is tried
/// again, on any member, until [`REQUEST_TIMEOUT`].
pub(super) async fn retried<T, F, Fut>(client: &Client, f: F) -> Result<T, StoreError>
where
    F: Fn(Client) -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, f(client.clone())).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) if transient(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            Ok(Err(e)) => return Err(io(e)),
            Err(_) => return Err(io("etcd did not answer in time")),
        }
    }
}

/// Work for the client thread: a task spawned there with the client.
pub(super) type Job = Box<dyn FnOnce(Client) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Starts the client thread, connected to one of `endpoints`: where to send it jobs.
pub(super) fn start(
    endpoints: Vec<String>,
) -> Result<tokio::sync::mpsc::UnboundedSender<Job>, StoreError> {
    let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("drctl-etcd".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(io(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                let options = ConnectOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(REQUEST_TIMEOUT)
                    .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
                let client = match tokio::time::timeout(
                    REQUEST_TIMEOUT,
                    Client::connect(&endpoints, Some(options)),
                )
                .await
                {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => {
                        let _ = ready_tx.send(Err(io(format!(
                            "cannot reach etcd at {}: {e}",
                            endpoints.join(",")
                        ))));
                        return;
                    }
                    Err(_) => {
                        let _ = ready_tx.send(Err(io(format!(
                            "etcd at {} did not answer",
                            endpoints.join(",")
                        ))));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                while let Some(job) = queue.recv().await {
                    tokio::spawn(job(client.clone()));
                }
            });
        })
        .map_err(io)?;
    ready_rx
        .recv()
        .map_err(|_| io("the etcd client thread stopped"))??;
    Ok(jobs)
}

impl EtcdStore {
    /// Runs `f` with the client on the store's thread and waits for its answer. A failure
    /// that says nothing was decided (no leader yet, a member gone, a connection reset) is
    /// tried again, on any member, until [`REQUEST_TIMEOUT`]: every request drctl sends is
    /// safe to send twice (reads, and commits that write the same keys with the same values).
    pub(super) fn call<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, etcd_client::Error>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let job: Job = Box::new(move |client| {
            Box::pin(async move {
                let _ = tx.send(retried(&client, f).await);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| io("the etcd client thread stopped"))?;
        rx.recv()
            .map_err(|_| io("the etcd client thread stopped"))?
    }
}
