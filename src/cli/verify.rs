//! `drctl verify RUN` and `drctl verify --evidence FILE --signers FILE`: is a run's record
//! what it claims? The journal replayed through the run's rules, every signature, the
//! journal covered by the driver's signature, the summary derived from the journal, and who
//! signed what (SPEC §5.10). Exit 0 only if all holds.

use std::path::PathBuf;

use clap::Args;

use super::error::CliError;
use super::state::Session;
use crate::evidence::{Evidence, Trust, verify as check};

/// Check a run's journal and signatures.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The run (from the store).
    #[arg(required_unless_present = "evidence", conflicts_with = "evidence")]
    pub run: Option<String>,
    /// An evidence file (`drctl report RUN --format evidence -o FILE`), checked without a store.
    #[arg(long, value_name = "FILE")]
    pub evidence: Option<PathBuf>,
    /// The allowed-signers file you trust (your own copy, e.g. from the repository at the
    /// reviewed commit): required with --evidence; the evidence's own copy must match it.
    #[arg(long, value_name = "FILE")]
    pub signers: Option<PathBuf>,
}

/// Runs `verify`.
pub fn verify(args: &VerifyArgs, session: &Session) -> Result<u8, CliError> {
    if args.evidence.is_some() && args.signers.is_none() {
        return Err(CliError::invalid(
            "verify --evidence needs --signers FILE: the allowed signers you trust (your own copy, for example from the repository at the reviewed commit). The evidence carries its own copy, but anyone who can edit the file can replace it with their own keys and re-sign everything, so it proves nothing on its own",
        ));
    }
    let trusted = match &args.signers {
        Some(file) => Some(
            std::fs::read_to_string(file)
                .map_err(|e| CliError::invalid(format!("cannot read {}: {e}", file.display())))?,
        ),
        None => None,
    };
    let evidence = load(args, session)?;
    let trust = trusted.as_deref().map_or(Trust::Captured, Trust::Signers);
    let verdict = check(&evidence, trust);
    out!(
        "{}",
        crate::evidence::verdict_text(&evidence, &verdict, trust)
    );
    Ok(if verdict.holds() {
        super::exit::SUCCESS
    } else {
        super::exit::INVALID_INPUT
    })
}

fn load(args: &VerifyArgs, session: &Session) -> Result<Evidence, CliError> {
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
    session.evidence(&run)
}
