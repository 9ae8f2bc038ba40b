//! A verdict in words, as `drctl verify` prints it.

use super::{Evidence, Trust, Verdict};

/// What `drctl verify` prints: the run, where its signers were checked against, what the
/// replay derived, every signature, and whether it all holds.
pub fn verdict_text(evidence: &Evidence, verdict: &Verdict, trust: Trust<'_>) -> String {
    let run = &evidence.run;
    let mut out = format!(
        "run {}  {} ({})  {}\n  journal: {} entries\n",
        run.run_id,
        run.workflow,
        run.mode,
        run.status.as_str(),
        verdict.entries
    );
    out.push_str(match trust {
        Trust::Signers(_) => "  signers: checked against the allowed-signers file you gave\n",
        Trust::Captured => {
            "  signers: the allowed signers captured with the run, in this store (give --signers FILE to check them against your own copy)\n"
        }
    });
    if let Some(d) = &verdict.derived {
        out.push_str(&format!(
            "  replayed: {}, started by {}\n",
            d.status, d.initiator
        ));
        for (step, by) in &d.approvals {
            out.push_str(&format!(
                "  passed: `{step}` approved by {}\n",
                by.join(", ")
            ));
        }
    }
    for s in &verdict.signatures {
        out.push_str(&format!(
            "  signed: {} {} (key {}, entry {})\n",
            s.name, s.what, s.fingerprint, s.seq
        ));
    }
    for u in &verdict.unverified {
        out.push_str(&format!("  {u}\n"));
    }
    if verdict.holds() {
        out.push_str(if verdict.signatures.is_empty() {
            "  verified: hash chain intact, journal replayed through the run's rules; nothing in it is signed (the run has no allowed signers): who decided is as typed\n"
        } else {
            "  verified: hash chain intact, journal replayed through the run's rules, every signature valid, the journal signed to its end by the process that drove it\n"
        });
    } else {
        for p in &verdict.problems {
            out.push_str(&format!("  PROBLEM: {p}\n"));
        }
        out.push_str("  NOT VERIFIED\n");
    }
    out
}
