//! Signing a vote (SPEC §5.9): what the signer was shown of the run (its digest, the
//! approval's round as the run's machine counts it, the journal's head), and the signed
//! statement naming it.

use std::path::Path;

use super::error::CliError;
use super::session::Session;
use crate::engine::Decision;
use crate::identity::{Head, Signed, Statement, StatementKind, format_time, sign};

/// What a signed vote names of the run as its signer saw it.
#[derive(Debug, Clone)]
pub struct Shown {
    /// The run's digest.
    pub digest: String,
    /// The approval's current round.
    pub round: u32,
    /// The journal's last entry when the signer signed, when it could be read.
    pub head: Option<Head>,
}

/// A vote to sign: who decides what on which approval, and why.
#[derive(Debug, Clone)]
pub struct Vote<'a> {
    /// The run.
    pub run: &'a str,
    /// The approval step.
    pub step: &'a str,
    /// Who.
    pub by: &'a str,
    /// Approve or reject.
    pub decision: Decision,
    /// Why.
    pub comment: Option<&'a str>,
}

impl Session {
    /// The run's digest, approval `step`'s current round and the journal head, read from the
    /// live process or the store: what a signed vote on it names.
    pub fn shown(&self, run: &str, step: &str) -> Result<Shown, CliError> {
        let status = self.status(run)?;
        if !status.steps.iter().any(|s| s.id == step) {
            return Err(CliError::invalid(format!("run {run} has no step `{step}`")));
        }
        // The round as the run's machine counts it, from the journal; its last entry is the
        // head the signer is shown.
        let page = self.journal_from(run, 0)?;
        let round = crate::engine::project(run, &page.entries, None)?
            .step(step)
            .map_or(0, crate::engine::StepProjection::round);
        if round == 0 {
            return Err(CliError::invalid(format!(
                "`{step}` of run {run} is not waiting for approval yet"
            )));
        }
        let head = page.entries.last().map(|last| Head {
            len: last.seq + 1,
            hash: last.hash.clone(),
        });
        Ok(Shown {
            digest: status.digest,
            round,
            head,
        })
    }
}

/// `vote`, signed with `key`, naming what its signer was `shown`.
pub fn sign_vote(vote: &Vote<'_>, shown: Shown, key: &Path) -> Result<Signed, CliError> {
    let statement = Statement {
        kind: match vote.decision {
            Decision::Approve => StatementKind::Approve,
            Decision::Reject => StatementKind::Reject,
        },
        run_id: vote.run.to_string(),
        step: Some(vote.step.to_string()),
        round: Some(shown.round),
        name: vote.by.to_string(),
        comment: vote.comment.map(str::to_string),
        digest: shown.digest,
        at: format_time(chrono::Utc::now()),
        head: shown.head,
    };
    sign(statement, key).map_err(|e| CliError::invalid(e.to_string()))
}
