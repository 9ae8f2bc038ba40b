//! Requests and responses on the control socket: one JSON object per line each way, a
//! request line at most [`MAX_REQUEST`] bytes.

use serde::{Deserialize, Serialize};

use crate::engine::{Choice, Decision};

/// The longest request line the live process reads (its newline not counted). Every real
/// request is far shorter; a longer one is refused and its connection dropped.
pub const MAX_REQUEST: usize = 64 * 1024;

/// Reads one request line (without its newline). Any bytes give a request or a sentence
/// saying why they are not one; nothing panics.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    if line.len() > MAX_REQUEST {
        return Err(format!(
            "the request is longer than {} KiB",
            MAX_REQUEST / 1024
        ));
    }
    let text = std::str::from_utf8(line)
        .map_err(|e| format!("bad request: it is not UTF-8 text ({e})"))?;
    serde_json::from_str(text).map_err(|e| format!("bad request: {e}"))
}

/// What another process asks the live one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Which run is live here.
    Active,
    /// The status view of a run (as `drctl status --format json` prints it).
    Status {
        /// The run.
        run: String,
    },
    /// Every run (as `drctl runs --format json` prints it).
    Runs,
    /// The report of a run, as JSON.
    Report {
        /// The run.
        run: String,
    },
    /// The evidence of a run (`drctl report --format evidence`).
    Evidence {
        /// The run.
        run: String,
    },
    /// Median step durations of a workflow's past succeeded runs, and their number.
    Medians {
        /// The workflow's name.
        workflow: String,
    },
    /// The history of a workflow, as JSON.
    History {
        /// The workflow's name.
        workflow: String,
    },
    /// A decision on an approval.
    Decide {
        /// The run.
        run: String,
        /// The approval step.
        step: String,
        /// Who.
        by: String,
        /// Approve or reject.
        decision: Decision,
        /// Why.
        comment: Option<String>,
    },
    /// A signed decision on an approval (SPEC §5.9): who and what are in the signed statement.
    DecideSigned {
        /// The run.
        run: String,
        /// The signed decision, as `identity::Signed` serializes it.
        signed: serde_json::Value,
    },
    /// Stop starting new steps.
    Cancel {
        /// The run.
        run: String,
        /// Who.
        by: String,
    },
    /// Start a run and drive it here (`drctl run FILE` handing its run to `drctl serve`).
    Start(Box<StartRequest>),
    /// Take a stored run up and drive it here (`drctl resume` or `rollback` handing it to
    /// `drctl serve`).
    TakeUp {
        /// The run.
        run: String,
        /// Who.
        by: String,
        /// Resume or roll back.
        how: TakeUpHow,
    },
    /// A run's journal from entry `from` on, and whether this process still drives the run
    /// (what a command following a run in the foreground polls).
    Journal {
        /// The run.
        run: String,
        /// The first entry wanted.
        from: u64,
    },
}

/// A run handed to `drctl serve`: what `drctl run FILE` read and was told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartRequest {
    /// The workflow file, as an absolute path (relative paths in steps are taken from it).
    pub file: String,
    /// Its text, as the command read it.
    pub source: String,
    /// `--param` overrides, `name=value`.
    pub overrides: Vec<String>,
    /// `run` or `drill`.
    pub mode: String,
    /// Who starts it.
    pub initiator: String,
    /// `--incident-start`, RFC 3339.
    pub incident_start: Option<String>,
    /// `--key`, as an absolute path: the start is signed with it.
    pub key: Option<String>,
}

/// How a stored run is taken up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "purpose", rename_all = "snake_case")]
pub enum TakeUpHow {
    /// `drctl resume`.
    Resume {
        /// Decisions on steps.
        choices: Vec<(String, Choice)>,
        /// `--allow-changed-workflow`.
        allow_changed: bool,
        /// `--key`, as an absolute path: a changed workflow is signed with it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    /// `drctl rollback`.
    Rollback,
}

/// What [`Request::Journal`] answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JournalPage {
    /// Entries from the one asked for on.
    pub entries: Vec<crate::store::JournalEntry>,
    /// Whether this process still drives the run: when it does not, `entries` run to the
    /// journal's end.
    pub driving: bool,
}

impl Request {
    /// The run a decision or a cancel is about; `None` for reads.
    pub fn decision_run(&self) -> Option<&str> {
        match self {
            Request::Decide { run, .. }
            | Request::DecideSigned { run, .. }
            | Request::Cancel { run, .. } => Some(run),
            _ => None,
        }
    }
}

/// The live process's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request was taken.
    pub ok: bool,
    /// The data asked for, or null.
    pub data: serde_json::Value,
    /// Why it was refused, when it was.
    pub error: Option<String>,
    /// The exit code a refusal stands for, when it is not invalid input (2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
}

impl Response {
    /// A positive answer.
    pub fn data(data: serde_json::Value) -> Self {
        Self {
            ok: true,
            data,
            error: None,
            code: None,
        }
    }

    /// A refusal.
    pub fn refused(error: impl Into<String>) -> Self {
        Self {
            ok: false,
            data: serde_json::Value::Null,
            error: Some(error.into()),
            code: None,
        }
    }

    /// A refusal that stands for exit code `code` (a run already active is 6, say).
    pub fn refused_with(code: u8, error: impl Into<String>) -> Self {
        Self {
            code: Some(code),
            ..Self::refused(error)
        }
    }
}
