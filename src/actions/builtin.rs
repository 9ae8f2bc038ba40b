//! The actions that need no cloud: `shell`, `http.check`, `wait`, `approval`, `notify`, `noop`.

use std::time::Duration;

use super::builtin_exec as exec;
use super::schema::{ParamSpec as P, ParamType as T};
use super::{Action, ActionSpec, ArgProblem, Args, Effect};
use crate::workflow::format_duration;

pub(super) fn all() -> Vec<Box<dyn Action>> {
    vec![
        Box::new(Shell),
        Box::new(HttpCheck),
        Box::new(Wait),
        Box::new(Approval),
        Box::new(Notify),
        Box::new(Noop),
    ]
}

struct Shell;

static SHELL: ActionSpec = ActionSpec {
    name: "shell",
    summary: "Run a program with arguments (no shell interpolation); fails on a non-zero exit code.",
    params: &[
        P::required(
            "argv",
            T::StringList,
            "program and arguments; use [\"sh\", \"-c\", \"...\"] for a shell",
        ),
        P::optional("env", T::StringTable, "extra environment variables"),
        P::optional("cwd", T::String, "working directory"),
    ],
    outputs: &["exit_code", "stdout_tail"],
    idempotent: false,
    effect: Effect::Irreversible,
};

impl Action for Shell {
    fn spec(&self) -> &'static ActionSpec {
        &SHELL
    }

    fn describe(&self, args: &Args) -> String {
        let mut out = format!("run `{}`", command_line(args));
        if let Some(cwd) = args.get("cwd") {
            out.push_str(&format!(" in {cwd}"));
        }
        out
    }

    hooks! {
        execute = exec::shell,
    }
}

fn command_line(args: &Args) -> String {
    match args.get("argv") {
        Some(super::Arg::List(items)) => items
            .iter()
            .map(|i| {
                let s = i.to_string();
                if s.contains(' ') || s.is_empty() {
                    format!("'{s}'")
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        Some(other) => other.to_string(),
        None => "?".into(),
    }
}

struct HttpCheck;

static HTTP_CHECK: ActionSpec = ActionSpec {
    name: "http.check",
    summary: "Poll a URL until it answers with the expected status (and body), within the step's timeout.",
    params: &[
        P::required("url", T::Url, "the URL to poll"),
        P::defaulted(
            "method",
            T::OneOf(&["GET", "HEAD", "POST", "PUT", "OPTIONS"]),
            "GET",
            "HTTP method",
        ),
        P::defaulted(
            "expect_status",
            T::Integer { min: 100, max: 599 },
            "200",
            "status that counts as healthy",
        ),
        P::optional(
            "expect_body_contains",
            T::String,
            "text the body must contain",
        ),
        P::defaulted("interval", T::Duration, "5s", "time between polls"),
    ],
    outputs: &["status"],
    idempotent: true,
    effect: Effect::ReadOnly,
};

impl Action for HttpCheck {
    fn spec(&self) -> &'static ActionSpec {
        &HTTP_CHECK
    }

    fn describe(&self, args: &Args) -> String {
        let mut out = format!(
            "poll {} {} every {} until it answers {}",
            args.show_or("method", "GET"),
            args.show("url"),
            args.show_or("interval", "5s"),
            args.show_or("expect_status", "200"),
        );
        if let Some(body) = args.get("expect_body_contains") {
            out.push_str(&format!(" with a body containing \"{body}\""));
        }
        out
    }

    hooks! {
        execute = exec::http_check,
    }
}

struct Wait;

static WAIT: ActionSpec = ActionSpec {
    name: "wait",
    summary: "Wait for a fixed time (let caches expire, let traffic drain).",
    params: &[P::required("duration", T::Duration, "how long to wait")],
    outputs: &[],
    idempotent: true,
    effect: Effect::ReadOnly,
};

impl Action for Wait {
    fn spec(&self) -> &'static ActionSpec {
        &WAIT
    }

    fn describe(&self, args: &Args) -> String {
        format!("wait {}", args.show("duration"))
    }

    fn duration_hint(&self, args: &Args) -> Option<Duration> {
        args.duration("duration")
    }

    hooks! {
        execute = exec::sleep_for,
    }
}

struct Approval;

/// The `approval` action's declaration: the one action people complete, whose parameters
/// `dag` compiles into an approval policy.
pub static APPROVAL: ActionSpec = ActionSpec {
    name: "approval",
    summary: "Wait for people to approve: a quorum of listed approvers, or one rejection, or the timeout.",
    params: &[
        P::required("approvers", T::StringList, "who may approve").literal(),
        P::defaulted(
            "quorum",
            T::Integer { min: 1, max: 100 },
            "1",
            "how many distinct approvals are needed",
        )
        .literal(),
        P::required("timeout", T::Duration, "how long to wait for the decision").literal(),
        P::defaulted(
            "on_timeout",
            T::OneOf(&["reject", "approve"]),
            "reject",
            "the decision when nobody decided in time",
        )
        .literal(),
        P::defaulted(
            "allow_self_approval",
            T::Bool,
            "false",
            "whether the person who started the run may approve",
        )
        .literal(),
        P::optional("message", T::String, "what the approvers are asked"),
    ],
    outputs: &["approved_by"],
    idempotent: true,
    effect: Effect::ReadOnly,
};

impl Action for Approval {
    fn spec(&self) -> &'static ActionSpec {
        &APPROVAL
    }

    fn check(&self, args: &Args) -> Vec<ArgProblem> {
        let mut problems = Vec::new();
        if let (Some(super::Arg::List(_)), Some(quorum)) =
            (args.get("approvers"), args.integer("quorum"))
        {
            let policy = super::ApprovalPolicy::from_args(args);
            let distinct: std::collections::BTreeSet<&String> = policy.approvers.iter().collect();
            if usize::try_from(quorum).unwrap_or(usize::MAX) > distinct.len() {
                problems.push(ArgProblem {
                    param: Some("quorum"),
                    message: format!(
                        "quorum {quorum} can never be reached: only {} distinct approver(s) are listed",
                        distinct.len()
                    ),
                });
            }
        }
        problems
    }

    fn describe(&self, args: &Args) -> String {
        let policy = super::ApprovalPolicy::from_args(args);
        // The timeout as written (`90m` stays `90m`).
        let mut out = format!(
            "wait up to {} for {} approval(s) from {}; on timeout: {}",
            args.show("timeout"),
            policy.quorum,
            policy.approvers_shown(),
            policy.on_timeout_word(),
        );
        if policy.allow_self_approval {
            out.push_str("; the initiator may approve");
        }
        out
    }

    fn own_timeout(&self, args: &Args) -> Option<Duration> {
        super::ApprovalPolicy::from_args(args).timeout
    }

    /// The engine waits for decisions; there is nothing to execute.
    fn executable(&self) -> bool {
        true
    }
}

struct Notify;

static NOTIFY: ActionSpec = ActionSpec {
    name: "notify",
    summary: "POST a JSON message to a webhook (Slack-compatible body).",
    params: &[
        P::required(
            "url",
            T::Url,
            "the webhook URL; use ${env.NAME} to keep it out of the file",
        ),
        P::required("message", T::String, "the text to send"),
        P::optional("channel", T::String, "channel, for webhooks that take one"),
    ],
    outputs: &[],
    idempotent: false,
    effect: Effect::Notification,
};

impl Action for Notify {
    fn spec(&self) -> &'static ActionSpec {
        &NOTIFY
    }

    fn describe(&self, args: &Args) -> String {
        let channel = args
            .get("channel")
            .map(|c| format!(" to {c}"))
            .unwrap_or_default();
        format!(
            "post \"{}\"{channel} to the webhook {}",
            args.show("message"),
            args.show("url")
        )
    }

    hooks! {
        execute = exec::notify,
    }
}

struct Noop;

static NOOP: ActionSpec = ActionSpec {
    name: "noop",
    summary: "Do nothing, optionally for a while: a placeholder in drills and benchmarks.",
    params: &[P::optional("duration", T::Duration, "how long to take")],
    outputs: &[],
    idempotent: true,
    effect: Effect::ReadOnly,
};

impl Action for Noop {
    fn spec(&self) -> &'static ActionSpec {
        &NOOP
    }

    fn describe(&self, args: &Args) -> String {
        match args.duration("duration") {
            Some(d) => format!("do nothing for {}", format_duration(d)),
            None => "do nothing".into(),
        }
    }

    fn duration_hint(&self, args: &Args) -> Option<Duration> {
        args.duration("duration")
    }

    hooks! {
        execute = exec::sleep_for,
    }
}
