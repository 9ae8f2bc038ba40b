//! The durable executor. [`Run`] is its API: start a run or load one back from any store, then
//! advance it one input at a time. Each input is decided by a pure state machine
//! ([`Machine`]), journaled durably by a recorder, and answered with the [`Effect`]s it asks
//! for, which the tokio [`Driver`] performs (start an attempt, probe, compensate, arm a timer).
//! Nothing is performed before it is journaled. The engine never prints: it hands every event
//! to an observer. See docs/architecture.md.

mod audit;
mod clock;
mod digest;
mod driver;
mod effect;
mod error;
mod event;
mod exec;
mod gates;
mod machine;
mod pause;
mod read;
mod recorder;
mod run;
mod secrets;
mod services;
mod session;
mod trace;

pub use audit::{Audit, SignedBy, audit};
pub use clock::{Clock, ManualClock, SystemClock};
pub use digest::{Scheme, changed_steps, digest};
pub use driver::{ControlRequest, Driver, Observer, TickObserver, Until};
pub use effect::Effect;
pub use error::EngineError;
pub use event::{Decision, Event, Outputs};
pub use exec::resolve;
pub use gates::gates_kept;
pub use machine::{
    ApprovalDecision, Attempt, ByWhom, Choice, CompensationEnded, Input, Machine, Outcome, Pause,
    Refusal, RunProjection, StepProjection, StepState, Undo, Vote, VoteCast, WorkflowChange,
    WorkflowVersion, unchanged,
};
pub use pause::PauseReason;
pub use read::project;
pub use recorder::{DriverKey, Recorder};
pub use run::{Advanced, Run, Starting};
pub use secrets::{Redactor, Redactors, Registered};
pub use services::Services;
pub use session::{NewRun, Recorded, StartError, driver_key_for, events, journal_signer, replay};
