//! SNS through the SDK: one message published, sent once. Nothing can tell afterwards whether
//! a message whose answer was lost went out, so there is no probe: the operator decides.

use super::LiveState;
use super::outcome::{ExecContext, Outputs, Resolved, StepError, live_or_unavailable, text};
use crate::aws::{AwsContext, Clients, classify};

/// The topic's region: the step's `region`, else the one its ARN names
/// (`arn:aws:sns:REGION:ACCOUNT:NAME`), else the chain's.
fn region_of(args: &Resolved) -> Option<&str> {
    text(args, "region").or_else(|| {
        text(args, "topic_arn")
            .and_then(|arn| arn.split(':').nth(3))
            .filter(|r| !r.is_empty())
    })
}

async fn clients(args: &Resolved, ctx: &crate::aws::AwsContext) -> Result<Clients, StepError> {
    Ok(ctx.clients(region_of(args)).await?)
}

/// `sns.publish`.
pub async fn publish(args: &Resolved, ctx: &ExecContext) -> Result<Outputs, StepError> {
    let c = clients(args, &ctx.aws).await?;
    let topic = text(args, "topic_arn").unwrap_or_default();
    let out = c
        .sns
        .publish()
        .topic_arn(topic)
        .message(text(args, "message").unwrap_or_default())
        .set_subject(text(args, "subject").map(str::to_string))
        .customize()
        .config_override(crate::aws::sent_once_sns())
        .send()
        .await
        .map_err(|e| classify(&e, &format!("publishing to SNS topic {topic}"), &c.region))?;
    let mut o = Outputs::new();
    o.insert(
        "message_id".into(),
        out.message_id().unwrap_or_default().into(),
    );
    Ok(o)
}

/// The topic a step would publish to and how many confirmed subscriptions it reaches, for
/// plan: a topic nobody is subscribed to pages nobody.
pub async fn current_topic(args: &Resolved, aws: &AwsContext) -> LiveState {
    let lookup = async {
        let c = clients(args, aws).await?;
        let topic = text(args, "topic_arn").unwrap_or_default();
        let out = c
            .sns
            .get_topic_attributes()
            .topic_arn(topic)
            .send()
            .await
            .map_err(|e| classify(&e, &format!("SNS topic {topic}"), &c.region))?;
        let confirmed = out
            .attributes()
            .and_then(|a| a.get("SubscriptionsConfirmed"))
            .map_or("?", String::as_str);
        Ok(format!("topic exists, {confirmed} confirmed subscriptions"))
    };
    live_or_unavailable(lookup.await)
}
