//! The room's routes (SPEC §12) and their handlers: each asks the run service or reads a run's
//! feed, and hands what it got to `pages.rs`, `sse.rs` or `metrics.rs`. Nothing here changes
//! a run but `POST /runs/RUN/votes` (`votes.rs`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use super::Room;
use super::model::{ask, run_lines, run_page};
use super::pages::runs_page;
use crate::control::{Reply, Request};
use crate::service::{CliError, exit};

/// Every route of the room.
pub fn router(room: Arc<Room>) -> axum::Router {
    axum::Router::new()
        .route("/", get(runs))
        .route("/runs/{run}", get(run))
        .route("/runs/{run}/events", get(run_events))
        .route("/runs/{run}/votes", post(super::votes::submit))
        .route("/runs/{run}/report", get(report))
        .route("/runs/{run}/evidence", get(evidence))
        .route("/events", get(runs_events))
        .route("/api/runs", get(api_runs))
        .route("/api/runs/{run}", get(api_run))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/login", post(super::auth::login))
        .route("/static/room.js", get(script))
        .route("/static/room.css", get(style))
        .layer(axum::middleware::from_fn_with_state(
            room.clone(),
            super::auth::require_token,
        ))
        .layer(axum::middleware::from_fn(super::auth::secure))
        .with_state(room)
}

/// A request that failed: a run that does not exist is 404, drctl's own failure 500.
struct Failed(CliError);

impl From<CliError> for Failed {
    fn from(e: CliError) -> Self {
        Self(e)
    }
}

impl IntoResponse for Failed {
    fn into_response(self) -> Response {
        let status = if self.0.exit_code() == exit::INVALID_INPUT {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        (status, format!("{}\n", self.0)).into_response()
    }
}

/// Runs `f` off the runtime's workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CliError> + Send + 'static,
) -> Result<T, CliError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CliError::internal(e.to_string()))?
}

async fn runs(State(room): State<Arc<Room>>) -> Result<Html<String>, Failed> {
    let lines = run_lines(&room.host).await?;
    let room2 = room.clone();
    let rows = blocking(move || room2.rows(lines)).await?;
    Ok(Html(room.services.redactors.scrub(None, &runs_page(&rows))))
}

async fn run(
    State(room): State<Arc<Room>>,
    Path(run): Path<String>,
) -> Result<Html<String>, Failed> {
    let page = run_page(
        &room.host,
        room.store.clone(),
        room.services.registry.clone(),
        &run,
    )
    .await?;
    let html = super::pages::run_page(&page);
    Ok(Html(room.services.redactors.scrub(Some(&run), &html)))
}

/// Where a stream starts.
#[derive(serde::Deserialize)]
struct Start {
    from: Option<u64>,
}

async fn run_events(
    State(room): State<Arc<Room>>,
    Path(run): Path<String>,
    Query(query): Query<Start>,
    headers: HeaderMap,
) -> Result<Response, Failed> {
    // A browser reconnecting says the last entry it has; the page says where it stops.
    let from = match headers.get("last-event-id") {
        Some(id) => id
            .to_str()
            .ok()
            .and_then(|id| id.trim().parse::<u64>().ok())
            .map(|last| last + 1)
            .ok_or_else(|| CliError::internal("Last-Event-ID is not a journal entry's number"))
            .map_err(|e| Failed(CliError::new(exit::INVALID_INPUT, e.to_string())))?,
        None => query.from.unwrap_or(0),
    };
    // The run must exist: its status is asked first.
    ask(
        &room.host,
        Request::Status { run: run.clone() },
        |reply| match reply {
            Reply::Status(_) => Ok(()),
            other => Err(other),
        },
    )
    .await?;
    let viewing = room.feeds.view(&run)?;
    Ok(super::sse::run_events(viewing, from))
}

async fn runs_events(State(room): State<Arc<Room>>) -> Response {
    super::sse::runs_events(room.runs.subscribe()).into_response()
}

async fn api_runs(State(room): State<Arc<Room>>) -> Result<Response, Failed> {
    let lines = run_lines(&room.host).await?;
    Ok(json(&room.runs_json(&lines)?))
}

async fn api_run(
    State(room): State<Arc<Room>>,
    Path(run): Path<String>,
) -> Result<Response, Failed> {
    let status = ask(
        &room.host,
        Request::Status { run: run.clone() },
        |reply| match reply {
            Reply::Status(view) => Ok(*view),
            other => Err(other),
        },
    )
    .await?;
    let text =
        serde_json::to_string_pretty(&status).map_err(|e| CliError::internal(e.to_string()))?;
    Ok(json(&room.services.redactors.scrub(Some(&run), &text)))
}

async fn report(
    State(room): State<Arc<Room>>,
    Path(run): Path<String>,
) -> Result<Html<String>, Failed> {
    let report = ask(
        &room.host,
        Request::Report { run: run.clone() },
        |reply| match reply {
            Reply::Report(report) => Ok(*report),
            other => Err(other),
        },
    )
    .await?;
    Ok(Html(
        room.services
            .redactors
            .scrub(Some(&run), &crate::report::html(&report)),
    ))
}

async fn evidence(
    State(room): State<Arc<Room>>,
    Path(run): Path<String>,
) -> Result<Response, Failed> {
    let evidence = ask(
        &room.host,
        Request::Evidence { run: run.clone() },
        |reply| match reply {
            Reply::Evidence(evidence) => Ok(*evidence),
            other => Err(other),
        },
    )
    .await?;
    // As `drctl report RUN --evidence` writes it: its journal was scrubbed when it was
    // written, and changing a byte would break its signatures.
    let text =
        serde_json::to_string_pretty(&evidence).map_err(|e| CliError::internal(e.to_string()))?;
    let mut response = json(&text);
    if let Ok(value) = format!("attachment; filename=\"{run}.evidence.json\"").parse() {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

async fn metrics(State(room): State<Arc<Room>>) -> Result<Response, Failed> {
    let lines = run_lines(&room.host).await?;
    let room2 = room.clone();
    let text = blocking(move || {
        super::metrics::render(
            room2.store.as_ref(),
            &room2.shares,
            lines,
            room2.router.driving().len(),
            &room2.commits,
        )
    })
    .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        room.services.redactors.scrub(None, &text),
    )
        .into_response())
}

/// Ready when the store answers.
async fn ready(State(room): State<Arc<Room>>) -> (StatusCode, String) {
    let store = room.store.clone();
    match blocking(move || Ok(store.run("").map(|_| ())?)).await {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")),
    }
}

fn json(text: &str) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!("{text}\n"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/room.js"),
    )
        .into_response()
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/room.css"),
    )
        .into_response()
}
