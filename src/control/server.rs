//! The server side: runs inside the process that drives a run.

use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use super::protocol::{Request, Response};
use super::socket_path;
use crate::engine::{ControlRequest, Input};
use crate::store::Store;
use crate::view;

/// Listens on the store's control socket until the returned guard is dropped. Reads are
/// answered from the store; decisions and cancels go to the driver through `driver`.
pub fn serve(
    state_dir: &Path,
    store: Arc<dyn Store>,
    run_id: String,
    driver: mpsc::Sender<ControlRequest>,
) -> std::io::Result<SocketGuard> {
    let path = socket_path(state_dir);
    // A socket file left by a process that died: this process owns the store now.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    // Only the owner may talk to it (the state directory is private too).
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (store, driver, run_id) = (store.clone(), driver.clone(), run_id.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let response = match serde_json::from_str::<Request>(&line) {
                        Ok(request) => answer(request, store.as_ref(), &run_id, &driver).await,
                        Err(e) => Response::refused(format!("bad request: {e}")),
                    };
                    let mut out = serde_json::to_string(&response).unwrap_or_default();
                    out.push('\n');
                    if write.write_all(out.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(SocketGuard { path, task })
}

/// Removes the socket when the run stops being driven.
pub struct SocketGuard {
    path: std::path::PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn to_driver(driver: &mpsc::Sender<ControlRequest>, input: Input) -> Response {
    let (reply, answer) = oneshot::channel();
    if driver.send(ControlRequest { input, reply }).await.is_err() {
        return Response::refused("the run is no longer being driven by this process; try again");
    }
    match answer.await {
        Ok(Ok(())) => Response::data(serde_json::Value::Null),
        Ok(Err(e)) => Response::refused(e),
        Err(_) => Response::refused("the run stopped before answering; try again"),
    }
}

async fn answer(
    request: Request,
    store: &dyn Store,
    live: &str,
    driver: &mpsc::Sender<ControlRequest>,
) -> Response {
    let not_live = |run: &str| {
        Response::refused(format!(
            "run {run} is not the live run of this store (that is {live})"
        ))
    };
    match request {
        Request::Active => {
            Response::data(serde_json::json!({ "run_id": live, "pid": std::process::id() }))
        }
        Request::Status { run } => match view::status(store, &run) {
            Ok(v) => Response::data(v),
            Err(e) => Response::refused(e.to_string()),
        },
        Request::Runs => match view::runs(store) {
            Ok(v) => Response::data(v),
            Err(e) => Response::refused(e.to_string()),
        },
        Request::Report { run } => match crate::report::build(store, &run) {
            Ok(r) => Response::data(serde_json::to_value(r).unwrap_or_default()),
            Err(e) => Response::refused(e.to_string()),
        },
        Request::Evidence { run } => match crate::evidence::collect(store, &run) {
            Ok(Some(e)) => Response::data(serde_json::to_value(e).unwrap_or_default()),
            Ok(None) => Response::refused(format!("no run `{run}` in this state directory")),
            Err(e) => Response::refused(e.to_string()),
        },
        Request::Medians { workflow } => match crate::report::step_medians(store, &workflow) {
            Ok(m) => Response::data(serde_json::to_value(m).unwrap_or_default()),
            Err(e) => Response::refused(e.to_string()),
        },
        Request::History { workflow } => match crate::report::history(store, &workflow) {
            Ok(h) => Response::data(serde_json::to_value(h).unwrap_or_default()),
            Err(e) => Response::refused(e.to_string()),
        },
        Request::Decide {
            run,
            step,
            by,
            decision,
            comment,
        } => {
            if run != live {
                return not_live(&run);
            }
            to_driver(
                driver,
                Input::Vote {
                    step,
                    by,
                    decision,
                    comment,
                },
            )
            .await
        }
        Request::DecideSigned { run, signed } => {
            if run != live {
                return not_live(&run);
            }
            to_driver(driver, Input::SignedVote { signed }).await
        }
        Request::Cancel { run, by } => {
            if run != live {
                return not_live(&run);
            }
            to_driver(driver, Input::Cancel { by }).await
        }
    }
}
