//! The edge: what every request of every BFF goes through before its route's handler, and
//! its response after, as one service.
//!
//! Outermost first:
//! 1. headers a client could pose as someone (or as Switchyard) with are dropped
//!    ([`StrippedHeaders`]);
//! 2. a client's request id that is not a short printable token is dropped, and a request
//!    without one gets a fresh id ([`next_request_id`]); the response carries it back;
//! 3. the rest runs in a `request` span and a fresh [`RequestRecord`], and is counted in
//!    the metrics, written to the access log and exported as a span afterwards
//!    ([`Observer`]);
//! 4. a 503 or 504 without `Retry-After` gets `Retry-After: 1`;
//! 5. a panic in a handler becomes a 500 `INTERNAL` in the BFF's format;
//! 6. admission control (`server.max_in_flight`) refuses what is over capacity;
//! 7. the limit per client address (`ratelimit.anonymous`) refuses floods;
//!
//! then the route. `/healthz`, `/readyz` and `/metrics` pass 6 and 7.
//!
//! It is one service, not a stack of `from_fn` middleware, because each such layer clones
//! every service below it and boxes a future of its own for every request, and a request's
//! task polls the whole stack again at each wake. Here the work before the route is done
//! in `call`, synchronously, and the response future is one flat state ([`EdgeFuture`])
//! holding the route's future and what the response needs of the request, not the request
//! itself: nested `async fn`s each kept a copy of it, a 4 KB future written fresh for
//! every request.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};
use tower_http::request_id::RequestId;

use super::{REQUEST_ID_HEADER, is_operational, request_id_of};
use crate::error::ErrorCode;
use crate::metrics::{InFlightGuard, Metrics, RequestRecord};
use crate::ratelimit::AddressLimit;
use crate::response::ErrorResponder;
use crate::trace_context::{FinishedSpan, SpanKind, TraceContext};
use crate::trace_export::SpanSink;

/// What the edge holds for every request.
pub(super) struct Edge<R> {
    pub(super) stripped: StrippedHeaders,
    pub(super) observer: Observer,
    pub(super) responder: R,
    /// The permits of `server.max_in_flight`.
    pub(super) permits: Arc<Semaphore>,
    pub(super) address_limit: AddressLimit<R>,
}

/// The [`Layer`] of the edge.
pub(super) struct EdgeLayer<R> {
    pub(super) edge: Arc<Edge<R>>,
}

// Manual: cloning the layer clones the `Arc`, whatever `R` is.
impl<R> Clone for EdgeLayer<R> {
    fn clone(&self) -> Self {
        Self {
            edge: Arc::clone(&self.edge),
        }
    }
}

impl<S, R> Layer<S> for EdgeLayer<R> {
    type Service = EdgeService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        EdgeService {
            inner,
            edge: Arc::clone(&self.edge),
        }
    }
}

/// The edge in front of one route.
pub(super) struct EdgeService<S, R> {
    inner: S,
    edge: Arc<Edge<R>>,
}

impl<S: Clone, R> Clone for EdgeService<S, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            edge: Arc::clone(&self.edge),
        }
    }
}

impl<S, R> Service<Request> for EdgeService<S, R>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    R: ErrorResponder,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    /// Steps 1 to 3 and 6 to 7 of the module documentation happen here, before the route
    /// is called; the rest when its response is ready ([`EdgeFuture`]). Calling the route
    /// here only routes: a handler runs when its future is polled, inside the request's
    /// span and record.
    fn call(&mut self, mut request: Request) -> Self::Future {
        let edge = Arc::clone(&self.edge);
        edge.stripped.strip(request.headers_mut());
        let id = ensure_request_id(&mut request);
        let span = tracing::info_span!(
            "request",
            request_id = request_id_of(request.extensions()),
            method = %request.method(),
            path = request.uri().path(),
        );
        let entered = span.enter();
        let observer = &edge.observer;
        let metrics = &observer.metrics;
        let record = RequestRecord::start(
            Some(metrics.clone()),
            Some(id.clone()),
            Some(TraceContext::from_headers_sampling(
                request.headers(),
                observer.sample_ratio,
            )),
            observer.spans.is_some(),
        );
        let mut pending = Pending {
            id,
            started: Instant::now(),
            started_at: SystemTime::now(),
            route: request.extensions().get::<MatchedPath>().cloned(),
            method: request.method().clone(),
            record: Arc::clone(&record),
            _in_flight: metrics.in_flight(),
            _permit: None,
            panic_context: (
                request.uri().clone(),
                request.extensions().get::<RequestId>().cloned(),
            ),
        };
        let routed = match edge.admit(&request) {
            Err(refusal) => Routed::answered(refusal),
            Ok(permit) => {
                pending._permit = permit;
                match edge.address_limit.refusal(&request) {
                    Some(refusal) => Routed::answered(refusal),
                    None => {
                        let inner = &mut self.inner;
                        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.call(request))) {
                            Ok(future) => Routed::Running {
                                future: record.scoped(future),
                            },
                            Err(panic) => Routed::answered(edge.panicked(&pending, &*panic)),
                        }
                    }
                }
            }
        };
        drop(entered);
        EdgeFuture {
            routed,
            span,
            pending: Some(pending),
            edge,
        }
    }
}

/// What the end of a request needs of its start.
pub(super) struct Pending {
    /// The request id, for the response.
    id: HeaderValue,
    started: Instant,
    started_at: SystemTime,
    route: Option<MatchedPath>,
    method: Method,
    record: Arc<RequestRecord>,
    /// Counts the request in `switchyard_in_flight_requests` until it is answered.
    _in_flight: InFlightGuard,
    /// The admission permit, held until the request is answered.
    _permit: Option<OwnedSemaphorePermit>,
    /// What an error response for a panic needs of the request: its URI and id.
    panic_context: (Uri, Option<RequestId>),
}

pin_project_lite::pin_project! {
    /// The route's response, or the edge's own answer.
    #[project = RoutedProjection]
    pub(super) enum Routed<F> {
        /// The route's future, run as the request's record.
        Running { #[pin] future: TaskLocalFuture<Arc<RequestRecord>, F> },
        /// The edge answered (a refusal, a panic); taken when polled.
        Answered { response: Option<Response> },
    }
}

impl<F> Routed<F> {
    fn answered(response: Response) -> Self {
        Self::Answered {
            response: Some(response),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of the edge: the route's future inside the request's span,
    /// then steps 3 to 5 of the module documentation on its response. One flat state
    /// rather than nested `async fn`s, each of which kept a copy of the request.
    pub(super) struct EdgeFuture<F, R> {
        #[pin]
        routed: Routed<F>,
        span: tracing::Span,
        // Taken when the response is ready.
        pending: Option<Pending>,
        edge: Arc<Edge<R>>,
    }
}

impl<F, R> Future for EdgeFuture<F, R>
where
    F: Future<Output = Result<Response, Infallible>>,
    R: ErrorResponder,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let _entered = this.span.enter();
        let response = match this.routed.as_mut().project() {
            RoutedProjection::Running { future } => {
                match std::panic::catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
                    Ok(Poll::Pending) => return Poll::Pending,
                    Ok(Poll::Ready(Ok(response))) => Some(response),
                    Ok(Poll::Ready(Err(never))) => match never {},
                    Err(panic) => match this.pending.as_ref() {
                        Some(pending) => Some(this.edge.panicked(pending, &*panic)),
                        None => std::panic::resume_unwind(panic),
                    },
                }
            }
            RoutedProjection::Answered { response } => response.take(),
        }
        .expect("an edge future is not polled after it completed");
        // The route's future is done (or poisoned by its panic): release it now.
        this.routed.set(Routed::Answered { response: None });
        let pending = this
            .pending
            .take()
            .expect("an edge future is not polled after it completed");
        Poll::Ready(Ok(this.edge.answered(pending, response)))
    }
}

impl<R: ErrorResponder> Edge<R> {
    /// Step 5: a panic in a handler answered as a 500 `INTERNAL` in the client's format
    /// with the request id, instead of a reset connection (the panic itself goes to the
    /// log).
    fn panicked(&self, pending: &Pending, panic: &(dyn std::any::Any + Send)) -> Response {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        let (uri, id) = &pending.panic_context;
        let mut seen = http::Request::new(());
        *seen.uri_mut() = uri.clone();
        if let Some(id) = id {
            seen.extensions_mut().insert(id.clone());
        }
        self.responder.respond_to(
            &seen,
            ErrorCode::Internal,
            &format!("handler panicked: {what}"),
        )
    }

    /// Steps 4 and 3 on a response: `Retry-After` on every 503 and 504; then metrics, the
    /// access line, the exported span; then the request id on the response.
    fn answered(&self, pending: Pending, mut response: Response) -> Response {
        let status = response.status();
        if (status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::GATEWAY_TIMEOUT)
            && !response.headers().contains_key(http::header::RETRY_AFTER)
        {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        self.observe(&pending, &response);
        if !response.headers().contains_key(&REQUEST_ID_HEADER) {
            response.headers_mut().insert(REQUEST_ID_HEADER, pending.id);
        }
        response
    }

    /// Step 3 on a response: metrics, the exported span, the access line.
    fn observe(&self, pending: &Pending, response: &Response) {
        let observer = &self.observer;
        let metrics = &observer.metrics;
        let record = &pending.record;
        let latency = pending.started.elapsed();
        let status = response.status();
        let method = &pending.method;
        let code = response
            .extensions()
            .get::<ErrorCode>()
            .copied()
            .or_else(|| ErrorCode::for_status(status))
            .map_or("OK", ErrorCode::as_str);
        let route = pending
            .route
            .as_ref()
            .map_or("unmatched", MatchedPath::as_str);
        metrics.record_request(route, status.as_u16(), code, record, latency);
        if status.is_server_error() {
            tracing::error!(
                status = status.as_u16(),
                latency_ms = millis(latency),
                "response failed"
            );
        }
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
                start: pending.started_at,
                end: pending.started_at + latency,
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
    }

    /// Admission control: at most `server.max_in_flight` requests are processed at once;
    /// the next is answered 503 `OVERLOADED` with `Retry-After: 1` at once, so that under
    /// overload latency and memory stay bounded instead of requests queueing. Probes are
    /// always admitted (`None`: no permit needed).
    fn admit(&self, request: &Request) -> Result<Option<OwnedSemaphorePermit>, Response> {
        if is_operational(request.uri().path()) {
            return Ok(None);
        }
        match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => Ok(Some(permit)),
            Err(_) => {
                let mut response = self.responder.respond_to(
                    request,
                    ErrorCode::Overloaded,
                    "this service is at its capacity; retry shortly",
                );
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
                Err(response)
            }
        }
    }
}

/// Makes sure `request` has an acceptable request id (a short printable token): a client's
/// that is not one is dropped, and a missing one is made. The id is set as the header and
/// as the [`RequestId`] extension; the value is returned for the response.
fn ensure_request_id(request: &mut Request) -> HeaderValue {
    let given = request
        .headers()
        .get(&REQUEST_ID_HEADER)
        .filter(|value| acceptable_request_id(value.as_bytes()))
        .cloned();
    let id = match given {
        Some(id) => id,
        None => {
            let id = next_request_id();
            request.headers_mut().insert(REQUEST_ID_HEADER, id.clone());
            id
        }
    };
    request.extensions_mut().insert(RequestId::new(id.clone()));
    id
}

/// Whether a client's request id can be kept: log lines and upstream headers cannot be
/// polluted through a short token of letters, digits and `-_.:`.
fn acceptable_request_id(bytes: &[u8]) -> bool {
    !bytes.is_empty()
        && bytes.len() <= 128
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A process-unique, monotonically numbered request id, cheap to make.
fn next_request_id() -> HeaderValue {
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
    // From the `String` itself: its bytes are shared by every copy of the id, no copy made.
    HeaderValue::try_from(format!("{prefix}-{n:x}"))
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// Headers no client may set: ones only Switchyard itself sends upstream
/// (`x-consumer-id`, `x-switchyard-*`, `x-internal-*`), and the configured
/// `server.strip_request_headers`.
#[derive(Clone)]
pub(super) struct StrippedHeaders(Arc<[HeaderName]>);

impl StrippedHeaders {
    pub(super) fn new(configured: &[String]) -> Self {
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

    /// Drops the headers no client may set, so that no handler, and no upstream, ever
    /// sees them.
    fn strip(&self, headers: &mut HeaderMap) {
        if !headers.keys().any(|name| self.strips(name)) {
            return;
        }
        let doomed: Vec<HeaderName> = headers
            .keys()
            .filter(|name| self.strips(name))
            .cloned()
            .collect();
        for name in doomed {
            headers.remove(name);
        }
    }
}

/// What the edge's observation needs: the BFF's name and metrics, and whether to write
/// access lines and export spans.
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

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
