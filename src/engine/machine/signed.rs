//! Signed votes (SPEC §5.9): a decision counts only when its signature verifies against the
//! allowed signers captured when the run started, and when what was signed is this decision:
//! this run, this step, this round of it, this workflow digest, made after the round opened.
//! Nothing is recorded otherwise, so an old approval cannot be replayed onto a new run or a
//! new round.

use chrono::{DateTime, SubsecRound, Utc};

use super::{Machine, Refusal};
use crate::engine::Decision;
use crate::identity::{AllowedSigners, Signed, StatementKind, verify_at};

/// How far a statement's signed time may be from the moment drctl receives it, either way
/// (clocks of two machines differ; a signer must not backdate past an expired key).
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// What a verified signed vote decides: step, name, decision, comment, and the proof to
/// journal (the signed decision and the signing key's fingerprint).
pub(super) type Checked = (
    String,
    String,
    Decision,
    Option<String>,
    (serde_json::Value, String),
);

impl Machine {
    /// Verifies a signed vote received at `now` and returns what it decides, or why it is
    /// refused. The key's validity window is judged at `now`, and the signed time must be
    /// within five minutes of it. The journal's replay (`engine::audit`) asks the same, with
    /// the moment the vote was journaled.
    pub(crate) fn check_signed(
        &self,
        signed: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<Checked, Refusal> {
        let Some(text) = &self.signers else {
            return Err(Refusal(
                "this run has no allowed signers: approve it with --as NAME, without --key".into(),
            ));
        };
        let signers = AllowedSigners::parse(text).map_err(|_| {
            Refusal("the allowed signers stored with this run cannot be read".into())
        })?;
        let parsed: Signed = serde_json::from_value(signed.clone())
            .map_err(|e| Refusal(format!("the signed decision cannot be read: {e}")))?;
        let proof = verify_at(&parsed, &signers, now).map_err(|e| Refusal(e.to_string()))?;
        let st = &parsed.statement;
        let decision = match st.kind {
            StatementKind::Approve => Decision::Approve,
            StatementKind::Reject => Decision::Reject,
            StatementKind::StartRun | StatementKind::JournalAnchor => {
                return Err(Refusal(
                    "this is a signed run start or journal anchor, not a decision on an approval"
                        .into(),
                ));
            }
            StatementKind::ChangeWorkflow => {
                return Err(Refusal(
                    "this is a signed change of the workflow, not a decision on an approval".into(),
                ));
            }
        };
        if st.run_id != self.run_id {
            return Err(Refusal(format!(
                "this decision was signed for run {}, not run {}",
                st.run_id, self.run_id
            )));
        }
        if st.digest != self.digest {
            return Err(Refusal(format!(
                "this decision was signed for workflow digest {}, this run's is {}",
                st.digest, self.digest
            )));
        }
        let step = st
            .step
            .clone()
            .ok_or_else(|| Refusal("the signed decision names no step".into()))?;
        let i = self.require_step(&step)?;
        let round = self.steps[i].attempt;
        if st.round != Some(round) {
            return Err(Refusal(format!(
                "this decision was signed for round {} of `{step}`, which is now in round {round}: sign a new one",
                st.round.map_or_else(|| "?".to_string(), |r| r.to_string())
            )));
        }
        let at = crate::time::parse_time(&st.at)
            .ok_or_else(|| Refusal(format!("the signed time `{}` is not RFC 3339", st.at)))?;
        // Signed times are whole seconds.
        if let Some(opened) = self.steps[i].started_at
            && at < opened.trunc_subsecs(0)
        {
            return Err(Refusal(format!(
                "this decision was signed at {}, before round {round} of `{step}` opened ({}): it is stale",
                st.at,
                crate::time::rfc3339(opened)
            )));
        }
        if at > now + CLOCK_SKEW {
            return Err(Refusal(format!(
                "this decision is signed at {}, in the future",
                st.at
            )));
        }
        if at < now - CLOCK_SKEW {
            return Err(Refusal(format!(
                "this decision is signed at {}, more than 5 minutes before it arrived ({}): sign it again and submit it at once",
                st.at,
                crate::time::rfc3339(now)
            )));
        }
        Ok((
            step,
            st.name.clone(),
            decision,
            st.comment.clone(),
            (signed.clone(), proof.fingerprint),
        ))
    }
}
