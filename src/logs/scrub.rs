//! Every log line scrubbed of the secrets of the run it is about (SPEC §5.8.4, §5.8.8): a
//! layer marks each `run` span with its run, and the line's format is wrapped so that the
//! formatted line goes out through that run's redactor (every registered run's when the line
//! is in no run's span).

use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::engine::Redactors;

/// The run a span is about: put on each `run` span (the driver's) when it is created.
struct RunOf(String);

/// Marks each `run` span with its `run_id` ([`RunOf`]), for [`Scrubbed`] to find.
pub struct RunSpans;

impl<S> Layer<S> for RunSpans
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        if attrs.metadata().name() != "run" {
            return;
        }
        let mut run_id = RunIdField(None);
        attrs.record(&mut run_id);
        if let (Some(run), Some(span)) = (run_id.0, ctx.span(id)) {
            span.extensions_mut().insert(RunOf(run));
        }
    }
}

/// Reads the `run_id` field of a span.
struct RunIdField(Option<String>);

impl Visit for RunIdField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "run_id" {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "run_id" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// A line formatted by `inner`, then scrubbed with the redactor of the run whose span the
/// event is in (every registered run's when it is in none).
pub struct Scrubbed<F> {
    inner: F,
    redactors: Redactors,
}

impl<F> Scrubbed<F> {
    /// Lines formatted by `inner`, scrubbed with `redactors`.
    pub fn new(inner: F, redactors: Redactors) -> Self {
        Self { inner, redactors }
    }
}

impl<S, N, F> FormatEvent<S, N> for Scrubbed<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let run = ctx.event_scope().and_then(|mut scope| {
            scope.find_map(|span| span.extensions().get::<RunOf>().map(|r| r.0.clone()))
        });
        writer.write_str(&self.redactors.scrub(run.as_deref(), &line))
    }
}
