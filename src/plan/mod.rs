//! The dry run: what a workflow would do, in what order, how long it should take against its
//! objectives, and its lints. Building a plan never changes anything.

mod digest;
mod graph;
mod live;
mod model;
mod text;

pub use digest::plan_digest;
pub use graph::{dot, mermaid};
pub use live::look_up;
pub use model::{LiveMode, Plan, PlanRollback, PlanStep, PlanWarning};
pub use text::render as render_text;

/// Renders the plan as pretty JSON with the fields of SPEC §4.
pub fn render_json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_default() + "\n"
}
