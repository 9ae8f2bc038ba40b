//! SDK errors, classified once (SPEC §5.4): a throttled request, one turned down because the
//! resource is busy with another change, or one refused before it was sent changed nothing and
//! may be tried again; a timeout, a connection broken after sending,
//! a 5xx or an unreadable answer may have taken effect (ambiguous: retried only by idempotent
//! steps); access denied, invalid parameters and missing resources are fatal, and their message
//! names the resource, the region and what to check.
//!
//! The result is a [`CallError`], this layer's own type: what retrying, probing or rolling
//! back make of it is decided by the actions, which turn it into their step error.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// A failed AWS call (or a failure to prepare one), by what it says about its effect. Each
/// variant holds the message, which names the resource and the region.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The request changed nothing (throttled, refused before it was sent): another attempt
    /// is safe.
    #[error("{0}")]
    NoEffect(String),
    /// The request may have been carried out (a timeout, a connection broken after sending,
    /// a 5xx, an unreadable answer).
    #[error("{0}")]
    Ambiguous(String),
    /// Retrying will not help (access denied, invalid parameters, not found, no credentials
    /// or region).
    #[error("{0}")]
    Fatal(String),
}

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "PriorRequestNotComplete",
    "RequestThrottled",
    "SlowDown",
];

/// Refusals because the resource is busy with another change (an Auto Scaling group's pending
/// update, even when answered with a 500; a parameter updated concurrently; a global cluster or
/// global datastore in the middle of another failover; as many automations running as SSM
/// allows; a `DynamoDB` table with another backup under way; a Lambda function being updated
/// or still being created; a state machine at its limit of running executions): the request
/// was turned down, so it changed nothing, and a later attempt may pass.
const BUSY: &[&str] = &[
    "ResourceContention",
    "ScalingActivityInProgress",
    "TooManyUpdates",
    "InvalidGlobalClusterStateFault",
    "InvalidGlobalReplicationGroupState",
    "AutomationExecutionLimitExceededException",
    "AutomationExecutionLimitExceeded",
    "BackupInUseException",
    "ResourceConflictException",
    "ResourceNotReadyException",
    "ExecutionLimitExceeded",
];

/// Classifies an SDK error of an operation on `what` (e.g. "DB instance orders-replica") in
/// `region`.
pub fn classify<E>(err: &SdkError<E, HttpResponse>, what: &str, region: &str) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("Unknown");
            let message = e.message().unwrap_or("");
            let status = service.raw().status().as_u16();
            let text = format!(
                "{what} in {region}: {code}{}",
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            );
            if THROTTLING.contains(&code) || BUSY.contains(&code) || status == 429 {
                return CallError::NoEffect(text);
            }
            if status >= 500 {
                // The service may have acted before it failed to answer.
                return CallError::Ambiguous(text);
            }
            let hint = if code.contains("AccessDenied")
                || code.contains("Unauthorized")
                || code.contains("Forbidden")
            {
                "check the IAM permissions of the credentials in use"
            } else if code.contains("NotFound") || code.starts_with("NoSuch") {
                "check the name and the region"
            } else if code.contains("Invalid") || code.contains("Validation") {
                "check the step's parameters and the resource's current state"
            } else {
                "see the AWS documentation of this error code"
            };
            CallError::Fatal(format!("{text} ({hint})"))
        }
        SdkError::TimeoutError(_) => CallError::Ambiguous(format!(
            "{what} in {region}: the request timed out (it may have been carried out)"
        )),
        SdkError::ResponseError(_) => CallError::Ambiguous(format!(
            "{what} in {region}: the response could not be read (the request may have been carried out)"
        )),
        SdkError::DispatchFailure(failure) => {
            let detail = failure
                .as_connector_error()
                .map_or_else(|| format!("{err:?}"), ToString::to_string);
            if failure.is_user() {
                CallError::Fatal(format!(
                    "{what} in {region}: the request could not be sent: {detail}"
                ))
            } else if refused_before_sending(err) {
                CallError::NoEffect(format!(
                    "{what} in {region}: AWS could not be reached: {detail}"
                ))
            } else {
                CallError::Ambiguous(format!(
                    "{what} in {region}: the connection failed, the request may have been carried out: {detail}"
                ))
            }
        }
        _ => CallError::Fatal(format!("{what} in {region}: {}", error_chain(err))),
    }
}

/// Whether the connection was refused, so the request never left: the one dispatch failure
/// that proves no effect. Anything else (a reset, a timeout) may come after the request was
/// sent.
fn refused_before_sending(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        if e.to_string().contains("Connection refused") {
            return true;
        }
        source = e.source();
    }
    false
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_autoscaling::operation::update_auto_scaling_group::UpdateAutoScalingGroupError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn answered(code: &str, status: u16) -> SdkError<UpdateAutoScalingGroupError, HttpResponse> {
        let err = UpdateAutoScalingGroupError::generic(ErrorMetadata::builder().code(code).build());
        let raw = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        SdkError::service_error(err, raw)
    }

    #[test]
    fn a_request_turned_down_because_the_resource_is_busy_changed_nothing() {
        // Auto Scaling answers a pending update with a 500 that rejects the request.
        for (code, status) in [
            ("ResourceContention", 500),
            ("ScalingActivityInProgress", 400),
            ("TooManyUpdates", 400),
        ] {
            let e = classify(&answered(code, status), "group workers", "us-west-2");
            assert!(matches!(e, CallError::NoEffect(_)), "{code}: {e:?}");
        }
        for code in ["BackupInUseException", "ResourceConflictException"] {
            let e = classify(&answered(code, 400), "table tasks", "us-west-2");
            assert!(matches!(e, CallError::NoEffect(_)), "{code}: {e:?}");
        }
        let e = classify(
            &answered("InternalFailure", 500),
            "group workers",
            "us-west-2",
        );
        assert!(matches!(e, CallError::Ambiguous(_)), "{e:?}");
        let e = classify(
            &answered("ValidationError", 400),
            "group workers",
            "us-west-2",
        );
        assert!(matches!(e, CallError::Fatal(_)), "{e:?}");
    }

    #[test]
    fn a_global_operation_or_runbook_turned_down_while_another_runs_changed_nothing() {
        for code in [
            "InvalidGlobalClusterStateFault",
            "InvalidGlobalReplicationGroupState",
            "AutomationExecutionLimitExceededException",
        ] {
            let e = classify(&answered(code, 400), "global cluster orders", "us-east-1");
            assert!(matches!(e, CallError::NoEffect(_)), "{code}: {e:?}");
        }
        let e = classify(
            &answered("IdempotentParameterMismatch", 400),
            "SSM Automation",
            "us-east-1",
        );
        assert!(matches!(e, CallError::Fatal(_)), "{e:?}");
    }
}
