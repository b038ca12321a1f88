//! Prometheus metrics (DESIGN.md "Observability"), one registry per BFF process, and the
//! [`RequestRecord`] of the request being served that they are partly computed from.
//!
//! Each [`Metrics`] owns its registry rather than using a global recorder, so that several
//! BFFs in one process (the sandbox launcher, the tests) each export only their own
//! figures. Recording a request or an upstream attempt is one lookup in a [`SeriesCache`]
//! (a read lock and a foldhash of borrowed labels) and an atomic add per metric; only a
//! label set's first time goes through its prometheus-client family, which would build
//! owned labels and SipHash them on every call.
//!
//! What a request learns while it runs (who the consumer is, once authenticated) is written
//! to the task-local [`RequestRecord`] that the server's metrics layer scopes around it, so
//! that auth and the upstream clients can report without being handed anything.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use hashbrown::Equivalent;
use http::HeaderValue;

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
    /// The handles of the families above, by label set, once used.
    request_series: SeriesCache<RequestKey, RequestSeries>,
    consumer_series: SeriesCache<ConsumerKey, Counter>,
    upstream_series: SeriesCache<(&'static str, &'static str), UpstreamSeries>,
    cache_series: SeriesCache<(&'static str, &'static str), Counter>,
    decision_series: SeriesCache<(&'static str, &'static str, &'static str), Counter>,
}

/// The series one request is counted in: by route, status, code and tier, and the
/// route's latency histogram.
struct RequestSeries {
    requests: Counter,
    duration: Histogram,
}

/// The series of one upstream attempt: by service and outcome, and the service's latency.
struct UpstreamSeries {
    attempts: Counter,
    duration: Histogram,
}

/// Series handles by label set. A lookup hashes the labels as borrowed (foldhash) under a
/// read lock; a miss creates the series in its family once, under the write lock. It
/// holds a handle per label set its families hold, so it grows no further than they do.
struct SeriesCache<K, V> {
    series: RwLock<hashbrown::HashMap<K, V, foldhash::fast::RandomState>>,
}

impl<K, V> Default for SeriesCache<K, V> {
    fn default() -> Self {
        Self {
            series: RwLock::new(hashbrown::HashMap::with_hasher(
                foldhash::fast::RandomState::default(),
            )),
        }
    }
}

impl<K: Hash + Eq, V> SeriesCache<K, V> {
    /// Runs `record` on the series of `labels` if it has been made; whether it had.
    fn record_existing<Q>(&self, labels: &Q, record: impl Fn(&V)) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let series = self.series.read().unwrap_or_else(PoisonError::into_inner);
        series.get(labels).map(record).is_some()
    }

    /// Runs `record` on the series of `labels`, made by `make` the first time.
    fn record<Q>(&self, labels: &Q, make: impl FnOnce() -> (K, V), record: impl Fn(&V))
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        if self.record_existing(labels, &record) {
            return;
        }
        let mut series = self.series.write().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have made it between the two locks.
        if !series.contains_key(labels) {
            let (key, value) = make();
            series.insert(key, value);
        }
        if let Some(series) = series.get(labels) {
            record(series);
        }
    }
}

/// The labels of a request's series, owned ([`RequestLabels`] borrowed, for lookups).
#[derive(PartialEq, Eq)]
struct RequestKey {
    route: Box<str>,
    status: u16,
    code: &'static str,
    tier: &'static str,
}

/// [`RequestKey`], borrowed: what a lookup is made with, without allocating the route.
struct RequestLabels<'a> {
    route: &'a str,
    status: u16,
    code: &'static str,
    tier: &'static str,
}

impl RequestKey {
    fn labels(&self) -> RequestLabels<'_> {
        RequestLabels {
            route: &self.route,
            status: self.status,
            code: self.code,
            tier: self.tier,
        }
    }
}

// The owned key hashes as its borrowed form, so that lookups with either find the same.
impl Hash for RequestKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.labels().hash(state);
    }
}

impl Hash for RequestLabels<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.route.hash(state);
        self.status.hash(state);
        self.code.hash(state);
        self.tier.hash(state);
    }
}

impl Equivalent<RequestKey> for RequestLabels<'_> {
    fn equivalent(&self, key: &RequestKey) -> bool {
        self.status == key.status
            && self.code == key.code
            && self.tier == key.tier
            && self.route == &*key.route
    }
}

/// A consumer's series: by name and tier ([`ConsumerLabelsRef`] borrowed, for lookups).
#[derive(PartialEq, Eq)]
struct ConsumerKey {
    consumer: Box<str>,
    tier: &'static str,
}

/// [`ConsumerKey`], borrowed.
struct ConsumerLabelsRef<'a> {
    consumer: &'a str,
    tier: &'static str,
}

impl Hash for ConsumerKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        ConsumerLabelsRef {
            consumer: &self.consumer,
            tier: self.tier,
        }
        .hash(state);
    }
}

impl Hash for ConsumerLabelsRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.consumer.hash(state);
        self.tier.hash(state);
    }
}

impl Equivalent<ConsumerKey> for ConsumerLabelsRef<'_> {
    fn equivalent(&self, key: &ConsumerKey) -> bool {
        self.tier == key.tier && self.consumer == &*key.consumer
    }
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
                request_series: SeriesCache::default(),
                consumer_series: SeriesCache::default(),
                upstream_series: SeriesCache::default(),
                cache_series: SeriesCache::default(),
                decision_series: SeriesCache::default(),
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
        let inner = &*self.inner;
        let tier = record.tier().unwrap_or(NO_TIER);
        let labels = RequestLabels {
            route,
            status,
            code,
            tier,
        };
        inner.request_series.record(
            &labels,
            || {
                let series = RequestSeries {
                    requests: inner.http_requests.get_or_create_owned(&HttpLabels {
                        route: route.to_owned(),
                        status,
                        code,
                        tier,
                    }),
                    duration: inner.http_duration.get_or_create_owned(&RouteLabels {
                        route: route.to_owned(),
                    }),
                };
                let key = RequestKey {
                    route: route.into(),
                    status,
                    code,
                    tier,
                };
                (key, series)
            },
            |series| {
                series.requests.inc();
                series.duration.observe(duration.as_secs_f64());
            },
        );
        if let Some(age) = record.stale_age() {
            inner.served_data_age.observe(age.as_secs_f64());
        }
        if let Some(consumer) = record.consumer() {
            self.record_consumer(consumer, tier);
        }
    }

    /// Counts a request of `consumer` on `tier`: in its own series while it has one (or
    /// can get one, up to `max_consumers`), else in [`OTHER_CONSUMER`]'s.
    fn record_consumer(&self, consumer: &str, tier: &'static str) {
        let inner = &*self.inner;
        let labels = ConsumerLabelsRef { consumer, tier };
        let count = |series: &Counter| {
            series.inc();
        };
        if inner.consumer_series.record_existing(&labels, count) {
            return;
        }
        if !self.admit_consumer(consumer) {
            // Not cached: the consumers past the limit are unbounded in number.
            inner
                .consumer_requests
                .get_or_create(&ConsumerLabels {
                    consumer: OTHER_CONSUMER.to_owned(),
                    tier,
                })
                .inc();
            return;
        }
        inner.consumer_series.record(
            &labels,
            || {
                let series = inner
                    .consumer_requests
                    .get_or_create_owned(&ConsumerLabels {
                        consumer: consumer.to_owned(),
                        tier,
                    });
                let key = ConsumerKey {
                    consumer: consumer.into(),
                    tier,
                };
                (key, series)
            },
            count,
        );
    }

    /// Whether `consumer` has a series of its own, or can get one (fewer than
    /// `max_consumers` have).
    fn admit_consumer(&self, consumer: &str) -> bool {
        let Ok(mut seen) = self.inner.consumers.lock() else {
            return false;
        };
        if seen.contains(consumer) {
            return true;
        }
        if seen.len() < self.inner.max_consumers {
            seen.insert(consumer.to_owned());
            return true;
        }
        false
    }

    /// Counts one upstream attempt.
    pub fn record_upstream(&self, service: &'static str, outcome: &'static str, took: Duration) {
        let inner = &*self.inner;
        inner.upstream_series.record(
            &(service, outcome),
            || {
                let series = UpstreamSeries {
                    attempts: inner
                        .upstream_requests
                        .get_or_create_owned(&UpstreamLabels { service, outcome }),
                    duration: inner
                        .upstream_duration
                        .get_or_create_owned(&ServiceLabels { service }),
                };
                ((service, outcome), series)
            },
            |series| {
                series.attempts.inc();
                series.duration.observe(took.as_secs_f64());
            },
        );
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
        if lookups == 0 {
            return;
        }
        let inner = &*self.inner;
        inner.cache_series.record(
            &(entity, result),
            || {
                let series = inner
                    .cache_lookups
                    .get_or_create_owned(&CacheLabels { entity, result });
                ((entity, result), series)
            },
            |series| {
                series.inc_by(lookups);
            },
        );
    }

    /// Counts one usage-plan decision.
    pub fn record_decision(
        &self,
        tier: &'static str,
        policy: &'static str,
        decision: &'static str,
    ) {
        let inner = &*self.inner;
        let labels = (tier, policy, decision);
        inner.decision_series.record(
            &labels,
            || {
                let series = inner
                    .ratelimit_decisions
                    .get_or_create_owned(&DecisionLabels {
                        tier,
                        policy,
                        decision,
                    });
                (labels, series)
            },
            |series| {
                series.inc();
            },
        );
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

/// What an upstream call carries of the request it is made for. The header values share
/// the record's bytes: taking them is a reference count, not a copy per call.
#[derive(Debug, Default)]
pub struct UpstreamIdentity {
    /// The request id.
    pub request_id: Option<HeaderValue>,
    /// The authenticated consumer, when it is a valid header value.
    pub consumer: Option<HeaderValue>,
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
    request_id: Option<HeaderValue>,
    trace: Option<TraceContext>,
    /// Finished upstream spans, kept only while spans are exported and the trace sampled.
    spans: Option<Mutex<Vec<FinishedSpan>>>,
    principal: OnceLock<(String, &'static str)>,
    /// The principal's subject as the `x-consumer-id` upstream calls carry (none when it
    /// is not a valid header value), made with the principal.
    consumer_header: OnceLock<Option<HeaderValue>>,
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
        request_id: Option<HeaderValue>,
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
        request_id: Option<HeaderValue>,
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
            if record.principal.set((consumer.to_owned(), tier)).is_err() {
                return;
            }
            let _ = record
                .consumer_header
                .set(HeaderValue::try_from(consumer).ok());
            if let Some(client) = client_id {
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
                consumer: record.consumer_header.get().cloned().flatten(),
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
        self.request_id.as_ref().and_then(|id| id.to_str().ok())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(value: &impl Hash, hasher: &foldhash::fast::RandomState) -> u64 {
        use std::hash::BuildHasher as _;
        hasher.hash_one(value)
    }

    #[test]
    fn an_owned_key_hashes_as_its_borrowed_labels() {
        let hasher = foldhash::fast::RandomState::default();
        let key = RequestKey {
            route: "/v2/orders/{id}".into(),
            status: 404,
            code: "NOT_FOUND",
            tier: "pro",
        };
        assert_eq!(hash_of(&key, &hasher), hash_of(&key.labels(), &hasher));
        let consumer = ConsumerKey {
            consumer: "u-1".into(),
            tier: "free",
        };
        let labels = ConsumerLabelsRef {
            consumer: "u-1",
            tier: "free",
        };
        assert_eq!(hash_of(&consumer, &hasher), hash_of(&labels, &hasher));
        assert!(labels.equivalent(&consumer));
    }

    #[test]
    fn each_label_set_is_its_own_series_and_repeats_add_up() {
        let metrics = Metrics::new("test-bff", 10);
        let record = RequestRecord::default();
        for _ in 0..3 {
            metrics.record_request("/a", 200, "OK", &record, Duration::from_millis(2));
        }
        metrics.record_request("/a", 404, "NOT_FOUND", &record, Duration::from_millis(2));
        metrics.record_request("/b", 200, "OK", &record, Duration::from_millis(2));
        metrics.record_upstream("orders", "ok", Duration::from_millis(1));
        metrics.record_upstream("orders", "ok", Duration::from_millis(1));
        metrics.record_upstream("orders", "timeout", Duration::from_millis(1));
        let text = metrics.encode();
        let line = |prefix: &str| {
            text.lines()
                .find(|line| line.starts_with(prefix))
                .unwrap_or_else(|| panic!("no series {prefix} in\n{text}"))
                .rsplit(' ')
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(
            line(
                r#"switchyard_http_requests_total{bff="test-bff",route="/a",status="200",code="OK",tier="none"}"#
            ),
            "3"
        );
        assert_eq!(
            line(r#"switchyard_http_requests_total{bff="test-bff",route="/a",status="404""#),
            "1"
        );
        assert_eq!(
            line(r#"switchyard_http_request_duration_seconds_count{bff="test-bff",route="/a"}"#),
            "4"
        );
        assert_eq!(
            line(
                r#"switchyard_upstream_requests_total{bff="test-bff",service="orders",outcome="ok"}"#
            ),
            "2"
        );
        assert_eq!(
            line(
                r#"switchyard_upstream_request_duration_seconds_count{bff="test-bff",service="orders"}"#
            ),
            "3"
        );
    }
}
