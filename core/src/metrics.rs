//! Prometheus metrics (DESIGN.md "Observability"), one registry per BFF process, and the
//! [`RequestRecord`] of the request being served that they are partly computed from.
//!
//! Each [`Metrics`] owns its registry rather than using a global recorder, so that several
//! BFFs in one process (the sandbox launcher, the tests) each export only their own
//! figures. Recording is a hash lookup under a read lock and an atomic add per metric.
//!
//! What a request learns while it runs (who the consumer is, once authenticated) is written
//! to the task-local [`RequestRecord`] that the server's metrics layer scopes around it, so
//! that auth and the upstream clients can report without being handed anything.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use tokio::task::futures::TaskLocalFuture;

use crate::trace_context::{FinishedSpan, TraceContext};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Where every BFF serves its metrics.
pub const METRICS_PATH: &str = "/metrics";

/// `consumer` label value for consumers past `metrics.max_consumers`.
pub const OTHER_CONSUMER: &str = "other";
/// The `transport` label values of streams.
pub const STREAM_TRANSPORTS: [&str; 2] = ["websocket", "sse"];
/// `tier` label value of a request whose consumer is not known (not authenticated).
pub const NO_TIER: &str = "none";

/// Data-age buckets, in seconds: 1 s to 1 h.
const AGE_BUCKETS: [f64; 9] = [1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 3600.0];
/// Latency buckets, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: u16,
    code: &'static str,
    tier: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumerLabels {
    consumer: String,
    tier: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    service: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    entity: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    tier: &'static str,
    policy: &'static str,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabels {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

/// One open stream in `switchyard_streams_active`, until dropped; counts the events it
/// sends in `switchyard_stream_events_total`.
pub struct OpenStream {
    gauge: Gauge,
    events: Counter,
}

impl OpenStream {
    /// Counts one event sent on this stream.
    pub fn sent_event(&self) {
        self.events.inc();
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// The metrics of one BFF. Cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram>,
    consumer_requests: Family<ConsumerLabels, Counter>,
    /// Consumers with a series of their own, at most `max_consumers`.
    consumers: Mutex<HashSet<String>>,
    max_consumers: usize,
    in_flight: Gauge,
    upstream_requests: Family<UpstreamLabels, Counter>,
    upstream_duration: Family<ServiceLabels, Histogram>,
    breaker_state: Family<ServiceLabels, Gauge>,
    cache_lookups: Family<CacheLabels, Counter>,
    ratelimit_decisions: Family<DecisionLabels, Counter>,
    served_data_age: Histogram,
    streams_active: Family<TransportLabels, Gauge>,
    stream_events: Family<TransportLabels, Counter>,
}

impl Metrics {
    /// The metrics of the BFF named `bff` (every series carries `bff="<name>"`), counting at
    /// most `max_consumers` consumers by name.
    pub fn new(bff: &'static str, max_consumers: usize) -> Self {
        let mut root = Registry::with_prefix_and_labels(
            "switchyard",
            [(bff_label(), std::borrow::Cow::Borrowed(bff))].into_iter(),
        );
        let histogram = || Histogram::new(LATENCY_BUCKETS);
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration =
            Family::<RouteLabels, Histogram>::new_with_constructor(histogram as fn() -> Histogram);
        let consumer_requests = Family::<ConsumerLabels, Counter>::default();
        let in_flight = Gauge::default();
        let build_info = Family::<VersionLabels, Gauge>::default();
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        root.register(
            "http_requests",
            "Requests answered, by route template, status, error code (OK on success) and tier",
            http_requests.clone(),
        );
        root.register_with_unit(
            "http_request_duration",
            "Time from the request head to the response head",
            Unit::Seconds,
            http_duration.clone(),
        );
        root.register(
            "consumer_requests",
            "Requests per authenticated consumer; past metrics.max_consumers, consumer=\"other\"",
            consumer_requests.clone(),
        );
        root.register(
            "in_flight_requests",
            "Requests being processed",
            in_flight.clone(),
        );
        root.register("build_info", "Always 1; the version", build_info);
        let upstream_requests = Family::<UpstreamLabels, Counter>::default();
        let upstream_duration = Family::<ServiceLabels, Histogram>::new_with_constructor(
            histogram as fn() -> Histogram,
        );
        let breaker_state = Family::<ServiceLabels, Gauge>::default();
        let cache_lookups = Family::<CacheLabels, Counter>::default();
        let ratelimit_decisions = Family::<DecisionLabels, Counter>::default();
        let served_data_age = Histogram::new(AGE_BUCKETS);
        let streams_active = Family::<TransportLabels, Gauge>::default();
        let stream_events = Family::<TransportLabels, Counter>::default();
        // Series from the start, so dashboards show 0 rather than no data (order-update
        // streams, when built, record into these families).
        for transport in STREAM_TRANSPORTS {
            let labels = TransportLabels { transport };
            drop(streams_active.get_or_create(&labels));
            drop(stream_events.get_or_create(&labels));
        }
        root.register(
            "upstream_requests",
            "Upstream call attempts (retries count again), by service and outcome",
            upstream_requests.clone(),
        );
        root.register_with_unit(
            "upstream_request_duration",
            "Time of one upstream attempt",
            Unit::Seconds,
            upstream_duration.clone(),
        );
        root.register(
            "breaker_state",
            "Circuit breaker per service: 0 closed, 1 half-open, 2 open",
            breaker_state.clone(),
        );
        root.register(
            "cache_lookups",
            "Entity cache lookups: hit (fresh), miss (fetched), stale (served after a failure)",
            cache_lookups.clone(),
        );
        root.register(
            "ratelimit_decisions",
            "Usage-plan decisions by tier, policy and decision",
            ratelimit_decisions.clone(),
        );
        root.register_with_unit(
            "served_data_age",
            "Age of the oldest cached data in a response served stale",
            Unit::Seconds,
            served_data_age.clone(),
        );
        root.register(
            "streams_active",
            "Open event streams by transport",
            streams_active.clone(),
        );
        root.register(
            "stream_events",
            "Events sent on streams by transport",
            stream_events.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry: root,
                http_requests,
                http_duration,
                consumer_requests,
                consumers: Mutex::new(HashSet::new()),
                max_consumers,
                in_flight,
                upstream_requests,
                upstream_duration,
                breaker_state,
                cache_lookups,
                ratelimit_decisions,
                served_data_age,
                streams_active,
                stream_events,
            }),
        }
    }

    /// Counts a stream open on `transport` (one of [`STREAM_TRANSPORTS`]) until the
    /// returned guard drops.
    pub fn stream_opened(&self, transport: &'static str) -> OpenStream {
        let gauge = self
            .inner
            .streams_active
            .get_or_create(&TransportLabels { transport })
            .clone();
        gauge.inc();
        OpenStream {
            gauge,
            events: self
                .inner
                .stream_events
                .get_or_create(&TransportLabels { transport })
                .clone(),
        }
    }

    /// Counts one answered request.
    pub fn record_request(
        &self,
        route: &str,
        status: u16,
        code: &'static str,
        record: &RequestRecord,
        duration: Duration,
    ) {
        let tier = record.tier().unwrap_or(NO_TIER);
        self.inner
            .http_requests
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                status,
                code,
                tier,
            })
            .inc();
        self.inner
            .http_duration
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(duration.as_secs_f64());
        if let Some(age) = record.stale_age() {
            self.inner.served_data_age.observe(age.as_secs_f64());
        }
        if let Some(consumer) = record.consumer() {
            let consumer = self.consumer_label(consumer);
            self.inner
                .consumer_requests
                .get_or_create(&ConsumerLabels { consumer, tier })
                .inc();
        }
    }

    /// `consumer` if it has a series of its own (or can get one), else [`OTHER_CONSUMER`].
    fn consumer_label(&self, consumer: &str) -> String {
        let Ok(mut seen) = self.inner.consumers.lock() else {
            return OTHER_CONSUMER.to_owned();
        };
        if seen.contains(consumer) {
            return consumer.to_owned();
        }
        if seen.len() < self.inner.max_consumers {
            seen.insert(consumer.to_owned());
            return consumer.to_owned();
        }
        OTHER_CONSUMER.to_owned()
    }

    /// Counts one upstream attempt.
    pub fn record_upstream(&self, service: &'static str, outcome: &'static str, took: Duration) {
        self.inner
            .upstream_requests
            .get_or_create(&UpstreamLabels { service, outcome })
            .inc();
        self.inner
            .upstream_duration
            .get_or_create(&ServiceLabels { service })
            .observe(took.as_secs_f64());
    }

    /// Counts an upstream call refused before any attempt (`breaker_open`, `shed`).
    pub fn record_upstream_refused(&self, service: &'static str, outcome: &'static str) {
        self.inner
            .upstream_requests
            .get_or_create(&UpstreamLabels { service, outcome })
            .inc();
    }

    /// Sets a service's breaker state: 0 closed, 1 half-open, 2 open.
    pub fn set_breaker_state(&self, service: &'static str, state: i64) {
        self.inner
            .breaker_state
            .get_or_create(&ServiceLabels { service })
            .set(state);
    }

    /// Counts `lookups` entity-cache lookups of `entity` with `result`.
    pub fn record_cache(&self, entity: &'static str, result: &'static str, lookups: u64) {
        if lookups > 0 {
            self.inner
                .cache_lookups
                .get_or_create(&CacheLabels { entity, result })
                .inc_by(lookups);
        }
    }

    /// Counts one usage-plan decision.
    pub fn record_decision(
        &self,
        tier: &'static str,
        policy: &'static str,
        decision: &'static str,
    ) {
        self.inner
            .ratelimit_decisions
            .get_or_create(&DecisionLabels {
                tier,
                policy,
                decision,
            })
            .inc();
    }

    /// Counts a request as in flight until the guard is dropped.
    pub fn in_flight(&self) -> InFlightGuard {
        self.inner.in_flight.inc();
        InFlightGuard(self.inner.in_flight.clone())
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(4096);
        if prometheus_client::encoding::text::encode(&mut text, &self.inner.registry).is_err() {
            text.clear();
        }
        text
    }
}

fn bff_label() -> std::borrow::Cow<'static, str> {
    std::borrow::Cow::Borrowed("bff")
}

/// Keeps `switchyard_in_flight_requests` counting one request.
pub struct InFlightGuard(Gauge);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What an upstream call carries of the request it is made for.
#[derive(Debug, Default)]
pub struct UpstreamIdentity {
    /// The request id.
    pub request_id: Option<String>,
    /// The authenticated consumer.
    pub consumer: Option<String>,
    /// The request's trace.
    pub trace: Option<TraceContext>,
    /// Whether the request keeps spans (see [`RequestRecord::note_span`]).
    pub keeps_spans: bool,
}

tokio::task_local! {
    static CURRENT: Arc<RequestRecord>;
}

/// What one request learned while it ran, for its metrics and access-log line. Written
/// through the `note_*` functions, which act on the current request's record (a no-op
/// outside one), so that auth, the upstream clients, the caches and the limiter can report
/// without being handed anything.
#[derive(Default)]
pub struct RequestRecord {
    metrics: Option<Metrics>,
    request_id: Option<String>,
    trace: Option<TraceContext>,
    /// Finished upstream spans, kept only while spans are exported and the trace sampled.
    spans: Option<Mutex<Vec<FinishedSpan>>>,
    principal: OnceLock<(String, &'static str)>,
    client_id: OnceLock<String>,
    operation: OnceLock<String>,
    /// The upstream services the response drew on (from the network or a cache).
    data_products: Mutex<Vec<&'static str>>,
    upstream_calls: AtomicU32,
    upstream_micros: AtomicU64,
    /// Milliseconds + 1 of the oldest stale data served (0: none).
    stale_age_plus_one_ms: AtomicU64,
    /// Remaining units of the consumer's most binding policy, + 1 (0: not charged).
    ratelimit_remaining_plus_one: AtomicU64,
}

impl std::fmt::Debug for RequestRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestRecord")
            .field("consumer", &self.consumer())
            .field("upstream_calls", &self.upstream_calls())
            .finish_non_exhaustive()
    }
}

impl RequestRecord {
    /// Runs `work` with a fresh record, reporting into `metrics`, as the current one; then
    /// returns its output and the record.
    /// With `export_spans`, upstream attempts of a sampled trace are kept as spans.
    pub async fn scope<F: Future>(
        metrics: Option<Metrics>,
        request_id: Option<String>,
        trace: Option<TraceContext>,
        export_spans: bool,
        work: F,
    ) -> (F::Output, Arc<Self>) {
        let record = Self::start(metrics, request_id, trace, export_spans);
        let output = record.scoped(work).await;
        (output, record)
    }

    /// A fresh record, reporting into `metrics`, for [`RequestRecord::scoped`]. With
    /// `export_spans`, upstream attempts of a sampled trace are kept as spans.
    pub fn start(
        metrics: Option<Metrics>,
        request_id: Option<String>,
        trace: Option<TraceContext>,
        export_spans: bool,
    ) -> Arc<Self> {
        let keep_spans = export_spans && trace.as_ref().is_some_and(TraceContext::sampled);
        Arc::new(Self {
            metrics,
            request_id,
            trace,
            spans: keep_spans.then(|| Mutex::new(Vec::new())),
            ..Self::default()
        })
    }

    /// `work`, run with this record as the current one.
    pub fn scoped<F: Future>(self: &Arc<Self>, work: F) -> TaskLocalFuture<Arc<Self>, F> {
        CURRENT.scope(Arc::clone(self), work)
    }

    fn with_current(note: impl FnOnce(&Self)) {
        let _ = CURRENT.try_with(|record| note(record));
    }

    /// Notes that the request is `consumer`'s, on `tier`, of OAuth client `client_id`. The
    /// first principal of a request is the one kept.
    pub fn note_consumer(consumer: &str, tier: &'static str, client_id: Option<&str>) {
        Self::with_current(|record| {
            if record.principal.set((consumer.to_owned(), tier)).is_ok()
                && let Some(client) = client_id
            {
                let _ = record.client_id.set(client.to_owned());
            }
        });
    }

    /// Notes the GraphQL operation's name.
    pub fn note_operation(name: &str) {
        Self::with_current(|record| {
            let _ = record.operation.set(name.to_owned());
        });
    }

    fn add_data_product(&self, service: &'static str) {
        let mut products = self
            .data_products
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !products.contains(&service) {
            products.push(service);
        }
    }

    /// Notes one upstream attempt and counts it in the metrics.
    pub fn note_upstream(service: &'static str, outcome: &'static str, took: Duration) {
        Self::with_current(|record| {
            record.add_data_product(service);
            record.upstream_calls.fetch_add(1, Ordering::Relaxed);
            let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
            record.upstream_micros.fetch_add(micros, Ordering::Relaxed);
            if let Some(metrics) = &record.metrics {
                metrics.record_upstream(service, outcome, took);
            }
        });
    }

    /// Notes an upstream call refused before any attempt (`breaker_open`, `shed`).
    pub fn note_upstream_refused(service: &'static str, outcome: &'static str) {
        Self::with_current(|record| {
            if let Some(metrics) = &record.metrics {
                metrics.record_upstream_refused(service, outcome);
            }
        });
    }

    /// Notes entity-cache lookups of `entity`: fresh hits, misses fetched, stale served.
    pub fn note_cache(entity: &'static str, hits: u64, misses: u64, stale: u64) {
        Self::with_current(|record| {
            if hits + stale > 0 {
                record.add_data_product(entity);
            }
            if let Some(metrics) = &record.metrics {
                metrics.record_cache(entity, "hit", hits);
                metrics.record_cache(entity, "miss", misses);
                metrics.record_cache(entity, "stale", stale);
            }
        });
    }

    /// Notes that data `age` old was served stale.
    pub fn note_stale(age: Duration) {
        Self::with_current(|record| {
            let millis = u64::try_from(age.as_millis()).unwrap_or(u64::MAX - 1);
            record
                .stale_age_plus_one_ms
                .fetch_max(millis + 1, Ordering::Relaxed);
        });
    }

    /// Notes a usage-plan decision and the units left under the consumer's plan.
    pub fn note_decision(
        tier: &'static str,
        policy: &'static str,
        decision: &'static str,
        remaining: Option<u64>,
    ) {
        Self::with_current(|record| {
            if let Some(remaining) = remaining {
                record
                    .ratelimit_remaining_plus_one
                    .store(remaining.saturating_add(1), Ordering::Relaxed);
            }
            if let Some(metrics) = &record.metrics {
                metrics.record_decision(tier, policy, decision);
            }
        });
    }

    /// What an upstream call of the current request carries: its request id, consumer, and
    /// trace context.
    pub fn identity() -> UpstreamIdentity {
        CURRENT
            .try_with(|record| UpstreamIdentity {
                request_id: record.request_id.clone(),
                consumer: record.consumer().map(str::to_owned),
                trace: record.trace.clone(),
                keeps_spans: record.spans.is_some(),
            })
            .unwrap_or_default()
    }

    /// The request's trace context.
    pub fn trace(&self) -> Option<&TraceContext> {
        self.trace.as_ref()
    }

    /// Keeps a finished upstream span, if the current request keeps spans.
    pub fn note_span(span: FinishedSpan) {
        Self::with_current(|record| {
            if let Some(spans) = &record.spans {
                spans
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(span);
            }
        });
    }

    /// The spans kept, taken.
    pub fn take_spans(&self) -> Vec<FinishedSpan> {
        self.spans
            .as_ref()
            .map(|spans| {
                std::mem::take(
                    &mut *spans
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                )
            })
            .unwrap_or_default()
    }

    /// The request id.
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The consumer, once authenticated.
    pub fn consumer(&self) -> Option<&str> {
        self.principal.get().map(|(consumer, _)| consumer.as_str())
    }

    /// The consumer's tier, once authenticated.
    pub fn tier(&self) -> Option<&'static str> {
        self.principal.get().map(|(_, tier)| *tier)
    }

    /// The OAuth client, if the token named one.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.get().map(String::as_str)
    }

    /// The GraphQL operation's name, if any.
    pub fn operation(&self) -> Option<&str> {
        self.operation.get().map(String::as_str)
    }

    /// The upstream services the response drew on, in the order first used.
    pub fn data_products(&self) -> Vec<&'static str> {
        self.data_products
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Upstream attempts made.
    pub fn upstream_calls(&self) -> u32 {
        self.upstream_calls.load(Ordering::Relaxed)
    }

    /// Time spent in upstream attempts (summed; parallel calls overlap).
    pub fn upstream_time(&self) -> Duration {
        Duration::from_micros(self.upstream_micros.load(Ordering::Relaxed))
    }

    /// Age of the oldest stale data served, if any was.
    pub fn stale_age(&self) -> Option<Duration> {
        match self.stale_age_plus_one_ms.load(Ordering::Relaxed) {
            0 => None,
            n => Some(Duration::from_millis(n - 1)),
        }
    }

    /// Units left under the consumer's plan, if the request was charged.
    pub fn ratelimit_remaining(&self) -> Option<u64> {
        match self.ratelimit_remaining_plus_one.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n - 1),
        }
    }
}
