//! `drctl verify RUN` and `drctl verify --evidence FILE`: is a run's record what it claims?
//! The hash chain, the journal complete up to the run's last commit, every signature against
//! the allowed signers the run captured, and who signed what. Exit 0 only if all holds.

use std::path::PathBuf;

use clap::Args;

use super::error::CliError;
use super::state::live_or_local;
use crate::control::Request;
use crate::evidence::{Evidence, Verdict, collect, verify as check};

/// Check a run's journal and signatures.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The run (from the store).
    #[arg(required_unless_present = "evidence", conflicts_with = "evidence")]
    pub run: Option<String>,
    /// An evidence file (`drctl report RUN --format evidence -o FILE`), checked without a store.
    #[arg(long, value_name = "FILE")]
    pub evidence: Option<PathBuf>,
}

/// Runs `verify`.
pub fn verify(args: &VerifyArgs, state: &std::path::Path) -> Result<u8, CliError> {
    let evidence = load(args, state)?;
    let verdict = check(&evidence);
    out!("{}", render(&evidence, &verdict));
    Ok(if verdict.holds() {
        super::exit::SUCCESS
    } else {
        super::exit::INVALID_INPUT
    })
}

fn load(args: &VerifyArgs, state: &std::path::Path) -> Result<Evidence, CliError> {
    let invalid = |m: String| CliError::invalid(m);
    if let Some(file) = &args.evidence {
        let text = std::fs::read_to_string(file)
            .map_err(|e| invalid(format!("cannot read {}: {e}", file.display())))?;
        return serde_json::from_str(&text).map_err(|e| {
            invalid(format!(
                "{} is not a drctl evidence file (or it was altered): {e}",
                file.display()
            ))
        });
    }
    let run = args.run.clone().unwrap_or_default();
    let unknown = || {
        invalid(format!(
            "no run `{run}` in this state directory (`drctl runs` lists them)"
        ))
    };
    let request = Request::Evidence { run: run.clone() };
    let (evidence, _) = live_or_local(state, &request, |store| {
        collect(store.as_ref(), &run)?.ok_or_else(unknown)
    })?;
    Ok(evidence)
}

fn render(evidence: &Evidence, verdict: &Verdict) -> String {
    let run = &evidence.run;
    let mut out = format!(
        "run {}  {} ({})  {}\n  journal: {} entries\n",
        run.run_id,
        run.workflow,
        run.mode,
        run.status.as_str(),
        verdict.entries
    );
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
        out.push_str("  verified: hash chain intact, journal complete up to the last commit, every signature valid\n");
    } else {
        for p in &verdict.problems {
            out.push_str(&format!("  PROBLEM: {p}\n"));
        }
        out.push_str("  NOT VERIFIED\n");
    }
    out
}
