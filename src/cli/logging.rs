//! Where every log line of the process goes (SPEC §9a): one `tracing` subscriber, set up here
//! once, before the command runs. Human lines on stderr, or JSON lines with `--json`; the level
//! from `-v`/`-vv`, or any `RUST_LOG`-style filter in `DRCTL_LOG`.
//!
//! Two things every line goes through on its way out:
//! - the secrets of the runs being driven (`${env.NAME}` values, an events webhook) are
//!   replaced by their placeholder in every form (escaped in a JSON line, line by line...),
//!   whatever logged them (SPEC §5.8.4, §5.8.8): a line in a run's span is scrubbed with that
//!   run's redactor, a line in no run's with every registered run's ([`Redactors`], handed in
//!   by the command line, where each driver registers its run); what is logged is already
//!   scrubbed where it is logged, this is the net under it;
//! - when a live view is on the terminal, the line is written with the view lifted
//!   (`ProgressBar::suspend`) and redrawn under it, so the two never share a line.
//!
//! By default only warnings and errors are shown, so a normal run's terminal is the live view
//! and the event lines alone; `--json` logs at `info` (a machine reads them), `-v` at `info`,
//! `-vv` at `debug` (AWS calls, resolved parameters, outputs, all scrubbed).

use std::io::Write;
use std::sync::{Mutex, PoisonError};

use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::engine::Redactors;
use crate::logs::{FlatJson, RunSpans, Scrubbed};

/// The environment variable holding a `RUST_LOG`-style filter that replaces the levels of
/// `-v`.
pub const FILTER_VAR: &str = "DRCTL_LOG";

/// The live view on the terminal, while one is shown: log lines are written around it.
static LIVE: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// Sets up logging for the process: `json` lines or human ones, at the level `verbose` asks
/// for unless `DRCTL_LOG` says otherwise, every line scrubbed with `redactors`. Called once; a
/// second call changes nothing.
pub fn init(json: bool, verbose: u8, redactors: Redactors) {
    let (filter, bad) = filter(json, verbose, std::env::var(FILTER_VAR).ok().as_deref());
    let layer = if json {
        tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields::new())
            .event_format(Scrubbed::new(FlatJson, redactors))
            .with_writer(LineWriter::default)
            .boxed()
    } else {
        let color = super::color_stderr();
        let format = tracing_subscriber::fmt::format()
            .with_ansi(color)
            .with_target(verbose >= 2);
        tracing_subscriber::fmt::layer()
            .with_writer(LineWriter::default)
            .with_ansi(color)
            .event_format(Scrubbed::new(format, redactors))
            .boxed()
    };
    let _ = tracing_subscriber::registry()
        .with(RunSpans.and_then(layer).with_filter(filter))
        .try_init();
    if let Some(why) = bad {
        tracing::warn!("{FILTER_VAR} is not a valid filter ({why}); using the default levels");
    }
}

/// The filter: `DRCTL_LOG` when it parses, else the level of `-v` (with the reason it did not
/// parse).
fn filter(json: bool, verbose: u8, custom: Option<&str>) -> (EnvFilter, Option<String>) {
    let mut bad = None;
    if let Some(text) = custom.filter(|t| !t.trim().is_empty()) {
        match EnvFilter::builder().parse(text) {
            Ok(filter) => return (filter, None),
            Err(e) => bad = Some(e.to_string()),
        }
    }
    (EnvFilter::new(default_directives(json, verbose)), bad)
}

/// The levels of `-v`: warnings by default (a quiet terminal), drctl's `info` with `-v` or
/// `--json`, its `debug` with `-vv`, and everyone's `debug` (the AWS SDK's too) with `-vvv`.
fn default_directives(json: bool, verbose: u8) -> &'static str {
    match (verbose, json) {
        (0, false) => "warn",
        (0 | 1, _) => "warn,drctl=info",
        (2, _) => "warn,drctl=debug",
        _ => "debug,drctl=trace",
    }
}

/// Shows log lines above `bar` while it is on the terminal (`None` when it is gone).
pub(crate) fn around_live_view(bar: Option<indicatif::ProgressBar>) {
    *LIVE.lock().unwrap_or_else(PoisonError::into_inner) = bar;
}

/// One log line, collected and written whole when the formatter is done with it.
#[derive(Default)]
struct LineWriter {
    line: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let write = || {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&self.line);
            let _ = err.flush();
        };
        let live = LIVE.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match live {
            Some(bar) if !bar.is_hidden() => bar.suspend(write),
            _ => write(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_keeps_the_terminal_quiet_and_v_adds_detail() {
        assert_eq!(default_directives(false, 0), "warn");
        assert_eq!(default_directives(false, 1), "warn,drctl=info");
        assert_eq!(default_directives(true, 0), "warn,drctl=info");
        assert_eq!(default_directives(false, 2), "warn,drctl=debug");
        assert_eq!(default_directives(true, 3), "debug,drctl=trace");
    }

    #[test]
    fn drctl_log_replaces_the_levels_and_a_bad_one_is_reported() {
        let (f, bad) = filter(false, 0, Some("drctl::engine=trace"));
        assert!(bad.is_none());
        assert_eq!(f.to_string(), "drctl::engine=trace");
        let (f, bad) = filter(false, 1, Some("drctl=[[["));
        assert!(bad.is_some());
        assert_eq!(f.to_string(), EnvFilter::new("warn,drctl=info").to_string());
    }
}
