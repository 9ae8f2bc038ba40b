//! An approval step's policy, read once from the `approval` action's checked parameters (by
//! `dag`, which compiles it into the step): who may vote, how many approvals pass it, how
//! long it waits and what its timeout decides. The engine, the checks, the printers and the
//! action's own description read this; none of them reads the parameters by key.

use std::time::Duration;

use super::{Arg, Args};

/// What an approval's timeout decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTimeout {
    /// Nobody decided in time: no (the default).
    Reject,
    /// Nobody decided in time: yes.
    Approve,
}

/// Who decides an approval, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalPolicy {
    /// Who may approve, as listed.
    pub approvers: Vec<String>,
    /// How many distinct approvals pass it.
    pub quorum: usize,
    /// How long it waits for the decision.
    pub timeout: Option<Duration>,
    /// What its timeout decides.
    pub on_timeout: OnTimeout,
    /// Whether the person who started the run may approve it.
    pub allow_self_approval: bool,
    /// What the approvers are asked, when the step says.
    pub message: Option<String>,
}

/// Why someone may not vote on an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Barred {
    /// They are not listed among its approvers.
    NotAnApprover,
    /// They started the run, and self-approval is not allowed.
    StartedTheRun,
    /// Their key signed the run's start, and self-approval is not allowed: one key is one
    /// person, whatever names the allowed signers give it.
    SignedTheStart,
}

/// Who votes: a name, and the fingerprint of the key that signs for it (runs with allowed
/// signers).
#[derive(Debug, Clone, Copy)]
pub struct Voter<'a> {
    /// The name.
    pub name: &'a str,
    /// The signing key's fingerprint.
    pub key: Option<&'a str>,
}

impl ApprovalPolicy {
    /// The policy the `approval` action's checked parameters describe.
    pub fn from_args(args: &Args) -> Self {
        Self {
            approvers: match args.get("approvers") {
                Some(Arg::List(items)) => items.iter().map(ToString::to_string).collect(),
                _ => Vec::new(),
            },
            quorum: args
                .integer("quorum")
                .map_or(1, |q| usize::try_from(q).unwrap_or(1)),
            timeout: args.duration("timeout"),
            on_timeout: match args
                .get("on_timeout")
                .and_then(Arg::literal_text)
                .as_deref()
            {
                Some("approve") => OnTimeout::Approve,
                _ => OnTimeout::Reject,
            },
            allow_self_approval: args.bool("allow_self_approval") == Some(true),
            message: args.get("message").map(ToString::to_string),
        }
    }

    /// Whether `voter` may vote on this approval in a run `initiator` started: listed among
    /// its approvers, and (unless self-approval is allowed) neither the initiator's name nor
    /// the initiator's key. The one rule of who may vote, for the machine that records votes,
    /// its audit, and the terminal that offers to vote.
    pub fn may_vote(&self, voter: Voter<'_>, initiator: Voter<'_>) -> Result<(), Barred> {
        if !self.approvers.iter().any(|a| a == voter.name) {
            return Err(Barred::NotAnApprover);
        }
        if self.allow_self_approval {
            return Ok(());
        }
        if voter.name == initiator.name {
            return Err(Barred::StartedTheRun);
        }
        match (voter.key, initiator.key) {
            (Some(mine), Some(theirs)) if mine == theirs => Err(Barred::SignedTheStart),
            _ => Ok(()),
        }
    }

    /// What its timeout decides, in the workflow's words.
    pub fn on_timeout_word(&self) -> &'static str {
        match self.on_timeout {
            OnTimeout::Reject => "reject",
            OnTimeout::Approve => "approve",
        }
    }

    /// Its approvers as the workflow lists them, for people: `[alice, bob]`.
    pub fn approvers_shown(&self) -> String {
        format!("[{}]", self.approvers.join(", "))
    }
}
