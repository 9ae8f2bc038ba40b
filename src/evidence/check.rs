//! Checking evidence (SPEC §5.10). Nothing in the file is taken on its word:
//! - the allowed signers it carries must be the ones the auditor trusts (their own copy);
//! - the workflow text it carries must compile to the digest the run's signed start names;
//! - the journal is replayed through the run's own rules (`engine::audit`): every signature
//!   verified when it was journaled, every gate passed by its quorum of distinct keys,
//!   nothing started above a gate that had not passed, every entry covered by the signature
//!   of the process that drove the run;
//! - status, initiator, workflow, mode and digest are derived from the journal, and the
//!   summary fields of the file must agree with them.

use super::{EVIDENCE_FORMAT, Evidence};
use crate::dag::CompiledWorkflow;
use crate::engine::{RunProjection, audit, project};
use crate::identity::{AllowedSigners, SignerEntry};
use crate::store::{JournalEntry, RunRecord, verify_chain};

pub use crate::engine::SignedBy as Signature;

/// Whose allowed signers the signatures are checked against.
#[derive(Debug, Clone, Copy)]
pub enum Trust<'a> {
    /// The auditor's own copy (`--signers FILE`): the evidence's must be the same.
    Signers(&'a str),
    /// The copy the run captured in the store (`drctl verify RUN` on the store).
    Captured,
}

/// What the journal says happened, replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// The run's status, as the replay leaves it.
    pub status: String,
    /// Who started it.
    pub initiator: String,
    /// The approvals that passed, each with who approved.
    pub approvals: Vec<(String, Vec<String>)>,
}

/// What checking found.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// Journal entries checked.
    pub entries: usize,
    /// The signatures that verified.
    pub signatures: Vec<Signature>,
    /// Decisions recorded without a signature (the run has no allowed signers): as typed.
    pub unverified: Vec<String>,
    /// What the replay of the journal derived, when it could be replayed.
    pub derived: Option<Derived>,
    /// Everything that does not hold. Empty when all holds.
    pub problems: Vec<String>,
}

impl Verdict {
    /// Whether everything holds.
    pub fn holds(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks `evidence` against the allowed signers `trust` names.
pub fn verify(evidence: &Evidence, trust: Trust<'_>) -> Verdict {
    let mut v = Verdict {
        entries: evidence.journal.len(),
        ..Verdict::default()
    };
    if evidence.format != EVIDENCE_FORMAT {
        v.problems.push(format!(
            "format `{}` is not `{EVIDENCE_FORMAT}`",
            evidence.format
        ));
        return v;
    }
    complete(evidence, &mut v);
    let Some(started) = first_event(evidence, &mut v) else {
        return v;
    };
    let (Some(_), Some(digest)) = (
        started.started_at,
        started.versions.first().map(|first| first.digest.clone()),
    ) else {
        v.problems
            .push("the journal does not begin with the run's start".into());
        return v;
    };
    let RunProjection {
        workflow: name,
        mode,
        allowed_signers,
        ..
    } = started;
    trusted(allowed_signers.as_deref(), trust, &mut v);
    let run = &evidence.run;
    let versions = versions(evidence, &digest, &mut v);
    let last = versions.last().map_or(&digest, |(_, d)| d).clone();
    for (field, recorded, journaled) in [
        ("workflow", &run.workflow, &name),
        ("mode", &run.mode.to_string(), &mode),
        ("digest", &run.digest, &last),
    ] {
        if recorded != journaled {
            v.problems.push(format!(
                "the run record's {field} `{recorded}` is not the one the run's start names (`{journaled}`)"
            ));
        }
    }
    let mut workflow = None;
    for (source, digest) in &versions {
        workflow = workflow_of(evidence, source, digest, allowed_signers.clone(), &mut v);
        if workflow.is_none() {
            return v;
        }
    }
    let Some(workflow) = workflow else {
        return v;
    };
    replay(
        &std::sync::Arc::new(workflow),
        &evidence.run,
        &evidence.journal,
        &mut v,
    );
    v
}

/// The chain is intact and the journal is all the record says there is: it ends where the
/// run record and the anchor kept apart from it say the last commit ended. (Anyone can
/// recompute these: only the driver's signature, checked by the replay, proves the end.)
fn complete(evidence: &Evidence, v: &mut Verdict) {
    let journal = &evidence.journal;
    if let Err((seq, why)) = verify_chain(journal) {
        v.problems.push(format!(
            "the journal's hash chain is broken: entry {seq} {why}"
        ));
    }
    let last = journal.last().map(|e| e.hash.as_str()).unwrap_or_default();
    let run = &evidence.run;
    if run.journal_len != journal.len() as u64 || run.last_hash != last {
        v.problems.push(format!(
            "the run record counts {} journal entries ending in {}, the journal holds {} ending in {}",
            run.journal_len,
            short(&run.last_hash),
            journal.len(),
            short(last)
        ));
    }
    match &evidence.anchor {
        Some(a) if a.journal_len == journal.len() as u64 && a.last_hash == last => {}
        Some(a) => v.problems.push(format!(
            "the journal is not complete: the run's last commit ended at entry {} ({}), the journal holds {} entries",
            a.journal_len,
            short(&a.last_hash),
            journal.len()
        )),
        None => v.problems.push(
            "the run has no commit anchor (recorded by an older drctl): that its journal is complete cannot be proven"
                .into(),
        ),
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// The projection of the journal's first entry alone: the run's start, when it is one.
fn first_event(evidence: &Evidence, v: &mut Verdict) -> Option<RunProjection> {
    let Some(first) = evidence.journal.first() else {
        v.problems.push("the journal is empty".into());
        return None;
    };
    match project(&evidence.run.run_id, std::slice::from_ref(first), None) {
        Ok(started) => Some(started),
        Err(e) => {
            v.problems.push(e.to_string());
            None
        }
    }
}

/// The run's captured allowed signers are the ones trusted.
fn trusted(captured: Option<&str>, trust: Trust<'_>, v: &mut Verdict) {
    let Trust::Signers(text) = trust else {
        return;
    };
    let theirs = match AllowedSigners::parse(text) {
        Ok(s) => s,
        Err(errors) => {
            v.problems.push(format!(
                "the allowed signers you trust do not parse: {}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            return;
        }
    };
    let Some(captured) = captured else {
        v.problems.push(
            "the run captured no allowed signers: none of its decisions is proven, whoever you trust"
                .into(),
        );
        return;
    };
    let Ok(ours) = AllowedSigners::parse(captured) else {
        v.problems
            .push("the allowed signers captured by the run do not parse".into());
        return;
    };
    if let Some(difference) = differ(ours.entries(), theirs.entries()) {
        v.problems.push(format!(
            "the allowed signers in the evidence are not the ones you trust: {difference}; the signatures prove nothing against your copy"
        ));
    }
}

/// How two allowed-signers files differ in what they allow (comments and blank lines aside).
fn differ(evidence: &[SignerEntry], trusted: &[SignerEntry]) -> Option<String> {
    let same = |a: &SignerEntry, b: &SignerEntry| {
        a.principals == b.principals
            && a.key.key_data() == b.key.key_data()
            && a.cert_authority == b.cert_authority
            && a.namespaces == b.namespaces
            && a.valid_after == b.valid_after
            && a.valid_before == b.valid_before
    };
    let show = |e: &SignerEntry| {
        format!(
            "{} {}",
            e.principals.join(","),
            e.key.fingerprint(ssh_key::HashAlg::Sha256)
        )
    };
    if let Some(extra) = evidence
        .iter()
        .find(|a| !trusted.iter().any(|b| same(a, b)))
    {
        return Some(format!(
            "its line {} (`{}`) is not in yours",
            extra.line,
            show(extra)
        ));
    }
    trusted
        .iter()
        .find(|b| !evidence.iter().any(|a| same(a, b)))
        .map(|missing| {
            format!(
                "your line {} (`{}`) is not in it",
                missing.line,
                show(missing)
            )
        })
}

/// Every version of the workflow the run executed, with the digest it must compile to: the
/// text it started with (the digest its signed start names), then the text of each
/// `workflow_changed` (the digest its signed change names).
fn versions(evidence: &Evidence, started: &str, v: &mut Verdict) -> Vec<(String, String)> {
    let Some(source) = &evidence.workflow_source else {
        v.problems.push(
            "the evidence holds no workflow text: what the run executed cannot be checked".into(),
        );
        return Vec::new();
    };
    let mut versions = vec![(source.clone(), started.to_string())];
    if let Ok(projection) = project(&evidence.run.run_id, &evidence.journal, None) {
        versions.extend(
            projection
                .versions
                .into_iter()
                .filter_map(|version| Some((version.source?, version.digest))),
        );
    }
    versions
}

/// A version of the workflow, compiled from the text in the evidence with the run's
/// parameters and captured signers: it must give `digest`.
fn workflow_of(
    evidence: &Evidence,
    source: &str,
    digest: &str,
    signers: Option<String>,
    v: &mut Verdict,
) -> Option<CompiledWorkflow> {
    let checked = match crate::stored::check(&evidence.run, source) {
        Ok(checked) => checked,
        Err(e) => {
            v.problems.push(e.to_string());
            return None;
        }
    };
    let Some(mut workflow) = checked.workflow else {
        v.problems.push(
            "the workflow text in the evidence does not compile: it is not what the run executed"
                .into(),
        );
        return None;
    };
    workflow.signers = signers;
    let compiled = crate::stored::digest_as(digest, &workflow);
    if compiled != digest {
        v.problems.push(format!(
            "the workflow text in the evidence (with the run's parameters) has digest {compiled}, the run's journal names {digest}: it is not what the run executed"
        ));
        return None;
    }
    Some(workflow)
}

/// Replays the journal through the run's rules, and holds the record to what it derives.
fn replay(
    workflow: &std::sync::Arc<CompiledWorkflow>,
    run: &RunRecord,
    journal: &[JournalEntry],
    v: &mut Verdict,
) {
    let (machine, found) = match audit(std::sync::Arc::clone(workflow), run, journal) {
        Ok(replayed) => replayed,
        Err(e) => {
            v.problems.push(e.to_string());
            return;
        }
    };
    v.signatures = found.signatures;
    v.unverified = found.unverified;
    v.problems.extend(found.broken);
    v.problems.extend(found.unsealed);
    let status = machine.status();
    if status != run.status {
        v.problems.push(format!(
            "the run record says `{}`, its journal replayed says `{}`",
            run.status.as_str(),
            status.as_str()
        ));
    }
    if machine.initiator != run.initiator {
        v.problems.push(format!(
            "the run record says `{}` started it, its journal says `{}`",
            run.initiator, machine.initiator
        ));
    }
    let approvals = workflow
        .steps
        .iter()
        .enumerate()
        .filter(|(i, s)| {
            s.is_approval() && machine.steps[*i].status == crate::store::StepStatus::Succeeded
        })
        .map(|(i, s)| {
            let by = machine
                .approvals_counted(i)
                .into_iter()
                .map(str::to_string)
                .collect();
            (s.id.clone(), by)
        })
        .collect();
    v.derived = Some(Derived {
        status: status.as_str().to_string(),
        initiator: machine.initiator.clone(),
        approvals,
    });
}
