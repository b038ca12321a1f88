//! Server plumbing every BFF shares: health and readiness routes, request ids, access
//! logging, admission control, the limit per client address, body limits, and the
//! listener with its connection limits and graceful shutdown ([`listener`]).

mod listener;

pub use listener::{
    BodyReadTimeout, ConnectionLimits, MAX_CONCURRENT_STREAMS, MAX_HEADER_BYTES,
    MAX_REQUEST_HEADERS, serve,
};

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::auth::Authenticator;
use crate::config::ServerConfig;
use crate::error::ErrorCode;
use crate::metrics::{METRICS_PATH, Metrics, RequestRecord};
use crate::ratelimit::{AddressLimit, Limiter, limit_by_address};
use crate::response::ErrorResponder;
use crate::trace_context::{FinishedSpan, SpanKind, TraceContext};
use crate::trace_export::SpanSink;
use crate::upstream::{Guards, UpstreamsHealth};

/// Header carrying the request id, accepted from clients and echoed on every response.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of `request` (set by [`with_common_layers`]), or `"-"` outside it.
pub fn request_id_of(extensions: &http::Extensions) -> &str {
    extensions
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-")
}

/// What `/readyz` reports; the BFF is ready when every check passes.
#[derive(Clone)]
pub struct Readiness {
    authenticator: Authenticator,
    guards: Guards,
}

impl Readiness {
    /// Readiness of a BFF authenticating with `authenticator` and calling upstreams through
    /// `guards` (whose breaker states it reports).
    pub fn new(authenticator: Authenticator, guards: Guards) -> Self {
        Self {
            authenticator,
            guards,
        }
    }
}

/// Open breakers do not make a BFF unready: it still serves what it can (and cached data),
/// and taking it out of rotation would not heal the upstream.
#[derive(Serialize)]
struct ReadinessReport {
    ready: bool,
    checks: ReadinessChecks,
    upstreams: UpstreamsHealth,
}

#[derive(Serialize)]
struct ReadinessChecks {
    config: &'static str,
    signing_keys: &'static str,
}

/// `GET /healthz` (alive) and `GET /readyz` (able to serve). Neither calls an upstream.
pub fn health_routes<S: Clone + Send + Sync + 'static>(readiness: Readiness) -> Router<S> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz).with_state(readiness))
}

async fn readyz(State(readiness): State<Readiness>) -> Response {
    let keys = readiness.authenticator.has_keys();
    if !keys {
        // Keys may have failed to load at start-up; retry, at most once per JWKS cooldown,
        // so that frequent probes against a down issuer do not hammer it.
        let _ = readiness.authenticator.retry_keys().await;
    }
    let keys = keys || readiness.authenticator.has_keys();
    let report = ReadinessReport {
        ready: keys,
        checks: ReadinessChecks {
            config: "ok",
            signing_keys: if keys { "ok" } else { "missing" },
        },
        upstreams: readiness.guards.health(),
    };
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report)).into_response()
}

/// Generates request ids: a process-unique, monotonically numbered id, cheap to make.
#[derive(Clone, Copy, Default)]
struct SequentialRequestId;

impl MakeRequestId for SequentialRequestId {
    fn make_request_id<B>(&mut self, _request: &http::Request<B>) -> Option<RequestId> {
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        static PREFIX: OnceLock<String> = OnceLock::new();
        let prefix = PREFIX.get_or_init(|| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            format!("{:x}-{:x}", nanos & 0xffff_ffff_ffff, std::process::id())
        });
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{prefix}-{n:x}"))
            .ok()
            .map(RequestId::new)
    }
}

/// Headers no client may set: ones only Switchyard itself sends upstream, and the
/// configured `server.strip_request_headers`.
#[derive(Clone)]
struct StrippedHeaders(Arc<[HeaderName]>);

impl StrippedHeaders {
    fn new(configured: &[String]) -> Self {
        let names: Vec<HeaderName> = configured
            .iter()
            .filter_map(|name| HeaderName::try_from(name.to_ascii_lowercase()).ok())
            .collect();
        Self(names.into())
    }

    fn strips(&self, name: &HeaderName) -> bool {
        let text = name.as_str();
        text == "x-consumer-id"
            || text.starts_with("x-switchyard-")
            || text.starts_with("x-internal-")
            || self.0.contains(name)
    }
}

/// Drops, at the edge, headers a client could use to pass as someone or something else
/// (`x-consumer-id`, `x-switchyard-*`, `x-internal-*`, `server.strip_request_headers`),
/// so that no handler, and no upstream, ever sees them.
async fn strip_internal_headers(
    State(stripped): State<StrippedHeaders>,
    mut request: Request,
    next: Next,
) -> Response {
    let doomed: Vec<HeaderName> = request
        .headers()
        .keys()
        .filter(|name| stripped.strips(name))
        .cloned()
        .collect();
    for name in doomed {
        request.headers_mut().remove(name);
    }
    next.run(request).await
}

/// Drops a client-supplied request id that is not a short printable token, so log lines
/// and upstream headers cannot be polluted through it; a fresh id is generated instead.
async fn sanitize_request_id(mut request: Request, next: axum::middleware::Next) -> Response {
    let acceptable = request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .is_none_or(|value| {
            let bytes = value.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= 128
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        });
    if !acceptable {
        request.headers_mut().remove(&REQUEST_ID_HEADER);
    }
    next.run(request).await
}

/// Wraps a BFF's router in the layers every BFF has, outermost first: internal headers
/// stripped → request-id sanitising → request id (set, then echoed) → access log → body limit.
///
/// Between the access log and the body limit sit admission control
/// (`server.max_in_flight`) and the limit per client address (`ratelimit.anonymous`), both
/// answering in `responder`'s format; `/healthz` and `/readyz` pass both.
pub fn with_common_layers<R: ErrorResponder>(
    router: Router,
    config: &ServerConfig,
    limiter: Option<Limiter>,
    observer: Observer,
    responder: R,
) -> Router {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &http::Request<_>| {
            tracing::info_span!(
                "request",
                request_id = request_id_of(request.extensions()),
                method = %request.method(),
                path = request.uri().path(),
            )
        })
        // The access log (below) is the one line per request.
        .on_request(())
        .on_response(());
    let stripped = StrippedHeaders::new(&config.strip_request_headers);
    router.layer(
        ServiceBuilder::new()
            .layer(from_fn_with_state(stripped, strip_internal_headers))
            .layer(axum::middleware::from_fn(sanitize_request_id))
            .layer(SetRequestIdLayer::new(
                REQUEST_ID_HEADER,
                SequentialRequestId,
            ))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER))
            .layer(trace)
            .layer(from_fn_with_state(observer, observe))
            .layer(axum::middleware::from_fn(ensure_retry_after))
            .layer(from_fn_with_state(responder.clone(), catch_panics::<R>))
            .layer(from_fn_with_state(
                Admission::new(config.max_in_flight, responder.clone()),
                admit::<R>,
            ))
            .layer(from_fn_with_state(
                AddressLimit::new(limiter, responder),
                limit_by_address::<R>,
            ))
            .layer(DefaultBodyLimit::max(config.body_limit_bytes)),
    )
}

/// `GET /metrics`: the Prometheus text exposition of `metrics`, with the breaker states
/// of `guards` read at scrape time.
pub fn metrics_route<S: Clone + Send + Sync + 'static>(
    metrics: Metrics,
    guards: Guards,
) -> Router<S> {
    Router::new().route(
        METRICS_PATH,
        get(move || {
            let metrics = metrics.clone();
            let health = guards.health();
            async move {
                for (service, state) in [
                    ("customers", health.customers),
                    ("orders", health.orders),
                    ("inventory", health.inventory),
                ] {
                    metrics.set_breaker_state(service, state.gauge_value());
                }
                (
                    [(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                    )],
                    metrics.encode(),
                )
            }
        }),
    )
}

/// Requests that are never shed or limited: probes and scrapes, which must keep working
/// when the BFF is at its capacity (that is when they matter).
fn is_operational(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | METRICS_PATH)
}

/// What [`observe`] needs: the BFF's name and metrics, and whether to write access lines.
#[derive(Clone)]
pub struct Observer {
    /// The BFF's name, in access lines.
    pub bff: &'static str,
    /// Its metrics.
    pub metrics: Metrics,
    /// Whether to write the access log (`log.access`).
    pub access_log: bool,
    /// Where spans go (`telemetry.otlp_endpoint`), if anywhere.
    pub spans: Option<SpanSink>,
    /// Share of new traces sampled (`telemetry.sample_ratio`).
    pub sample_ratio: f64,
}

/// Counts every request in the metrics (route template, `unmatched` for the fallback;
/// status; error code, the one the responder set, else the status's, `OK` below 400; tier;
/// consumer; latency; in flight) and writes its access-log line. The request runs inside a
/// fresh [`RequestRecord`], which auth, the upstream clients, the caches and the limiter
/// fill in.
async fn observe(State(observer): State<Observer>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let started_at = std::time::SystemTime::now();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let method = request.method().clone();
    let metrics = &observer.metrics;
    let _in_flight = metrics.in_flight();
    let request_id = request_id_of(request.extensions()).to_owned();
    let trace = TraceContext::from_headers_sampling(request.headers(), observer.sample_ratio);
    let (response, record) = RequestRecord::scope(
        Some(metrics.clone()),
        Some(request_id),
        Some(trace),
        observer.spans.is_some(),
        next.run(request),
    )
    .await;
    let latency = started.elapsed();
    let status = response.status();
    let code = response
        .extensions()
        .get::<ErrorCode>()
        .copied()
        .or_else(|| ErrorCode::for_status(status))
        .map_or("OK", ErrorCode::as_str);
    let route = route.as_deref().unwrap_or("unmatched");
    metrics.record_request(route, status.as_u16(), code, &record, latency);
    if let (Some(sink), Some(trace)) = (&observer.spans, record.trace())
        && trace.sampled()
    {
        let mut spans = record.take_spans();
        spans.push(FinishedSpan {
            span_id: trace.span_id_bytes(),
            parent_span_id: trace.parent_span_id_bytes(),
            parent_is_remote: true,
            kind: SpanKind::Server,
            name: format!("{method} {route}"),
            start: started_at,
            end: started_at + latency,
            attributes: vec![
                ("http.request.method", method.to_string()),
                ("http.route", route.to_owned()),
                ("http.response.status_code", status.as_u16().to_string()),
                ("switchyard.code", code.to_owned()),
                (
                    "switchyard.consumer",
                    record.consumer().unwrap_or("").to_owned(),
                ),
            ],
            failed: status.is_server_error(),
        });
        sink.export(trace, spans);
    }
    if observer.access_log {
        let stale_age = record.stale_age();
        let trace_id = record.trace().map(TraceContext::trace_id);
        crate::access_log::write(&crate::access_log::AccessLine {
            ts: now_rfc3339(),
            request_id: record.request_id().unwrap_or("-"),
            trace_id: trace_id.as_deref(),
            bff: observer.bff,
            method: method.as_str(),
            route,
            operation: record.operation(),
            status: status.as_u16(),
            code,
            latency_ms: millis(latency),
            consumer: record.consumer(),
            client_id: record.client_id(),
            tier: record.tier(),
            data_products: record.data_products(),
            upstream_calls: record.upstream_calls(),
            upstream_ms: millis(record.upstream_time()),
            bytes: http_body::Body::size_hint(response.body()).exact(),
            ratelimit_remaining: record.ratelimit_remaining(),
            stale: stale_age.is_some(),
            data_age_s: stale_age.map(|age| age.as_secs()),
        });
    }
    response
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Every 503 and 504 tells the client when to come back: `Retry-After: 1` unless whoever
/// answered chose a value (admission control, an upstream's own, the IoT BFF's).
async fn ensure_retry_after(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let status = response.status();
    if (status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::GATEWAY_TIMEOUT)
        && !response.headers().contains_key(http::header::RETRY_AFTER)
    {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// A panic in a handler becomes a 500 `INTERNAL` in the client's format, with the request
/// id (the response header, and in the body where the format has one), instead of a reset
/// connection; the panic itself goes to the log.
async fn catch_panics<R: ErrorResponder>(
    State(responder): State<R>,
    request: Request,
    next: Next,
) -> Response {
    use futures_util::FutureExt as _;
    // What the error response needs of the request, kept before the handler takes it.
    let mut seen = http::Request::new(());
    *seen.uri_mut() = request.uri().clone();
    if let Some(id) = request.extensions().get::<RequestId>() {
        seen.extensions_mut().insert(id.clone());
    }
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned());
            responder.respond_to(
                &seen,
                ErrorCode::Internal,
                &format!("handler panicked: {what}"),
            )
        }
    }
}

/// What [`admit`] needs: the permits of `server.max_in_flight` and the BFF's error format.
#[derive(Clone)]
pub struct Admission<R> {
    permits: Arc<Semaphore>,
    responder: R,
}

impl<R> Admission<R> {
    /// Admits `max_in_flight` requests at once, refusing others in `responder`'s format.
    pub fn new(max_in_flight: usize, responder: R) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight)),
            responder,
        }
    }
}

/// Admission control: at most `max_in_flight` requests are processed at once; the next is
/// answered 503 `OVERLOADED` with `Retry-After: 1` at once, so that under overload latency
/// and memory stay bounded instead of requests queueing. Probes are always admitted.
pub async fn admit<R: ErrorResponder>(
    State(admission): State<Admission<R>>,
    request: Request,
    next: Next,
) -> Response {
    if is_operational(request.uri().path()) {
        return next.run(request).await;
    }
    let Ok(_permit) = Arc::clone(&admission.permits).try_acquire_owned() else {
        let mut response = admission.responder.respond_to(
            &request,
            ErrorCode::Overloaded,
            "this service is at its capacity; retry shortly",
        );
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    next.run(request).await
}

/// Completes on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; draining in-flight requests");
}
