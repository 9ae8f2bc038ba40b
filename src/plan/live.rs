//! Live values for the plan: each step that would change an AWS resource reads its current
//! state (read-only describe calls, like `terraform plan`), all at once, each bounded in time.
//! A lookup that fails says why on its step; the rest of the plan is unaffected.

use std::sync::Arc;
use std::time::Duration;

use super::model::Plan;
use crate::actions::{LiveState, Registry};
use crate::aws::AwsContext;
use crate::dag::CompiledWorkflow;

/// How long one lookup may take before the plan gives up on it.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(15);

/// Fills `current` on the plan's steps, asking the actions of `registry` through `aws`.
pub async fn look_up(
    plan: &mut Plan,
    workflow: &CompiledWorkflow,
    registry: &Registry,
    aws: Arc<AwsContext>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for step in &workflow.steps {
        let Some(action) = registry.shared(&step.action) else {
            continue;
        };
        // References to other steps' outputs cannot be known before the run: they stay as
        // written, and `${env...}` is never read for a plan.
        let serde_json::Value::Object(args) = step.args.to_json() else {
            continue;
        };
        let (aws, id) = (aws.clone(), step.id.clone());
        tasks.spawn(async move {
            let state = tokio::time::timeout(LOOKUP_TIMEOUT, action.current(&args, &aws))
                .await
                .unwrap_or_else(|_| {
                    LiveState::Unavailable(format!(
                        "no answer within {}s",
                        LOOKUP_TIMEOUT.as_secs()
                    ))
                });
            (id, state)
        });
    }
    while let Some(Ok((id, state))) = tasks.join_next().await {
        let text = match state {
            LiveState::NotApplicable => continue,
            LiveState::Current(now) => now,
            LiveState::Unavailable(why) => format!("could not be read: {why}"),
        };
        if let Some(step) = plan.steps.iter_mut().find(|s| s.id == id) {
            step.current = Some(text);
        }
    }
}
