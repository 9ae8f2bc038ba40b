//! `drctl approve RUN STEP` and `drctl reject RUN STEP`: decisions on an approval, from any
//! terminal. Through the live process when the run is being driven; else recorded in the
//! store, to be acted on by `drctl resume`.
//!
//! With allowed signers (SPEC §5.9) a decision is signed with the approver's SSH key
//! (`--key`), can be written to a file instead of submitted (`--sign-only -o FILE`), and such a
//! file can be submitted by anyone from anywhere (`--signed FILE`): the signature, not the
//! submitter, says who decided.

use std::path::PathBuf;

use clap::Args;

use super::error::CliError;
use super::state::{Session, whoami};
use crate::control::RunDecision;
use crate::engine::Decision;
use crate::identity::{Signed, StatementKind};
use crate::service::{Shown, Source, Vote, sign_vote};

/// Approve (or reject) an approval step.
#[allow(clippy::struct_excessive_bools, reason = "each is a command-line flag")]
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The run (given by the signed file with --signed).
    #[arg(required_unless_present = "signed")]
    pub run: Option<String>,
    /// The approval step (given by the signed file with --signed).
    #[arg(required_unless_present = "signed")]
    pub step: Option<String>,
    /// Who decides (default: $USER).
    #[arg(long = "as", value_name = "NAME")]
    pub by: Option<String>,
    /// Why (required to reject).
    #[arg(long)]
    pub comment: Option<String>,
    /// Sign the decision with this SSH key: a private key file, or a public key whose private
    /// half is in ssh-agent (hardware and FIDO keys work this way).
    #[arg(long, value_name = "PATH", conflicts_with = "signed")]
    pub key: Option<PathBuf>,
    /// Write the signed decision to `-o FILE` instead of submitting it.
    #[arg(long, requires_all = ["key", "output"])]
    pub sign_only: bool,
    /// Where `--sign-only` writes the signed decision (a new file, created 0600).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// With -o: replace the file if it exists (a symbolic link is still refused).
    #[arg(long, requires = "output")]
    pub force: bool,
    /// Submit a decision signed elsewhere (`--sign-only`), by anyone.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["by", "comment"])]
    pub signed: Option<PathBuf>,
    /// With --sign-only where the store cannot be read: the run's digest (`drctl status`).
    #[arg(long, requires = "sign_only")]
    pub digest: Option<String>,
    /// With --sign-only where the store cannot be read: the approval's round (`drctl status`).
    #[arg(long, requires = "sign_only")]
    pub round: Option<u32>,
}

/// Runs `approve` or `reject`.
pub fn decide(args: &DecideArgs, session: &Session, decision: Decision) -> Result<u8, CliError> {
    if let Some(file) = &args.signed {
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::invalid(format!("cannot read {}: {e}", file.display())))?;
        let signed = Signed::from_json(&text).map_err(|e| {
            CliError::invalid(format!("{} is not a signed decision: {e}", file.display()))
        })?;
        let wanted = match decision {
            Decision::Approve => StatementKind::Approve,
            Decision::Reject => StatementKind::Reject,
        };
        if signed.statement.kind != wanted {
            return Err(CliError::invalid(format!(
                "{} holds a signed {:?}, not this command's decision",
                file.display(),
                signed.statement.kind
            )));
        }
        return submit_signed(session, &signed);
    }
    let (Some(run), Some(step)) = (&args.run, &args.step) else {
        return Err(CliError::invalid(
            "name the run and the approval step, or give --signed FILE",
        ));
    };
    if decision == Decision::Reject && args.comment.as_deref().is_none_or(|c| c.trim().is_empty()) {
        return Err(CliError::invalid(
            "a rejection needs a reason: --comment TEXT",
        ));
    }
    let by = whoami(args.by.as_ref());
    if let Some(key) = &args.key {
        let shown = match (&args.digest, args.round) {
            (Some(digest), Some(round)) => Shown {
                digest: digest.clone(),
                round,
                head: None,
            },
            _ => session.shown(run, step)?,
        };
        let vote = Vote {
            run,
            step,
            by: &by,
            decision,
            comment: args.comment.as_deref(),
        };
        let signed = sign_vote(&vote, shown, key)?;
        if args.sign_only {
            let out = args
                .output
                .as_ref()
                .expect("clap requires -o with --sign-only");
            super::outfile::write_new(out, signed.to_json().as_bytes(), args.force)?;
            outln!(
                "signed decision of {by} on `{step}` of run {run} written to {}; submit it with `drctl {} --signed {}`",
                out.display(),
                if decision == Decision::Approve {
                    "approve"
                } else {
                    "reject"
                },
                out.display()
            );
            return Ok(super::exit::SUCCESS);
        }
        return submit_signed(session, &signed);
    }
    let vote = RunDecision::Vote {
        run: run.clone(),
        step: step.clone(),
        by: by.clone(),
        decision,
        comment: args.comment.clone(),
    };
    let live = session.decide(&vote)? == Source::Live;
    done(&by, step, run, decision, live);
    Ok(super::exit::SUCCESS)
}

fn submit_signed(session: &Session, signed: &Signed) -> Result<u8, CliError> {
    let st = &signed.statement;
    let step = st.step.clone().unwrap_or_default();
    let live = session.decide(&RunDecision::Signed {
        signed: Box::new(signed.clone()),
    })? == Source::Live;
    let decision = if st.kind == StatementKind::Reject {
        Decision::Reject
    } else {
        Decision::Approve
    };
    done(&st.name, &step, &st.run_id, decision, live);
    Ok(super::exit::SUCCESS)
}

fn done(by: &str, step: &str, run: &str, decision: Decision, live: bool) {
    let verb = if decision == Decision::Approve {
        "approved"
    } else {
        "rejected"
    };
    outln!("{by} {verb} `{step}` of run {run}");
    if !live {
        outln!("  the run is not being driven right now: continue it with `drctl resume {run}`");
    }
}
