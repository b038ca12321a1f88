//! Span export over OTLP/HTTP (protobuf), when `telemetry.otlp_endpoint` is set.
//!
//! Spans are not made through a tracer: the request's ids are already fixed by its
//! [`TraceContext`] (and sent upstream in `traceparent`), and the SDK's tracer would make up
//! its own. So each request hands its finished spans, a server span and one client span
//! per upstream attempt, to an OpenTelemetry batch processor, which exports them from its
//! own thread. Without an endpoint nothing here runs and a request records no spans.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry::{Key, Value};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SpanData, SpanEvents, SpanLinks, SpanProcessor as _,
};

use crate::config::{ConfigError, TelemetryConfig};
use crate::trace_context::{FinishedSpan, SpanKind as Kind, TraceContext};

/// Where a BFF's spans go. Cheap to clone.
#[derive(Clone)]
pub struct SpanSink {
    processor: Arc<BatchSpanProcessor>,
    scope: InstrumentationScope,
}

impl std::fmt::Debug for SpanSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanSink").finish_non_exhaustive()
    }
}

impl SpanSink {
    /// The sink for `config`, spans named for `service` (`service.name`); `None` when no
    /// endpoint is set.
    pub fn from_config(
        config: &TelemetryConfig,
        service: &'static str,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(base) = &config.otlp_endpoint else {
            return Ok(None);
        };
        let endpoint = if base.ends_with("/v1/traces") {
            base.clone()
        } else {
            format!("{}/v1/traces", base.trim_end_matches('/'))
        };
        let interval = Duration::from_millis(config.export_interval_ms);
        // The blocking HTTP client starts (and, dropped, stops) a runtime of its own, which
        // must not happen on a runtime thread: build it on a plain one.
        let built = std::thread::spawn(move || {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(endpoint)
                .with_timeout(Duration::from_secs(5))
                .build()?;
            let mut processor = BatchSpanProcessor::builder(exporter)
                .with_batch_config(
                    BatchConfigBuilder::default()
                        .with_scheduled_delay(interval)
                        .build(),
                )
                .build();
            processor.set_resource(&Resource::builder().with_service_name(service).build());
            Ok::<_, opentelemetry_otlp::ExporterBuildError>(processor)
        })
        .join();
        let processor = match built {
            Ok(Ok(processor)) => processor,
            Ok(Err(error)) => {
                return Err(ConfigError::invalid(
                    "telemetry.otlp_endpoint",
                    error.to_string(),
                ));
            }
            Err(_) => {
                return Err(ConfigError::invalid(
                    "telemetry.otlp_endpoint",
                    "the exporter could not be built",
                ));
            }
        };
        Ok(Some(Self {
            processor: Arc::new(processor),
            scope: InstrumentationScope::builder("switchyard")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
        }))
    }

    /// Queues `spans` of the request traced by `trace` for export (never blocks).
    pub fn export(&self, trace: &TraceContext, spans: Vec<FinishedSpan>) {
        let trace_id = TraceId::from_bytes(trace.trace_id_bytes());
        for span in spans {
            let context = SpanContext::new(
                trace_id,
                SpanId::from_bytes(span.span_id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            );
            self.processor.on_end(SpanData {
                span_context: context,
                parent_span_id: span
                    .parent_span_id
                    .map_or(SpanId::INVALID, SpanId::from_bytes),
                parent_span_is_remote: span.parent_is_remote,
                span_kind: match span.kind {
                    Kind::Server => SpanKind::Server,
                    Kind::Client => SpanKind::Client,
                },
                name: Cow::Owned(span.name),
                start_time: span.start,
                end_time: span.end,
                attributes: span
                    .attributes
                    .into_iter()
                    .map(|(key, value)| {
                        KeyValue::new(Key::from_static_str(key), Value::from(value))
                    })
                    .collect(),
                dropped_attributes_count: 0,
                events: SpanEvents::default(),
                links: SpanLinks::default(),
                status: if span.failed {
                    Status::error("")
                } else {
                    Status::Unset
                },
                instrumentation_scope: self.scope.clone(),
            });
        }
    }

    /// Sends what is queued and stops (at shutdown).
    pub fn shutdown(&self) {
        let processor = Arc::clone(&self.processor);
        // The processor's shutdown waits for its thread; keep that off the runtime.
        let _ = std::thread::spawn(move || processor.shutdown()).join();
    }
}
