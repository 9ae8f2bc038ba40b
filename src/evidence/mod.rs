//! Evidence of a run (SPEC §5.9): its record, its whole journal with every signature in it,
//! the allowed signers it captured, and where its journal ended at its last commit. `drctl
//! verify RUN` checks it from the store; `drctl report RUN --format evidence` writes it to a
//! self-contained file that `drctl verify --evidence FILE --signers FILE` checks on a machine
//! with no store, against the allowed signers the auditor trusts (SPEC §5.10).
//!
//! This module reads and checks; it never writes to the store.

mod check;
mod text;

pub use check::{Derived, Signature, Trust, Verdict, verify};
pub use text::verdict_text;

use serde::{Deserialize, Serialize};

use crate::store::{Anchor, JournalEntry, RunRecord, Store, StoreError};

/// The `format` of an evidence file.
pub const EVIDENCE_FORMAT: &str = "drctl-evidence/v1";

/// Everything needed to check a run without its store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evidence {
    /// [`EVIDENCE_FORMAT`].
    pub format: String,
    /// The run record as of its last commit.
    pub run: RunRecord,
    /// Where the journal ended at the last commit, as the store keeps it apart.
    pub anchor: Option<Anchor>,
    /// The journal, every entry.
    pub journal: Vec<JournalEntry>,
    /// The workflow text the run started with.
    pub workflow_source: Option<String>,
}

/// The evidence of run `run_id`, or `None` when there is no such run.
pub fn collect(store: &dyn Store, run_id: &str) -> Result<Option<Evidence>, StoreError> {
    let Some(run) = store.run(run_id)? else {
        return Ok(None);
    };
    Ok(Some(Evidence {
        format: EVIDENCE_FORMAT.to_string(),
        anchor: store.anchor(run_id)?,
        journal: store.journal(run_id)?,
        workflow_source: store.source(run_id)?,
        run,
    }))
}
