//! Checking evidence: the hash chain, the journal complete up to the run's last commit, and
//! every signature against the allowed signers the run captured, each signed statement
//! matching the event it proves (run, step, round, decision, name, digest).

use std::collections::HashMap;

use serde_json::Value;

use super::{EVIDENCE_FORMAT, Evidence};
use crate::identity::{AllowedSigners, Signed, StatementKind};
use crate::store::verify_chain;

/// One signature found and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The journal entry it is in.
    pub seq: u64,
    /// What was signed, in words ("started the run", "approved `gate` (round 1)").
    pub what: String,
    /// Who signed.
    pub name: String,
    /// The key's fingerprint.
    pub fingerprint: String,
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
    /// Everything that does not hold. Empty when all holds.
    pub problems: Vec<String>,
}

impl Verdict {
    /// Whether everything holds.
    pub fn holds(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks `evidence`.
pub fn verify(evidence: &Evidence) -> Verdict {
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
    signatures(evidence, &mut v);
    v
}

/// The chain is intact and the journal is all there is: it ends where the run record and the
/// anchor kept apart from it say the last commit ended.
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

fn signatures(evidence: &Evidence, v: &mut Verdict) {
    let Some(first) = evidence.journal.first() else {
        v.problems.push("the journal is empty".into());
        return;
    };
    let started = &first.event;
    if started["type"] != "run_started" {
        v.problems
            .push("the journal does not begin with the run's start".into());
        return;
    }
    let run = &evidence.run;
    if started["digest"].as_str() != Some(run.digest.as_str()) {
        v.problems
            .push("the digest in the run's start differs from the run record's".into());
    }
    let signers = match started["allowed_signers"].as_str() {
        None => None,
        Some(text) => match AllowedSigners::parse(text) {
            Ok(s) => Some(s),
            Err(_) => {
                v.problems
                    .push("the allowed signers captured by the run do not parse".into());
                return;
            }
        },
    };
    let mut rounds: HashMap<String, u32> = HashMap::new();
    for entry in &evidence.journal {
        let e = &entry.event;
        match e["type"].as_str() {
            Some("run_started") => {
                if let Some(signers) = &signers {
                    let expect = Expect {
                        kind: StatementKind::StartRun,
                        run_id: &run.run_id,
                        step: None,
                        round: None,
                        name: e["initiator"].as_str().unwrap_or_default(),
                        comment: None,
                        digest: &run.digest,
                    };
                    check_one(
                        v,
                        signers,
                        entry.seq,
                        &e["signature"],
                        &expect,
                        "started the run",
                    );
                }
            }
            Some("step_started") => {
                let step = e["step"].as_str().unwrap_or_default().to_string();
                let attempt = u32::try_from(e["attempt"].as_u64().unwrap_or(0)).unwrap_or(0);
                rounds.insert(step, attempt);
            }
            Some("approval_voted") => {
                let step = e["step"].as_str().unwrap_or_default();
                let by = e["by"].as_str().unwrap_or_default();
                let approve = e["decision"] == "approve";
                let round = rounds.get(step).copied().unwrap_or(0);
                let what = format!(
                    "{} `{step}` (round {round})",
                    if approve { "approved" } else { "rejected" }
                );
                match &signers {
                    None => v.unverified.push(format!("{by} {what}: unverified")),
                    Some(signers) => {
                        let expect = Expect {
                            kind: if approve {
                                StatementKind::Approve
                            } else {
                                StatementKind::Reject
                            },
                            run_id: &run.run_id,
                            step: Some(step),
                            round: Some(round),
                            name: by,
                            comment: e["comment"].as_str(),
                            digest: &run.digest,
                        };
                        check_one(v, signers, entry.seq, &e["signature"], &expect, &what);
                    }
                }
            }
            _ => {}
        }
    }
}

/// What a signed statement must say to prove a journal event.
struct Expect<'a> {
    kind: StatementKind,
    run_id: &'a str,
    step: Option<&'a str>,
    round: Option<u32>,
    name: &'a str,
    comment: Option<&'a str>,
    digest: &'a str,
}

fn check_one(
    v: &mut Verdict,
    signers: &AllowedSigners,
    seq: u64,
    signature: &Value,
    expect: &Expect<'_>,
    what: &str,
) {
    let at = format!("entry {seq} ({} {what})", expect.name);
    if signature.is_null() {
        v.problems.push(format!(
            "{at}: no signature, though the run has allowed signers"
        ));
        return;
    }
    let signed: Signed = match serde_json::from_value(signature.clone()) {
        Ok(s) => s,
        Err(e) => {
            v.problems
                .push(format!("{at}: the signature cannot be read: {e}"));
            return;
        }
    };
    let proof = match crate::identity::verify(&signed, signers) {
        Ok(p) => p,
        Err(e) => {
            v.problems.push(format!("{at}: {e}"));
            return;
        }
    };
    let st = &signed.statement;
    let matches = st.kind == expect.kind
        && st.run_id == expect.run_id
        && st.step.as_deref() == expect.step
        && st.round == expect.round
        && st.name == expect.name
        && st.comment.as_deref() == expect.comment
        && st.digest == expect.digest;
    if !matches {
        v.problems.push(format!(
            "{at}: the signed statement does not say what the journal records"
        ));
        return;
    }
    v.signatures.push(Signature {
        seq,
        what: what.to_string(),
        name: proof.name,
        fingerprint: proof.fingerprint,
    });
}
