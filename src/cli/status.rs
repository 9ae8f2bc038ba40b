//! `drctl status [RUN]` and `drctl runs`: where runs stand. Served by the live process when
//! there is one.

use clap::{Args, ValueEnum};
use serde_json::Value;

use super::error::CliError;
use super::state::Session;

/// Output format of read commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataFormat {
    /// For people.
    Text,
    /// For machines.
    Json,
}

/// Show where a run stands.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The run (default: the most recent).
    pub run: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DataFormat::Text)]
    pub format: DataFormat,
}

/// List runs.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = DataFormat::Text)]
    pub format: DataFormat,
}

fn print_out(result: Result<String, CliError>) -> Result<u8, CliError> {
    out!("{}", result?);
    Ok(super::exit::SUCCESS)
}

/// Runs `status`.
pub fn status(args: &StatusArgs, session: &Session) -> Result<u8, CliError> {
    print_out((|| {
        let run = match &args.run {
            Some(r) => r.clone(),
            None => {
                let runs = session.runs()?;
                runs.as_array()
                    .and_then(|a| a.last())
                    .and_then(|r| r["run_id"].as_str())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        CliError::invalid("there are no runs in this state directory yet")
                    })?
            }
        };
        let v = session.status(&run)?;
        Ok(match args.format {
            DataFormat::Json => {
                format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
            }
            DataFormat::Text => render_status(&v),
        })
    })())
}

/// The versions of a run's workflow, when it was changed on resume (SPEC §5.8.7).
fn render_versions(v: &Value, out: &mut String) {
    let versions = v["versions"].as_array().map_or(&[][..], Vec::as_slice);
    if versions.len() < 2 {
        return;
    }
    out.push_str("  workflow changed on resume; versions:\n");
    for (n, version) in versions.iter().enumerate() {
        let version: Option<crate::stored::WorkflowVersion> =
            serde_json::from_value(version.clone()).ok();
        if let Some(version) = version {
            out.push_str(&format!(
                "    {}. {}\n",
                n + 1,
                crate::report::version_line(&version)
            ));
        }
    }
}

fn render_status(v: &Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or("-").to_string();
    let mut out = format!(
        "run {}  {} ({})  {}\n",
        s("run_id"),
        s("workflow"),
        s("mode"),
        s("status").to_uppercase()
    );
    out.push_str(&format!(
        "  started {} by {}",
        s("started_at"),
        s("initiator")
    ));
    if let Some(f) = v["finished_at"].as_str() {
        out.push_str(&format!(", stopped {f}"));
    }
    out.push('\n');
    let owner = &v["driven_by"];
    if owner.is_object() {
        out.push_str(&format!(
            "  driven by {} (pid {} on {}) since {}\n",
            owner["name"].as_str().unwrap_or("?"),
            owner["pid"],
            owner["host"].as_str().unwrap_or("?"),
            owner["since"].as_str().unwrap_or("?")
        ));
    }
    render_versions(v, &mut out);
    let journal = &v["journal"];
    if journal["intact"].as_bool() == Some(true) {
        out.push_str(&format!(
            "  journal: {} entries, hash chain intact\n",
            journal["entries"]
        ));
    } else {
        out.push_str(&format!(
            "  journal: {} entries, HASH CHAIN BROKEN: {}\n",
            journal["entries"],
            journal["problem"].as_str().unwrap_or("?")
        ));
    }
    if s("status") == "interrupted" {
        out.push_str(&format!(
            "  interrupted: stored as {}, but the drctl process that drove it{} is gone; continue with `drctl resume {}`\n",
            s("stored_status"),
            v["pid"]
                .as_u64()
                .map(|p| format!(" (pid {p})"))
                .unwrap_or_default(),
            s("run_id")
        ));
    }
    if let Some(reason) = v["paused_reason"].as_str() {
        out.push_str(&format!(
            "  paused: {}\n",
            reason.replace("RUN", &s("run_id"))
        ));
    }
    for step in v["steps"].as_array().into_iter().flatten() {
        let status = step["status"].as_str().unwrap_or("?");
        let mark = match status {
            "succeeded" => "ok",
            "failed" => "!!",
            "running" => "..",
            "awaiting_approval" => "??",
            "unknown" => "?!",
            "rolled_back" => "<-",
            "skipped" => "--",
            _ => "  ",
        };
        let attempts = step["attempts"].as_u64().unwrap_or(0);
        let mut line = format!(
            "  [{mark}] {:<28} {status}",
            step["id"].as_str().unwrap_or("?")
        );
        if attempts > 1 {
            line.push_str(&format!(" ({attempts} attempts)"));
        }
        if let Some(e) = step["error"].as_str() {
            line.push_str(&format!(": {e}"));
        }
        out.push_str(&line);
        out.push('\n');
        for vote in step["votes"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "         {} by {}, {}\n",
                vote["decision"].as_str().unwrap_or("?"),
                vote["by"].as_str().unwrap_or("?"),
                vote["verification"].as_str().unwrap_or("?")
            ));
        }
    }
    out
}

/// Runs `runs`.
pub fn runs(args: &RunsArgs, session: &Session) -> Result<u8, CliError> {
    print_out((|| {
        let v = session.runs()?;
        Ok(match args.format {
            DataFormat::Json => {
                format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default())
            }
            DataFormat::Text => {
                let runs = v.as_array().cloned().unwrap_or_default();
                if runs.is_empty() {
                    return Ok("no runs yet\n".to_string());
                }
                let mut out = format!(
                    "{:<26} {:<28} {:<6} {:<18} {}\n",
                    "RUN", "WORKFLOW", "MODE", "STATUS", "STARTED"
                );
                let mut interrupted = Vec::new();
                for r in runs {
                    let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
                    out.push_str(&format!(
                        "{:<26} {:<28} {:<6} {:<18} {}\n",
                        s("run_id"),
                        s("workflow"),
                        s("mode"),
                        s("status"),
                        s("started_at")
                    ));
                    if s("status") == "interrupted" {
                        interrupted.push(s("run_id"));
                    }
                }
                for run in interrupted {
                    out.push_str(&format!(
                        "run {run} was interrupted (its drctl process is gone): continue it with `drctl resume {run}`\n"
                    ));
                }
                out
            }
        })
    })())
}
