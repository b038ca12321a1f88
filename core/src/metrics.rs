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
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Where every BFF serves its metrics.
pub const METRICS_PATH: &str = "/metrics";

/// `consumer` label value for consumers past `metrics.max_consumers`.
pub const OTHER_CONSUMER: &str = "other";
/// `tier` label value of a request whose consumer is not known (not authenticated).
pub const NO_TIER: &str = "none";

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
struct VersionLabels {
    version: &'static str,
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
        Self {
            inner: Arc::new(Inner {
                registry: root,
                http_requests,
                http_duration,
                consumer_requests,
                consumers: Mutex::new(HashSet::new()),
                max_consumers,
                in_flight,
            }),
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

tokio::task_local! {
    static CURRENT: Arc<RequestRecord>;
}

/// What one request learned while it ran, for its metrics and log line.
#[derive(Debug, Default)]
pub struct RequestRecord {
    principal: OnceLock<(String, &'static str)>,
}

impl RequestRecord {
    /// Runs `work` with a fresh record as the current one, then returns its output and the
    /// record.
    pub async fn scope<F: Future>(work: F) -> (F::Output, Arc<Self>) {
        let record = Arc::new(Self::default());
        let output = CURRENT.scope(Arc::clone(&record), work).await;
        (output, record)
    }

    /// Notes on the current request's record (if any) that it is `consumer`'s, on `tier`.
    /// The first principal of a request is the one kept.
    pub fn note_consumer(consumer: &str, tier: &'static str) {
        let _ = CURRENT.try_with(|record| {
            let _ = record.principal.set((consumer.to_owned(), tier));
        });
    }

    /// The consumer, once authenticated.
    pub fn consumer(&self) -> Option<&str> {
        self.principal.get().map(|(consumer, _)| consumer.as_str())
    }

    /// The consumer's tier, once authenticated.
    pub fn tier(&self) -> Option<&'static str> {
        self.principal.get().map(|(_, tier)| *tier)
    }
}
