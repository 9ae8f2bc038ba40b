//! `drctl serve` (SPEC §11): the command line of the agent ([`crate::service::agent`]). On
//! the embedded store, the agent owns the state directory and drives any number of runs
//! handed to it through the control socket. On a shared store, it watches for runs whose
//! driver is gone and takes each over. Either way each run is a task of one runtime.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use prometheus_client::metrics::histogram::Histogram;

use super::error::CliError;
use super::state::Session;
use crate::room::{Door, Parts, Serving, TimedStore, commit_histogram};
use crate::service::agent::{Agent, Say};
use crate::store::Store;

/// Drive many runs at once, and runs whose driver is gone.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Take up the runs that need a driver now, drive them to rest, then exit.
    #[arg(long)]
    pub once: bool,
    /// The agent's SSH key: it signs the journal of every run it drives where the run rests
    /// (SPEC 5.10), as `--name` (default: the host's name). Runs with allowed signers are
    /// driven only with one; their allowed signers must let it sign in the namespace
    /// `drctl-journal` (`agent-use1 namespaces="drctl-journal" ssh-ed25519 ...`).
    #[arg(long, value_name = "PATH")]
    pub key: Option<std::path::PathBuf>,
    /// Serve the incident room (SPEC §12) on ADDR, e.g. `127.0.0.1:8080`: every run of the
    /// store live in a browser, `/metrics`, and signed votes. Loopback only, unless
    /// `--http-token-file` is given.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,
    /// The incident room's token (a file holding it): every request must then carry it
    /// (`Authorization: Bearer TOKEN`; the page asks for it once), and ADDR may be any address.
    #[arg(long, value_name = "FILE", requires = "http")]
    pub http_token_file: Option<std::path::PathBuf>,
}

/// The incident room's door, when `--http` asks for one: bound before the agent starts, so a
/// refused address stops `serve` before anything is driven.
fn door(args: &ServeArgs) -> Result<Option<Door>, CliError> {
    args.http
        .map(|addr| Door::bind(addr, args.http_token_file.as_deref()))
        .transpose()
}

/// The store the agent drives: with the incident room, its commits are timed for `/metrics`.
fn timed(store: Arc<dyn Store>, room: Option<&Door>, commits: &Histogram) -> Arc<dyn Store> {
    match room {
        Some(_) => TimedStore::wrap(store, commits.clone()),
        None => store,
    }
}

/// Opens the incident room on the current runtime, and says where.
fn open_room(door: Option<Door>, parts: Parts) -> Result<Option<Serving>, CliError> {
    let Some(door) = door else {
        return Ok(None);
    };
    outln!("the incident room is at http://{}/", door.addr()?);
    Ok(Some(crate::room::start(door, parts)?))
}

/// Runs `serve`.
pub fn serve(args: &ServeArgs, session: &Session, name: Option<&str>) -> Result<u8, CliError> {
    match session.shared() {
        Some(shared) => serve_shared(args, session, shared),
        None => serve_local(args, session, name),
    }
}

/// The agent of a state directory: drives the runs handed to it through the control socket,
/// and the runs left under way by the process that drove the store before it.
fn serve_local(args: &ServeArgs, session: &Session, name: Option<&str>) -> Result<u8, CliError> {
    let room = door(args)?;
    let commits = commit_histogram();
    let store = timed(session.own()?, room.as_ref(), &commits);
    let say: Say = Arc::new(|line| outln!("{line}"));
    let runtime = runtime()?;
    let driver = args.key.clone().map(|key| {
        (
            name.map_or_else(super::state::hostname, str::to_string),
            key,
        )
    });
    let (agent, router) = Agent::new(
        (store.clone(), session.services().clone()),
        say,
        runtime.handle().clone(),
        driver,
    );
    runtime.block_on(async {
        let host = crate::service::Host::new(store.clone(), router.clone());
        let socket = crate::control::serve(session.dir(), host.clone())
            .map_err(|e| CliError::internal(format!("cannot serve the control socket: {e}")))?;
        let room = open_room(
            room,
            Parts {
                host,
                router: router.clone(),
                store,
                session: session.clone(),
                commits,
            },
        )?;
        outln!(
            "drctl serve (pid {}) drives the runs of {}",
            std::process::id(),
            session.dir().display()
        );
        let taking = agent.clone();
        tokio::task::spawn_blocking(move || taking.take_up_interrupted())
            .await
            .map_err(|e| CliError::internal(e.to_string()))??;
        if args.once {
            let waiting = agent.clone();
            let _ = tokio::task::spawn_blocking(move || waiting.wait()).await;
            socket.close().await;
            drop(room);
            return Ok(super::exit::SUCCESS);
        }
        stopped().await;
        socket.close().await;
        drop(room);
        let left = router.driving();
        if !left.is_empty() {
            outln!(
                "drctl serve stops; left under way: {} (the next drctl serve here takes them up, or `drctl resume RUN`)",
                left.join(", ")
            );
        }
        Ok(super::exit::SUCCESS)
    })
}

/// Waits for Ctrl-C or SIGTERM.
async fn stopped() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// The agent of a shared store: takes over runs whose driver is gone, driving each as a task
/// of one runtime, as on the state directory.
fn serve_shared(
    args: &ServeArgs,
    session: &Session,
    shared: &super::state::Shared,
) -> Result<u8, CliError> {
    let room = door(args)?;
    let commits = commit_histogram();
    let store = timed(session.own()?, room.as_ref(), &commits);
    let say: Say = Arc::new(|line| outln!("{line}"));
    let runtime = runtime()?;
    let driver = args.key.clone().map(|key| (shared.name.clone(), key));
    let (agent, router) = Agent::new(
        (store.clone(), session.services().clone()),
        say,
        runtime.handle().clone(),
        driver,
    );
    // On a shared store the room's reads see every run of the store, whichever agent drives
    // it.
    let room = {
        let host = crate::service::Host::new(store.clone(), router.clone());
        open_room(
            room,
            Parts {
                host,
                router: router.clone(),
                store,
                session: session.clone(),
                commits,
            },
        )?
    };
    // Often enough that a run is taken over within its lease and a fraction of it.
    let poll = (shared.lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let watching = agent.clone();
    let name = shared.name.clone();
    let once = args.once;
    let watch = std::thread::Builder::new()
        .name("takeover".into())
        .spawn(move || watching.watch(&name, poll, once))
        .map_err(|e| CliError::internal(format!("cannot start watching the store: {e}")))?;
    outln!(
        "agent {} (pid {}) serving {} (lease {})",
        shared.name,
        std::process::id(),
        shared.address.endpoints.join(","),
        crate::workflow::format_duration(shared.lease)
    );
    let watched = watch
        .join()
        .map_err(|_| CliError::internal("watching the store failed"));
    drop(room);
    // Held until here: the agent reaches its runs through it.
    drop(router);
    watched??;
    Ok(super::exit::SUCCESS)
}

/// The runtime an agent drives its runs on.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::internal(e.to_string()))
}
