//! Requests and responses on the control socket: one JSON object per line each way, a
//! request line at most [`MAX_REQUEST`] bytes.

use serde::{Deserialize, Serialize};

use crate::engine::Decision;

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
}

impl Response {
    /// A positive answer.
    pub fn data(data: serde_json::Value) -> Self {
        Self {
            ok: true,
            data,
            error: None,
        }
    }

    /// A refusal.
    pub fn refused(error: impl Into<String>) -> Self {
        Self {
            ok: false,
            data: serde_json::Value::Null,
            error: Some(error.into()),
        }
    }
}
