//! Replaying a journal against the run's own rules (SPEC §5.9, §5.10). Every signed event is
//! verified against the allowed signers the run captured, at the moment it was journaled:
//! the run's start, every vote (through the same checks a vote meets when it arrives), and
//! the driver's signatures on the journal. Every decision the journal records is held to the
//! state machine's rules: a gate passes only with its quorum of distinct keys, nobody
//! approves their own run, no step starts before every approval above it has passed.
//!
//! Loading a run to drive it uses this (a run whose journal does not hold up is never driven
//! further), and so does the evidence verifier. It reads; it never writes.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use petgraph::graph::NodeIndex;
use petgraph::visit::Dfs;

use super::event::{Decision, Event};
use super::machine::Machine;
use super::session::events;
use crate::dag::CompiledWorkflow;
use crate::identity::{AllowedSigners, Head, Signed, StatementKind, verify_at};
use crate::store::{GENESIS, JournalEntry, RunRecord, StepStatus, StoreError};

/// How far a signed time may be from the moment its event was journaled.
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// A signature found in the journal, and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBy {
    /// The journal entry it is in.
    pub seq: u64,
    /// What was signed, in words ("started the run", "approved `gate` (round 1)").
    pub what: String,
    /// Who signed.
    pub name: String,
    /// The key's fingerprint.
    pub fingerprint: String,
}

/// What replaying a journal found.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    /// Every signature that verified.
    pub signatures: Vec<SignedBy>,
    /// Decisions recorded as typed (the run has no allowed signers).
    pub unverified: Vec<String>,
    /// Signed events that do not verify, and decisions the run's rules refuse, each naming
    /// its entry. A run with any is never driven further.
    pub broken: Vec<String>,
    /// Entries the driver's signature does not cover (a run under way, or driven without a
    /// key, or a journal added to by someone else). Not proven, rather than proven wrong.
    pub unsealed: Vec<String>,
    /// The length of the journal the last valid driver signature covers.
    pub sealed: u64,
}

/// Replays `journal` (of run `run`) on `workflow` through the machine's own rules. Returns
/// the machine as the journal leaves it and what the replay found.
pub fn audit(
    workflow: Arc<CompiledWorkflow>,
    run: &RunRecord,
    journal: &[JournalEntry],
) -> Result<(Machine, Audit), StoreError> {
    let gated = gated_by(&workflow);
    let mut machine = Machine::new(workflow, &run.initiator);
    machine.run_id.clone_from(&run.run_id);
    let mut replay = Replay {
        run,
        journal,
        found: Audit::default(),
        gated,
        timed_out: HashSet::new(),
        signers: None,
        signed_journal: false,
    };
    for (recorded, entry) in events(&run.run_id, journal)?.into_iter().zip(journal) {
        replay.check(&machine, &recorded.event, entry, recorded.time);
        machine.apply(&recorded.event, recorded.time);
    }
    let len = journal.len() as u64;
    let mut found = replay.found;
    if replay.signers.is_some() && found.sealed < len {
        found.unsealed.push(if replay.signed_journal {
            format!(
                "entries {} to {} come after the last signature of the process that drove the run: nothing proves who wrote them, or that the journal ended there",
                found.sealed,
                len - 1
            )
        } else {
            "no process that drove the run signed its journal (driven without --key, or by a drctl from before journal signatures): that it is complete cannot be proven".into()
        });
    }
    Ok((machine, found))
}

/// The replay under way: what it has found, and what it keeps to judge the next entries.
struct Replay<'a> {
    run: &'a RunRecord,
    journal: &'a [JournalEntry],
    found: Audit,
    /// For each step, the approvals above it.
    gated: Vec<Vec<usize>>,
    /// Approvals whose last event is their timeout.
    timed_out: HashSet<usize>,
    /// The allowed signers the run captured.
    signers: Option<AllowedSigners>,
    /// Whether the driver signed the journal at least once.
    signed_journal: bool,
}

impl Replay<'_> {
    /// Checks `event`, journaled at `at` in `entry`, against `machine` as the entries before
    /// it left it.
    fn check(&mut self, machine: &Machine, event: &Event, entry: &JournalEntry, at: DateTime<Utc>) {
        let seq = entry.seq;
        match event {
            Event::RunStarted {
                allowed_signers,
                signature,
                initiator,
                digest,
                ..
            } => self.started(
                seq,
                allowed_signers.as_deref(),
                signature.as_ref(),
                (initiator, digest),
                at,
            ),
            Event::ApprovalVoted {
                step,
                by,
                decision,
                comment,
                signature,
                fingerprint,
                ..
            } => {
                let round = machine.step(step).map_or(0, |s| s.attempt);
                let what = format!(
                    "{} `{step}` (round {round})",
                    if *decision == Decision::Approve {
                        "approved"
                    } else {
                        "rejected"
                    }
                );
                let vote = (step.as_str(), by.as_str(), *decision, comment);
                self.voted(
                    machine,
                    seq,
                    vote,
                    (signature.as_ref(), fingerprint.as_deref()),
                    &what,
                    at,
                );
            }
            Event::ApprovalTimedOut { step } => {
                if let Some(i) = machine.index(step) {
                    self.timed_out.insert(i);
                }
            }
            Event::StepSucceeded { step, attempt, .. } => self.passed(machine, seq, step, *attempt),
            Event::StepStarted { step, .. } => {
                if let Some(i) = machine.index(step) {
                    self.timed_out.remove(&i);
                    let workflow = machine.workflow();
                    if !machine.rolling_back
                        && let Some(&gate) = self.gated[i]
                            .iter()
                            .find(|&&g| machine.steps[g].status != StepStatus::Succeeded)
                    {
                        self.broken(seq, &format!(
                            "`{step}` started while the approval `{}` above it had not passed (it was {})",
                            workflow.steps[gate].id,
                            machine.steps[gate].status.as_str()
                        ));
                    }
                }
            }
            Event::ApprovalRoundOpened { step, .. } => {
                if let Some(i) = machine.index(step) {
                    self.timed_out.remove(&i);
                }
            }
            Event::JournalSigned { signature } => self.sealed(seq, signature, entry, at),
            Event::WorkflowChanged {
                to_digest,
                by,
                signature,
                ..
            } => self.changed(seq, signature.as_ref(), (by, to_digest), at),
            _ => {}
        }
    }

    fn started(
        &mut self,
        seq: u64,
        allowed_signers: Option<&str>,
        signature: Option<&serde_json::Value>,
        (initiator, digest): (&str, &str),
        at: DateTime<Utc>,
    ) {
        if seq != 0 {
            self.broken(seq, "a second start of the run");
        }
        self.signers = match allowed_signers.map(AllowedSigners::parse) {
            None => None,
            Some(Ok(s)) => Some(s),
            Some(Err(_)) => {
                self.broken(seq, "the allowed signers captured by the run do not parse");
                None
            }
        };
        let Some(signers) = &self.signers else {
            return;
        };
        let what = "started the run";
        let outcome = proven(signature, signers, at, SAYS_OTHERWISE, |st| {
            st.kind == StatementKind::StartRun
                && st.run_id == self.run.run_id
                && st.name == initiator
                && st.digest == digest
        });
        match outcome {
            Ok((_, key)) => self.signed(seq, what, initiator, key),
            Err(why) => self.broken(seq, &format!("{initiator} {what}: {why}")),
        }
    }

    fn voted(
        &mut self,
        machine: &Machine,
        seq: u64,
        (step, by, decision, comment): (&str, &str, Decision, &Option<String>),
        (signature, fingerprint): (Option<&serde_json::Value>, Option<&str>),
        what: &str,
        at: DateTime<Utc>,
    ) {
        if self.signers.is_some() {
            let outcome = signature
                .ok_or_else(|| "no signature, though the run has allowed signers".to_string())
                .and_then(|s| machine.check_signed(s, at).map_err(|r| r.0))
                .and_then(|(s_step, s_by, s_decision, s_comment, (signed, key))| {
                    if s_step != step
                        || s_by != by
                        || s_decision != decision
                        || &s_comment != comment
                        || fingerprint != Some(key.as_str())
                    {
                        return Err(
                            "the signed decision does not say what the journal records".to_string()
                        );
                    }
                    let signed: Option<Signed> = serde_json::from_value(signed).ok();
                    match signed.and_then(|s| head_mismatch(&s, seq, self.journal)) {
                        Some(why) => Err(why),
                        None => Ok(key),
                    }
                });
            match outcome {
                Ok(key) => self.signed(seq, what, by, key),
                Err(why) => self.broken(seq, &format!("{by} {what}: {why}")),
            }
        } else {
            self.found
                .unverified
                .push(format!("{by} {what}: unverified"));
        }
        if let Err(refusal) = machine.check_vote(step, by, fingerprint, at) {
            self.broken(
                seq,
                &format!("{by} {what}: refused by the run's rules: {refusal}"),
            );
        }
    }

    /// An approval passes by its quorum of distinct keys, or by its timeout when its policy
    /// says so; never by hand.
    fn passed(&mut self, machine: &Machine, seq: u64, step: &str, attempt: u32) {
        let workflow = machine.workflow();
        let Some(i) = machine
            .index(step)
            .filter(|&i| workflow.steps[i].is_approval())
        else {
            return;
        };
        let on_timeout = workflow.steps[i].approval().map(|p| p.on_timeout);
        let counted = machine.approvals_counted(i).len();
        if attempt == 0 {
            self.broken(seq, &format!(
                "the approval `{step}` is marked succeeded by hand: an approval passes only by votes"
            ));
        } else if !(self.timed_out.contains(&i)
            && on_timeout == Some(crate::dag::OnTimeout::Approve))
            && counted < machine.quorum(i)
        {
            self.broken(seq, &format!(
                "the approval `{step}` passed with {counted} approval(s) of distinct keys, its quorum is {}",
                machine.quorum(i)
            ));
        }
    }

    /// A changed workflow is signed by who resumed with it, for the digest it changes to.
    fn changed(
        &mut self,
        seq: u64,
        signature: Option<&serde_json::Value>,
        (by, to_digest): (&str, &str),
        at: DateTime<Utc>,
    ) {
        let Some(signers) = &self.signers else {
            return;
        };
        let what = format!("changed the workflow to {to_digest}");
        let outcome = proven(signature, signers, at, SAYS_OTHERWISE, |st| {
            st.kind == StatementKind::ChangeWorkflow
                && st.run_id == self.run.run_id
                && st.name == by
                && st.digest == to_digest
        });
        match outcome {
            Ok((_, key)) => self.signed(seq, &what, by, key),
            Err(why) => self.broken(seq, &format!("{by} {what}: {why}")),
        }
    }

    /// The driver's signature on the journal up to this entry.
    fn sealed(
        &mut self,
        seq: u64,
        signature: &serde_json::Value,
        entry: &JournalEntry,
        at: DateTime<Utc>,
    ) {
        self.signed_journal = true;
        let what = format!("signed the journal up to entry {seq}");
        let Some(signers) = &self.signers else {
            self.broken(seq, "a journal signature in a run without allowed signers");
            return;
        };
        let expected = Head {
            len: seq,
            hash: entry.prev.clone(),
        };
        let outcome = proven(
            Some(signature),
            signers,
            at,
            "the signed anchor does not name this journal up to this entry",
            |st| {
                st.kind == StatementKind::JournalAnchor
                    && st.run_id == self.run.run_id
                    && st.head.as_ref() == Some(&expected)
            },
        );
        match outcome {
            Ok((signed, key)) => {
                self.signed(seq, &what, &signed.statement.name, key);
                self.found.sealed = seq + 1;
            }
            Err(why) => self.broken(seq, &format!("the driver {what}: {why}")),
        }
    }

    fn broken(&mut self, seq: u64, why: &str) {
        self.found.broken.push(format!("entry {seq}: {why}"));
    }

    fn signed(&mut self, seq: u64, what: &str, name: &str, fingerprint: String) {
        self.found.signatures.push(SignedBy {
            seq,
            what: what.to_string(),
            name: name.to_string(),
            fingerprint,
        });
    }
}

/// The signed statement in `signature`, verified against `signers` as received at `at`,
/// with its key's fingerprint.
fn signed_statement(
    signature: Option<&serde_json::Value>,
    signers: &AllowedSigners,
    at: DateTime<Utc>,
) -> Result<(Signed, String), String> {
    let value = signature.ok_or("no signature, though the run has allowed signers")?;
    let signed: Signed = serde_json::from_value(value.clone())
        .map_err(|e| format!("the signature cannot be read: {e}"))?;
    let proof = verify_at(&signed, signers, at).map_err(|e| e.to_string())?;
    Ok((signed, proof.fingerprint))
}

/// What a signed statement that does not match its journal event is told.
const SAYS_OTHERWISE: &str = "the signed statement does not say what the journal records";

/// The statement in `signature`, verified against `signers` as received at `at`, saying what
/// `says` expects (else `mismatch`) and signed within 5 minutes of `at`; with its key's
/// fingerprint.
fn proven(
    signature: Option<&serde_json::Value>,
    signers: &AllowedSigners,
    at: DateTime<Utc>,
    mismatch: &str,
    says: impl FnOnce(&crate::identity::Statement) -> bool,
) -> Result<(Signed, String), String> {
    let (signed, key) = signed_statement(signature, signers, at)?;
    if !says(&signed.statement) {
        return Err(mismatch.to_string());
    }
    match skewed(&signed, at) {
        Some(why) => Err(why),
        None => Ok((signed, key)),
    }
}

/// Why a statement's signed time is too far from the moment `at` it was journaled.
fn skewed(signed: &Signed, at: DateTime<Utc>) -> Option<String> {
    let Ok(signed_at) = signed.statement.time() else {
        return Some(format!(
            "the signed time `{}` is not RFC 3339",
            signed.statement.at
        ));
    };
    ((signed_at - at).abs() > CLOCK_SKEW).then(|| {
        format!(
            "signed at {}, more than 5 minutes from when it was journaled ({})",
            signed.statement.at,
            crate::time::rfc3339(at)
        )
    })
}

/// Why the journal head a vote names is not a place in this journal before the vote.
pub(crate) fn head_mismatch(signed: &Signed, seq: u64, journal: &[JournalEntry]) -> Option<String> {
    let head = signed.statement.head.as_ref()?;
    if head.len > seq {
        return Some(format!(
            "the vote names journal entry {} as what its signer was shown, which was written after it",
            head.len
        ));
    }
    let hash = match head.len {
        0 => GENESIS,
        n => journal
            .get(usize::try_from(n - 1).unwrap_or(usize::MAX))
            .map_or("", |e| e.hash.as_str()),
    };
    (hash != head.hash).then(|| {
        format!(
            "the journal its signer was shown (up to entry {}) is not this journal",
            head.len
        )
    })
}

/// For each step, the approval steps above it.
fn gated_by(workflow: &CompiledWorkflow) -> Vec<Vec<usize>> {
    let mut gated = vec![Vec::new(); workflow.steps.len()];
    for (g, gate) in workflow.steps.iter().enumerate() {
        if !gate.is_approval() {
            continue;
        }
        let mut dfs = Dfs::new(&workflow.graph, NodeIndex::new(g));
        while let Some(n) = dfs.next(&workflow.graph) {
            if n.index() != g {
                gated[n.index()].push(g);
            }
        }
    }
    gated
}
