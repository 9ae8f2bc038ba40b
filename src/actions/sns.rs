//! SNS actions: publishing a message to a topic, as the emergency team is paged.

use super::schema::{ParamSpec as P, ParamType as T};
use super::sns_exec as exec;
use super::{Action, ActionSpec, Arg, ArgProblem, Args, Effect};

pub(super) fn all() -> Vec<Box<dyn Action>> {
    vec![Box::new(Publish)]
}

/// SNS takes a subject of at most 100 characters.
const SUBJECT_MAX: usize = 100;

struct Publish;

static PUBLISH: ActionSpec = ActionSpec {
    name: "sns.publish",
    summary: "Publish a message to an SNS topic (an email, SMS or paging subscription). Sent at most once: when its outcome is lost, the operator decides.",
    params: &[
        P::optional(
            "region",
            T::String,
            "AWS region; the topic ARN's region when absent",
        ),
        P::required("topic_arn", T::String, "the topic's ARN"),
        P::required("message", T::String, "the message"),
        P::optional(
            "subject",
            T::String,
            "the subject, for email subscriptions (at most 100 characters, one line)",
        ),
    ],
    outputs: &["message_id"],
    idempotent: false,
    effect: Effect::Notification,
};

impl Action for Publish {
    fn spec(&self) -> &'static ActionSpec {
        &PUBLISH
    }

    fn check(&self, args: &Args) -> Vec<ArgProblem> {
        let mut problems = Vec::new();
        if let Some(subject) = args.get("subject").and_then(Arg::literal_text) {
            if subject.chars().count() > SUBJECT_MAX {
                problems.push(ArgProblem {
                    param: Some("subject"),
                    message: format!(
                        "SNS takes a subject of at most {SUBJECT_MAX} characters, this one has {}",
                        subject.chars().count()
                    ),
                });
            }
            if subject.contains(['\n', '\r']) {
                problems.push(ArgProblem {
                    param: Some("subject"),
                    message: "a subject is one line: SNS refuses line breaks in it".into(),
                });
            }
        }
        if let Some(arn) = args.get("topic_arn").and_then(Arg::literal_text)
            && !arn.starts_with("arn:")
        {
            problems.push(ArgProblem {
                param: Some("topic_arn"),
                message: format!("\"{arn}\" is not a topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
            });
        }
        problems
    }

    fn describe(&self, args: &Args) -> String {
        let subject = args
            .get("subject")
            .map(|s| format!(" with subject {s}"))
            .unwrap_or_default();
        format!(
            "publish to SNS topic {}{subject}: {} (sent once: cannot be taken back)",
            args.show("topic_arn"),
            args.show("message"),
        )
    }

    hooks! {
        execute = exec::publish,
        current = exec::current_topic,
    }
}
