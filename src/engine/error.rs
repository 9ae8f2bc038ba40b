//! Why the engine stopped driving a run.

use thiserror::Error;

use super::machine::Refusal;
use crate::store::StoreError;

/// Why the engine stopped driving a run (fatal, unlike a failed step).
#[derive(Debug, Error)]
pub enum EngineError {
    /// The store failed: the run is left where its journal says.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The input was refused.
    #[error(transparent)]
    Refused(#[from] Refusal),
}
