//! SDK errors, classified once: throttling, 5xx, timeouts and connection errors may pass on
//! another attempt; access denied, invalid parameters and missing resources will not, and
//! their message names the resource, the region and what to check.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::actions::StepError;

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

/// Turns an SDK error of an operation on `what` (e.g. "DB instance orders-replica") in
/// `region` into a step error.
pub fn classify<E>(err: &SdkError<E, HttpResponse>, what: &str, region: &str) -> StepError
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
            if THROTTLING.contains(&code) || status == 429 || status >= 500 {
                return StepError::retryable(text);
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
            StepError::fatal(format!("{text} ({hint})"))
        }
        SdkError::TimeoutError(_) => {
            StepError::retryable(format!("{what} in {region}: the request timed out"))
        }
        SdkError::ResponseError(_) => StepError::retryable(format!(
            "{what} in {region}: the response could not be read"
        )),
        SdkError::DispatchFailure(failure) => {
            let detail = failure
                .as_connector_error()
                .map_or_else(|| format!("{err:?}"), ToString::to_string);
            if failure.is_user() {
                StepError::fatal(format!(
                    "{what} in {region}: the request could not be sent: {detail}"
                ))
            } else {
                StepError::retryable(format!(
                    "{what} in {region}: AWS could not be reached: {detail}"
                ))
            }
        }
        _ => StepError::fatal(format!("{what} in {region}: {}", error_chain(err))),
    }
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
