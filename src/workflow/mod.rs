//! The workflow language as written: TOML read with every value's place kept.
//!
//! This module owns reading a file into a [`RawWorkflow`] and the small languages inside it
//! (durations, `${...}` templates). It does not know actions or the graph: the `dag` module
//! compiles a raw workflow and the engine only ever sees compiled ones.

mod duration;
mod node;
mod raw;
mod reader;
mod template;

pub use duration::{format_duration, parse_duration};
pub use node::{Key, Node, NodeKind, Table};
pub use raw::{
    OnFailure, ParamValue, RawDefaults, RawEvents, RawHeader, RawParam, RawRetry, RawRollback,
    RawStep, RawWorkflow, RunEventKind, Spanned, WorkflowKind,
};
pub use reader::{NO_RETRY, STEP_KEYS, is_identifier, read_workflow, webhook_shape};
pub use template::{Segment, Template, TemplateError};
