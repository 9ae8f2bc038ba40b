//! How a request of the run service fails: a message for the person, the documented exit code
//! (SPEC §9) for the scripts, and sometimes a longer detail shown before it (a workflow's
//! diagnostics). Every command returns `Result<u8, CliError>` (this type, named for the command
//! line that shows it); errors from the layers below convert with `?`.

use std::fmt;

use super::exit;
use crate::engine::EngineError;
use crate::report::ReportError;
use crate::store::StoreError;
use crate::stored::StoredError;
use crate::view::ViewError;

/// A command's failure.
#[derive(Debug)]
pub struct CliError {
    code: u8,
    message: String,
    detail: Option<String>,
}

impl CliError {
    /// A failure with exit code `code`.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            detail: None,
        }
    }

    /// Invalid input: a workflow, a flag, a run that does not exist, a refused decision (2).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(exit::INVALID_INPUT, message)
    }

    /// drctl itself failed (1).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(exit::INTERNAL, message)
    }

    /// With a longer text printed before the message (diagnostics, say).
    #[must_use]
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The exit code.
    pub fn exit_code(&self) -> u8 {
        self.code
    }

    /// The longer text shown before the message, when there is one.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The refusal a live process answers with for this failure: the message (after its
    /// detail, which the asking command shows), and the exit code.
    pub fn refusal(&self) -> crate::control::Response {
        let error = match &self.detail {
            Some(detail) => format!("{detail}{}", self.message),
            None => self.message.clone(),
        };
        crate::control::Response::refused_with(self.code, error)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// A foreign, damaged or newer store is invalid input (2); a store another process holds is
/// 6; an I/O failure is drctl's (1).
impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        let code = match e {
            StoreError::Locked { .. } | StoreError::Unfinished { .. } => exit::RUN_ACTIVE,
            StoreError::Fenced { .. } => exit::INTERNAL,
            StoreError::SchemaMismatch { .. }
            | StoreError::Corrupt { .. }
            | StoreError::BadRecord { .. } => exit::INVALID_INPUT,
            StoreError::Io(_) => exit::INTERNAL,
        };
        Self::new(code, e.to_string())
    }
}

impl From<StoredError> for CliError {
    fn from(e: StoredError) -> Self {
        match e {
            StoredError::Store(e) => e.into(),
            StoredError::NoLongerCompiles {
                ref diagnostics, ..
            } => Self::invalid(e.to_string()).with_detail(diagnostics.clone()),
        }
    }
}

impl From<EngineError> for CliError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Refused(r) => Self::invalid(r.0),
            EngineError::Store(e) => e.into(),
        }
    }
}

impl From<ViewError> for CliError {
    fn from(e: ViewError) -> Self {
        match e {
            ViewError::UnknownRun(_) => Self::invalid(e.to_string()),
            ViewError::Store(e) => e.into(),
        }
    }
}

impl From<ReportError> for CliError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::UnknownRun(_) => Self::invalid(e.to_string()),
            ReportError::Store(e) => e.into(),
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        Self::internal(format!("{e:#}"))
    }
}
