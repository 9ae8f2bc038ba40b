//! Requests and replies on the control socket, and in a run's inbox on a shared store: one
//! JSON object per line each way, a request line at most [`MAX_REQUEST`] bytes. Both carry the
//! protocol's version ([`PROTOCOL_VERSION`], field `v`): a process never acts on a request of
//! another version, and says so in words the other side can show.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::engine::{Choice, Decision, Input};
use crate::evidence::Evidence;
use crate::identity::Signed;
use crate::report::{History, Report};
use crate::view::{RunLine, StatusView};

/// The version of this protocol. 1 was the untyped protocol of drctl builds before it (no `v`
/// field, answers carrying untyped `data`).
pub const PROTOCOL_VERSION: u32 = 2;

/// The longest request line the live process reads (its newline not counted): room for the
/// text of a workflow of tens of thousands of steps, which a start carries. A longer one is
/// refused and its connection dropped.
pub const MAX_REQUEST: usize = 8 * 1024 * 1024;

/// The part of a request line any connection may hold. A line longer than that (a start's
/// workflow, mostly) is read only by a few connections at once (the server's bound), so that
/// the memory held by lines being read stays bounded whatever the crowd.
pub const SMALL_REQUEST: usize = 64 * 1024;

/// `bytes` in words: `8 MiB`, `64 KiB`.
pub fn size(bytes: usize) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

/// A request as it travels: the protocol version beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub v: u32,
    /// What it asks.
    #[serde(flatten)]
    pub request: Request,
}

impl Envelope {
    /// `request`, of this protocol version.
    pub fn new(request: Request) -> Self {
        Self {
            v: PROTOCOL_VERSION,
            request,
        }
    }
}

/// The version a message says it is of (0 when it says none).
#[derive(Deserialize)]
struct Version {
    #[serde(default)]
    v: u32,
}

/// Reads one request line (without its newline). Any bytes give a request or a sentence
/// saying why they are not one; nothing panics.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    if line.len() > MAX_REQUEST {
        return Err(format!("the request is longer than {}", size(MAX_REQUEST)));
    }
    let text = std::str::from_utf8(line)
        .map_err(|e| format!("bad request: it is not UTF-8 text ({e})"))?;
    let version: Version = serde_json::from_str(text).map_err(|e| format!("bad request: {e}"))?;
    if version.v != PROTOCOL_VERSION {
        return Err(other_version(version.v));
    }
    let envelope: Envelope = serde_json::from_str(text).map_err(|e| format!("bad request: {e}"))?;
    Ok(envelope.request)
}

/// Why a message of protocol version `v` is not acted on.
pub fn other_version(v: u32) -> String {
    let theirs = match v {
        0 | 1 => "a drctl from before protocol versions (1)".to_string(),
        v => format!("control protocol {v}"),
    };
    format!(
        "this drctl speaks control protocol {PROTOCOL_VERSION} and the other side speaks {theirs}: nothing was done; use the same drctl version for the command and the process that drives the runs"
    )
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
    /// A decision on a run: a vote, a signed vote, a cancel.
    Decide(RunDecision),
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

/// A decision on a run, wherever it is taken: the socket, a run's inbox, or the store of a run
/// nobody drives. The run's machine judges it the same way on every path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunDecision {
    /// A vote on an approval, by name.
    Vote {
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
    /// A signed vote (SPEC §5.9): who and what are in the signed statement.
    Signed {
        /// The signed decision.
        signed: Box<Signed>,
    },
    /// Stop starting new steps.
    Cancel {
        /// The run.
        run: String,
        /// Who.
        by: String,
    },
}

impl RunDecision {
    /// The run it is about.
    pub fn run(&self) -> &str {
        match self {
            RunDecision::Vote { run, .. } | RunDecision::Cancel { run, .. } => run,
            RunDecision::Signed { signed } => &signed.statement.run_id,
        }
    }

    /// The input it is to the run's machine.
    pub fn input(&self) -> Input {
        match self.clone() {
            RunDecision::Vote {
                step,
                by,
                decision,
                comment,
                ..
            } => Input::Vote {
                step,
                by,
                decision,
                comment,
            },
            RunDecision::Signed { signed } => Input::SignedVote {
                signed: serde_json::to_value(&*signed).unwrap_or_default(),
            },
            RunDecision::Cancel { by, .. } => Input::Cancel { by },
        }
    }
}

/// A run handed to `drctl serve`: what `drctl run FILE` read and was told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartRequest {
    /// The workflow file, as an absolute path (relative paths in steps are taken from it).
    pub file: String,
    /// Its text, as the command read it.
    pub source: String,
    /// `--param` overrides, `name=value`.
    pub overrides: Vec<crate::dag::Override>,
    /// `run` or `drill`.
    pub mode: crate::store::RunMode,
    /// Who starts it.
    pub initiator: String,
    /// `--incident-start`, RFC 3339.
    #[serde(default, with = "crate::time::stored_opt")]
    pub incident_start: Option<chrono::DateTime<chrono::Utc>>,
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

/// What the live process says it is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Active {
    /// Its pid.
    pub pid: u32,
    /// Whether it is `drctl serve` (else a `drctl run` driving one run from a terminal).
    pub agent: bool,
    /// The runs it drives.
    pub runs: Vec<String>,
}

/// What [`Request::Journal`] answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JournalPage {
    /// Entries from the one asked for on.
    pub entries: Vec<crate::store::JournalEntry>,
    /// Whether this process still drives the run: when it does not, `entries` run to the
    /// journal's end.
    pub driving: bool,
}

/// What the agent answers when it took a run: what a follower needs to replay it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Taken {
    /// The run.
    pub run_id: String,
    /// The agent's pid.
    pub pid: u32,
    /// Who started the run.
    pub initiator: String,
    /// The workflow file as recorded.
    pub file: String,
    /// The text the agent compiled (with `overrides`).
    pub text: String,
    /// The run's `--param` overrides, `name=value`.
    pub overrides: Vec<crate::dag::Override>,
}

/// What the live process answers a request with, typed by request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Reply {
    /// To [`Request::Active`].
    Active(Active),
    /// To [`Request::Status`]: the status view, as `drctl status --format json` prints it.
    Status(Box<StatusView>),
    /// To [`Request::Runs`]: as `drctl runs --format json` prints it.
    Runs(Vec<RunLine>),
    /// To [`Request::Report`].
    Report(Box<Report>),
    /// To [`Request::Evidence`].
    Evidence(Box<Evidence>),
    /// To [`Request::Medians`]: median seconds by step, and how many runs they come from.
    Medians(HashMap<String, f64>, usize),
    /// To [`Request::History`].
    History(Box<History>),
    /// To [`Request::Journal`].
    Journal(JournalPage),
    /// To [`Request::Decide`]: the run's machine took the decision, and it is durable.
    Decided,
    /// To [`Request::Start`] and [`Request::TakeUp`].
    Taken(Box<Taken>),
}

/// Why a request was not done: the sentence a person reads, and the exit code it stands for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    /// Why.
    pub error: String,
    /// The exit code the refusal stands for, when it is not invalid input (2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
}

/// The live process's answer: its version, and a reply or a refusal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// [`PROTOCOL_VERSION`] of the process that answered.
    pub v: u32,
    /// Whether the request was done.
    pub ok: bool,
    /// What it answered, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
    /// Why it refused, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The exit code a refusal stands for, when it is not invalid input (2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
}

impl Response {
    /// A reply.
    pub fn reply(reply: Reply) -> Self {
        Self {
            v: PROTOCOL_VERSION,
            ok: true,
            reply: Some(reply),
            error: None,
            code: None,
        }
    }

    /// A refusal.
    pub fn refused(error: impl Into<String>) -> Self {
        Self {
            v: PROTOCOL_VERSION,
            ok: false,
            reply: None,
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

    /// The reply, or the refusal; an answer of another protocol version is a refusal that
    /// says so.
    pub fn into_result(self) -> Result<Reply, Refusal> {
        if self.v != PROTOCOL_VERSION {
            return Err(Refusal {
                error: other_version(self.v),
                code: None,
            });
        }
        match (self.ok, self.reply) {
            (true, Some(reply)) => Ok(reply),
            (true, None) => Err(Refusal {
                error: "the live process answered without a reply".into(),
                code: None,
            }),
            (false, _) => Err(Refusal {
                error: self.error.unwrap_or_default(),
                code: self.code,
            }),
        }
    }
}

/// Reads one answer line; an answer that is not one of this protocol is a refusal saying why.
pub fn parse_response(line: &[u8]) -> Response {
    match serde_json::from_slice::<Version>(line) {
        Ok(Version { v }) if v != PROTOCOL_VERSION => Response {
            v,
            ..Response::refused(other_version(v))
        },
        _ => serde_json::from_slice(line).unwrap_or_else(|e| {
            Response::refused(format!("the live process gave an unreadable answer: {e}"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_of_another_version_is_refused_in_words() {
        let unversioned = br#"{"op":"runs"}"#;
        let why = parse_request(unversioned).unwrap_err();
        assert!(why.contains("before protocol versions"), "{why}");
        let newer = br#"{"v":3,"op":"runs"}"#;
        let why = parse_request(newer).unwrap_err();
        assert!(why.contains("control protocol 3"), "{why}");
        assert_eq!(
            parse_request(br#"{"v":2,"op":"runs"}"#).unwrap(),
            Request::Runs
        );
    }

    #[test]
    fn a_decision_travels_typed_and_comes_back_the_same() {
        let decision = Request::Decide(RunDecision::Vote {
            run: "r1".into(),
            step: "gate".into(),
            by: "bob".into(),
            decision: Decision::Reject,
            comment: Some("replica lag".into()),
        });
        let line = serde_json::to_vec(&Envelope::new(decision.clone())).unwrap();
        assert_eq!(parse_request(&line).unwrap(), decision);
    }

    #[test]
    fn an_answer_of_another_version_is_a_refusal_that_says_so() {
        let old = br#"{"ok":true,"data":null,"error":null}"#;
        let refusal = parse_response(old).into_result().unwrap_err();
        assert!(
            refusal.error.contains("before protocol versions"),
            "{refusal:?}"
        );
        let line = serde_json::to_vec(&Response::reply(Reply::Decided)).unwrap();
        assert!(matches!(
            parse_response(&line).into_result(),
            Ok(Reply::Decided)
        ));
        let refused = serde_json::to_vec(&Response::refused_with(6, "busy")).unwrap();
        let refusal = parse_response(&refused).into_result().unwrap_err();
        assert_eq!((refusal.error.as_str(), refusal.code), ("busy", Some(6)));
    }
}
