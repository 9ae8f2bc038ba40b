//! The incident room (SPEC §12): `drctl serve --http ADDR` serves, from the agent, a live view
//! of every run of the store in a browser, its metrics, and one way in for a change: a signed
//! vote. It owns HTTP and nothing else: every read is the run service's answer (`Host`, as
//! the control socket answers) or a run's in-memory feed of its journal, folded by the
//! machine's own `apply`; every vote goes through `Session::decide`. It never reads a run a
//! way `drctl status` does not, and never decides anything itself.
//!
//! - `routes.rs`: the routes; `pages.rs`, `graph.rs`: the HTML and the DAG's layout;
//! - `model.rs`: what a run page shows, as data;
//! - `feed.rs`, `sse.rs`: one follower per run viewed, fanned out as Server-Sent Events;
//! - `votes.rs`: signed votes; `auth.rs`: the token and the security headers;
//! - `rows.rs`: the runs page's rows; `settled.rs`: what is derived of runs at rest, kept;
//! - `metrics.rs`, `timed.rs`: `/metrics`, and the store's commits timed;
//! - `priority.rs`: the room's threads yield the processor to the runs'.

mod auth;
mod feed;
mod graph;
mod metrics;
mod model;
mod pages;
mod priority;
mod routes;
mod rows;
mod settled;
mod sse;
mod timed;
mod votes;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::watch;

pub use auth::CSP;
pub use metrics::commit_histogram;
pub use timed::TimedStore;

use crate::engine::Services;
use crate::service::{CliError, Host, Router, Session};
use crate::store::Store;

/// Where the room listens and the token it asks for, checked before anything is served.
pub struct Door {
    listener: std::net::TcpListener,
    token: Option<String>,
}

impl Door {
    /// Binds `addr`. Without a token (`token_file`), only a loopback address is taken: a
    /// room reachable from elsewhere is refused (exit 2), in words.
    pub fn bind(addr: SocketAddr, token_file: Option<&Path>) -> Result<Self, CliError> {
        let token = token_file.map(read_token).transpose()?;
        if token.is_none() && !addr.ip().is_loopback() {
            return Err(CliError::invalid(format!(
                "--http {addr} is not a loopback address: the incident room listens beyond this machine only with a token (--http-token-file FILE), which every request must then carry"
            )));
        }
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| CliError::invalid(format!("cannot listen on {addr}: {e}")))?;
        Ok(Self { listener, token })
    }

    /// The address listened on (the port chosen when `:0` was asked).
    pub fn addr(&self) -> Result<SocketAddr, CliError> {
        self.listener
            .local_addr()
            .map_err(|e| CliError::internal(e.to_string()))
    }
}

/// The token in `file`: its text, trimmed; printable, with no space or `;`, since it travels
/// in a header and a cookie.
fn read_token(file: &Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::invalid(format!("cannot read {}: {e}", file.display())))?;
    let token = text.trim().to_string();
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic() && b != b';') {
        return Err(CliError::invalid(format!(
            "{} must hold a token of at least 16 printable characters, without spaces or `;`",
            file.display()
        )));
    }
    Ok(token)
}

/// What the room serves from: the agent's run service, store, router and services, and the
/// session its votes go through.
pub struct Room {
    host: Arc<Host>,
    session: Session,
    store: Arc<dyn Store>,
    router: Arc<Router>,
    services: Services,
    feeds: Arc<feed::Feeds>,
    /// The runs page's rows, as they last changed (JSON), for its live list.
    runs: watch::Sender<Arc<str>>,
    /// The runs page's rows built, those of runs at rest kept.
    rows: rows::Rows,
    /// The runs' shares of the metrics, those of runs at rest kept.
    shares: metrics::Shares,
    token: Option<String>,
    commits: Histogram,
}

/// What a room is made of.
pub struct Parts {
    /// The agent's run service.
    pub host: Arc<Host>,
    /// The agent's runs.
    pub router: Arc<Router>,
    /// The store the agent drives (its commits timed into `commits`).
    pub store: Arc<dyn Store>,
    /// The command line's session: where votes go.
    pub session: Session,
    /// The store's commit times.
    pub commits: Histogram,
}

impl Room {
    /// Who drives run `run`, in words. Blocking.
    fn driver(&self, run: &str) -> Result<String, CliError> {
        if self.router.drives(run) {
            return Ok(format!("this agent (pid {})", std::process::id()));
        }
        Ok(match self.store.shared() {
            Some(shared) => shared.owner(run)?.map_or_else(
                || "nobody".to_string(),
                |o| format!("{} on {} (pid {})", o.name, o.host, o.pid),
            ),
            None => "nobody".to_string(),
        })
    }

    /// The runs list as `drctl runs --format json` prints it.
    fn runs_json(&self, lines: &[crate::view::RunLine]) -> Result<String, CliError> {
        let text =
            serde_json::to_string_pretty(lines).map_err(|e| CliError::internal(e.to_string()))?;
        Ok(self.services.redactors.scrub(None, &text))
    }

    /// The runs page's row of each run of `lines`. Blocking.
    fn rows(&self, lines: Vec<crate::view::RunLine>) -> Result<Vec<rows::RunRow>, CliError> {
        self.rows
            .build(self.store.as_ref(), |run| self.driver(run), lines)
    }
}

/// How often the runs list is read again while someone watches it.
const RUNS_EVERY: Duration = Duration::from_millis(500);

/// The room being served, on a runtime of its own; stopped when dropped.
pub struct Serving {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The room may have stopped already (and said why): nothing left to stop then.
            let _ = stop.send(());
        }
    }
}

/// Serves the room through `door` until the returned [`Serving`] is dropped: on a runtime of
/// its own (one worker thread), so that viewers never queue the runs' tasks behind theirs.
pub fn start(door: Door, parts: Parts) -> Result<Serving, CliError> {
    let services = parts.session.services().clone();
    let room = Arc::new(Room {
        feeds: feed::Feeds::new(parts.store.clone(), services.registry.clone()),
        host: parts.host,
        session: parts.session,
        store: parts.store,
        router: parts.router,
        services,
        runs: watch::Sender::new(Arc::from("[]")),
        rows: rows::Rows::default(),
        shares: metrics::Shares::default(),
        token: door.token,
        commits: parts.commits,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("room")
        .on_thread_start(priority::lower)
        .enable_all()
        .build()
        .map_err(|e| CliError::internal(format!("cannot serve the incident room: {e}")))?;
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(door.listener)
            .map_err(|e| CliError::internal(format!("cannot serve the incident room: {e}")))?
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("room".into())
        .spawn(move || {
            priority::lower();
            runtime.block_on(async move {
                let lister = tokio::spawn(watch_runs(room.clone()));
                let app = routes::router(room);
                tokio::select! {
                    served = axum::serve(listener, app).into_future() => {
                        if let Err(e) = served {
                            tracing::error!("the incident room stopped: {e}");
                        }
                    }
                    _ = stopped => {}
                }
                lister.abort();
            });
            // Open event streams are not waited for.
            runtime.shutdown_background();
        })
        .map_err(|e| CliError::internal(format!("cannot serve the incident room: {e}")))?;
    Ok(Serving { stop: Some(stop) })
}

/// Reads the runs list while someone watches it, and hands each change of the runs page's rows
/// to the watchers: one read for every viewer.
async fn watch_runs(room: Arc<Room>) {
    loop {
        tokio::time::sleep(RUNS_EVERY).await;
        if room.runs.receiver_count() == 0 {
            continue;
        }
        let rows = match model::run_lines(&room.host).await {
            Ok(lines) => {
                let room = room.clone();
                tokio::task::spawn_blocking(move || {
                    let rows = room.rows(lines)?;
                    let json = serde_json::to_string(&rows)
                        .map_err(|e| CliError::internal(e.to_string()))?;
                    Ok(room.services.redactors.scrub(None, &json))
                })
                .await
                .unwrap_or_else(|e| Err(CliError::internal(e.to_string())))
            }
            Err(e) => Err(e),
        };
        match rows {
            Ok(json) => {
                room.runs.send_if_modified(|shown| {
                    let changed = **shown != *json;
                    if changed {
                        *shown = Arc::from(json);
                    }
                    changed
                });
            }
            Err(e) => tracing::warn!("the incident room cannot list the runs: {e}"),
        }
    }
}
