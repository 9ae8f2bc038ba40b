//! Why a run waits for an operator, as data. The machine decides a [`PauseReason`]; the
//! command line and the status view phrase it (with the run's id in the commands they
//! suggest), so the engine writes no command-line syntax.

use serde::{Deserialize, Deserializer, Serialize};

/// Why a run paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PauseReason {
    /// A step failed for good and the workflow says `on_failure = "pause"`.
    StepFailed {
        /// The first step that failed.
        step: String,
        /// Its last error.
        error: String,
    },
    /// An attempt ended ambiguously (a timeout, a broken connection, a 5xx) and the step is
    /// neither idempotent nor able to probe: it is not run again blindly.
    OutcomeUnknown {
        /// The step.
        step: String,
        /// How the attempt ended.
        error: String,
    },
    /// The probe of an attempt whose outcome was lost could not tell whether it took effect.
    ProbeUndecided {
        /// The step.
        step: String,
        /// What the probe said.
        why: String,
    },
    /// Attempts cut off when drctl's process stopped, not safe to run again.
    Interrupted {
        /// The steps whose outcome is not known.
        steps: Vec<String>,
    },
    /// An undo found that the resource no longer holds what drctl wrote.
    UndoConflict {
        /// The step whose undo stopped.
        step: String,
        /// What the undo found.
        error: String,
    },
    /// A step names an action the build of drctl driving the run does not have: nothing was
    /// run.
    ActionMissing {
        /// The step.
        step: String,
        /// What was missing.
        error: String,
    },
    /// The run's journal holds a signed event that does not verify, or a decision its rules
    /// refuse (SPEC §5.9): it was changed outside drctl, and the run is not driven further.
    Tampered {
        /// What does not hold, and where.
        why: String,
    },
    /// Recorded by a drctl from before reasons were typed: its words, where `RUN` stands for
    /// the run's id.
    Words {
        /// The reason as it was recorded.
        text: String,
    },
}

impl PauseReason {
    /// The reason in words, with the commands that go on from it for run `run_id`.
    pub fn describe(&self, run_id: &str) -> String {
        match self {
            PauseReason::StepFailed { step, error } => format!(
                "step `{step}` failed: {error}; drctl resume {run_id} --step {step} --retry | --skip, or drctl rollback {run_id}"
            ),
            PauseReason::OutcomeUnknown { step, error } => format!(
                "`{step}` may or may not have taken effect ({error}) and it is not idempotent, so it is not run again blindly; decide with drctl resume {run_id} --step {step} --mark-succeeded | --retry | --skip"
            ),
            PauseReason::ProbeUndecided { step, why } => format!(
                "the outcome of `{step}` is not known and its probe cannot tell ({why}); decide with drctl resume {run_id} --step {step} --mark-succeeded | --retry | --skip"
            ),
            PauseReason::Interrupted { steps } => format!(
                "the outcome of {} is not known (its process stopped) and it is not safe to run again; decide with drctl resume {run_id} --step ID --mark-succeeded | --retry | --skip",
                steps
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            PauseReason::UndoConflict { step, error } => format!(
                "the rollback of `{step}` stopped: {error}. drctl did not overwrite it; decide with drctl resume {run_id} --step {step} --retry (undo it anyway, after checking) | --mark-succeeded (you restored it yourself) | --skip (leave it as it is now)"
            ),
            PauseReason::ActionMissing { step, error } => format!(
                "`{step}` cannot run here: {error}; drive the run with a drctl that has it: drctl resume {run_id} --step {step} --retry | --skip, or drctl rollback {run_id}"
            ),
            PauseReason::Tampered { why } => format!(
                "its journal does not hold up: {why}. It was changed outside drctl and is not driven further; drctl verify {run_id} shows what does not hold, and drctl rollback {run_id} may still undo what it did"
            ),
            PauseReason::Words { text } => text.replace("RUN", run_id),
        }
    }
}

/// Reads a pause reason as journaled: typed, or the words of a journal written before.
pub(super) fn read_reason<'de, D: Deserializer<'de>>(d: D) -> Result<PauseReason, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Words(String),
        Typed(PauseReason),
    }
    Ok(match Stored::deserialize(d)? {
        Stored::Words(text) => PauseReason::Words { text },
        Stored::Typed(reason) => reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Event;

    #[test]
    fn a_reason_journaled_as_words_reads_back() {
        let old = r#"{"type":"run_paused","reason":"step `a` failed: boom; drctl resume RUN --step a --retry | --skip, or drctl rollback RUN"}"#;
        let event: Event = serde_json::from_str(old).expect("old event");
        let Event::RunPaused { reason } = event else {
            panic!("not a pause")
        };
        assert_eq!(
            reason.describe("r1"),
            "step `a` failed: boom; drctl resume r1 --step a --retry | --skip, or drctl rollback r1"
        );
    }

    #[test]
    fn a_typed_reason_round_trips_and_keeps_the_error_as_written() {
        let event = Event::RunPaused {
            reason: PauseReason::StepFailed {
                step: "a".into(),
                error: "RUN out of disk".into(),
            },
        };
        let text = serde_json::to_string(&event).expect("json");
        assert!(text.contains(r#""kind":"step_failed""#), "{text}");
        let back: Event = serde_json::from_str(&text).expect("back");
        assert_eq!(back, event);
        let Event::RunPaused { reason } = back else {
            panic!()
        };
        assert!(
            reason
                .describe("r1")
                .starts_with("step `a` failed: RUN out of disk;")
        );
    }
}
