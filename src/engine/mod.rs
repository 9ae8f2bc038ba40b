//! The durable executor: a pure state machine ([`Machine`]) that decides, a recorder that
//! journals each decision durably, and a tokio [`Driver`] that acts only on what was journaled.
//! The engine never prints: it hands every event to an observer.

mod clock;
mod driver;
mod error;
mod event;
mod exec;
mod gates;
mod machine;
mod recorder;
mod secrets;
mod session;

pub use clock::{Clock, ManualClock, SystemClock};
pub use driver::{ControlRequest, Driver, Observer, TickObserver, Until};
pub use error::EngineError;
pub use event::{Decision, Event, Outputs};
pub use exec::resolve;
pub use gates::gates_kept;
pub use machine::{Choice, Input, Machine, Refusal, StepState, Undo};
pub use recorder::Recorder;
pub use secrets::Redactor;
pub use session::{NewRun, StartError, digest, load_run, replay, start_run};
