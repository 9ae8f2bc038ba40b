//! Every AWS request in the logs (at `debug`): service, operation, attempt, HTTP status, the
//! request id AWS gave it (what AWS support asks for) and how it ended. An SDK interceptor on
//! the clients, so that no call can be left out. Parameters and bodies are not logged: they
//! may hold what `${env.NAME}` resolved to.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Logs each attempt of each call a client makes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Logged;

impl Intercept for Logged {
    fn name(&self) -> &'static str {
        "drctl::aws::Logged"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return Ok(());
        }
        let (service, operation) = cfg
            .load::<Metadata>()
            .map_or(("?", "?"), |m| (m.service(), m.name()));
        let attempt = cfg
            .load::<RequestAttempts>()
            .map_or(1, RequestAttempts::attempts);
        let response = context.response();
        let status = response.map(|r| r.status().as_u16());
        let request_id = response.and_then(|r| {
            r.headers()
                .get("x-amzn-requestid")
                .or_else(|| r.headers().get("x-amz-request-id"))
        });
        let outcome = match context.output_or_error() {
            Some(Ok(_)) => "ok",
            Some(Err(e)) if e.is_operation_error() => "refused",
            Some(Err(e)) if e.is_timeout_error() => "timed out",
            Some(Err(e)) if e.is_connector_error() => "not connected",
            Some(Err(e)) if e.is_response_error() => "unreadable answer",
            Some(Err(_)) | None => "failed",
        };
        tracing::debug!(
            service, operation, attempt, status, request_id, outcome, "AWS call"
        );
        Ok(())
    }
}
