//! The stable codes of every error and lint drctl reports about a workflow.
//!
//! Codes never change meaning once released: scripts, docs and people search for them.
//! Every code here has an entry in `docs/errors.md` (a test keeps the two in step).

use std::fmt;

/// A stable diagnostic code: `DRC####` for errors, `DRW####` for lints (warnings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// The file could not be read (missing, unreadable, not UTF-8).
    Unreadable,
    /// The file is not valid TOML.
    TomlSyntax,
    /// A key that the format does not know.
    UnknownKey,
    /// A required key is missing.
    MissingKey,
    /// A value has the wrong TOML type.
    WrongType,
    /// A value has the right type but is not allowed (pattern, enum, range).
    InvalidValue,
    /// A duration that does not parse.
    BadDuration,
    /// Two steps share an id.
    DuplicateStep,
    /// `needs` names a step that does not exist.
    UnknownNeeds,
    /// The steps depend on each other in a cycle.
    Cycle,
    /// `action` names no known action.
    UnknownAction,
    /// A `with` key the action does not take.
    UnknownParam,
    /// A parameter the action requires is missing.
    MissingParam,
    /// A parameter has the wrong type or an invalid value.
    BadParam,
    /// `${params.X}` names no workflow parameter.
    UnknownParamRef,
    /// `${steps.ID...}` names no step.
    UnknownStepRef,
    /// `${steps.ID.outputs.KEY}` names an output the step's action does not produce.
    UnknownOutputRef,
    /// A `${...}` expression that is not one of the three known forms.
    BadTemplate,
    /// More than one step has `marks = "recovered"`.
    DuplicateRecovered,
    /// More than one step has `measures = "rpo"`, or the action cannot measure RPO.
    BadMeasures,
    /// A `--param` override names no parameter or has a bad value.
    BadOverride,
    /// The `when` key is reserved and not supported yet.
    Unsupported,
    /// A `${...}` reference in a parameter that must be written out, like an approval's policy.
    ReferenceInPolicy,
    /// The `allowed_signers` file is missing, unreadable or not in the allowed-signers format.
    BadSigners,
    /// An approver named by an approval has no key in the `allowed_signers` file.
    ApproverWithoutKey,
    /// One key belongs to several approvers of one approval: one person could vote twice.
    SharedApproverKey,
    /// A step changes something it cannot undo and no approval comes before it.
    IrreversibleWithoutApproval,
    /// A step not connected to the rest of the workflow.
    Disconnected,
    /// The critical path of the estimates exceeds the RTO objective.
    EstimateExceedsRto,
    /// An RTO objective without a step marked `recovered`.
    RtoWithoutRecoveredMarker,
    /// An RPO objective without a step that `measures = "rpo"`.
    RpoWithoutMeasure,
    /// Approvals without an `allowed_signers` file: approvers are who they type they are.
    UnauthenticatedApprovals,
    /// `${params.*}` or `${steps.*}` pasted into the script of a `sh -c` shell step.
    ReferenceInShellScript,
}

impl Code {
    /// Every code, in documentation order.
    pub const ALL: &'static [Code] = &[
        Code::Unreadable,
        Code::TomlSyntax,
        Code::UnknownKey,
        Code::MissingKey,
        Code::WrongType,
        Code::InvalidValue,
        Code::BadDuration,
        Code::DuplicateStep,
        Code::UnknownNeeds,
        Code::Cycle,
        Code::UnknownAction,
        Code::UnknownParam,
        Code::MissingParam,
        Code::BadParam,
        Code::UnknownParamRef,
        Code::UnknownStepRef,
        Code::UnknownOutputRef,
        Code::BadTemplate,
        Code::DuplicateRecovered,
        Code::BadMeasures,
        Code::BadOverride,
        Code::Unsupported,
        Code::ReferenceInPolicy,
        Code::BadSigners,
        Code::ApproverWithoutKey,
        Code::SharedApproverKey,
        Code::IrreversibleWithoutApproval,
        Code::Disconnected,
        Code::EstimateExceedsRto,
        Code::RtoWithoutRecoveredMarker,
        Code::RpoWithoutMeasure,
        Code::UnauthenticatedApprovals,
        Code::ReferenceInShellScript,
    ];

    /// The stable text of the code, e.g. `DRC0003`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unreadable => "DRC0001",
            Code::TomlSyntax => "DRC0002",
            Code::UnknownKey => "DRC0003",
            Code::MissingKey => "DRC0004",
            Code::WrongType => "DRC0005",
            Code::InvalidValue => "DRC0006",
            Code::BadDuration => "DRC0007",
            Code::DuplicateStep => "DRC0008",
            Code::UnknownNeeds => "DRC0009",
            Code::Cycle => "DRC0010",
            Code::UnknownAction => "DRC0011",
            Code::UnknownParam => "DRC0012",
            Code::MissingParam => "DRC0013",
            Code::BadParam => "DRC0014",
            Code::UnknownParamRef => "DRC0015",
            Code::UnknownStepRef => "DRC0016",
            Code::UnknownOutputRef => "DRC0017",
            Code::BadTemplate => "DRC0018",
            Code::DuplicateRecovered => "DRC0019",
            Code::BadMeasures => "DRC0020",
            Code::BadOverride => "DRC0021",
            Code::Unsupported => "DRC0022",
            Code::ReferenceInPolicy => "DRC0023",
            Code::BadSigners => "DRC0024",
            Code::ApproverWithoutKey => "DRC0025",
            Code::SharedApproverKey => "DRC0026",
            Code::IrreversibleWithoutApproval => "DRW0001",
            Code::Disconnected => "DRW0002",
            Code::EstimateExceedsRto => "DRW0003",
            Code::RtoWithoutRecoveredMarker => "DRW0004",
            Code::RpoWithoutMeasure => "DRW0005",
            Code::UnauthenticatedApprovals => "DRW0006",
            Code::ReferenceInShellScript => "DRW0007",
        }
    }

    /// Whether this code is a lint (a warning) rather than an error.
    pub fn is_lint(self) -> bool {
        self.as_str().starts_with("DRW")
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
