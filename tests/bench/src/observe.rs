//! `switchyard-bench observe`: the cost of what every request pays for observability,
//! timed in the process: counting it in the metrics (the in-flight gauge, the request
//! counter and latency histogram, the per-consumer counter), the request record, the trace
//! context (with one child span id), and formatting its access line.

use std::time::{Duration, Instant};

use switchyard_core::access_log::AccessLine;
use switchyard_core::metrics::{Metrics, RequestRecord};
use switchyard_core::trace_context::TraceContext;

/// One figure: what was timed and its cost per request.
pub struct Figure {
    /// What.
    pub what: &'static str,
    /// Nanoseconds per request.
    pub ns: f64,
}

/// Times each part over `requests` requests from 256 consumers.
pub async fn run(requests: u64) -> Vec<Figure> {
    let metrics = Metrics::new("bench-bff", 1000);
    let consumers: Vec<String> = (0..256).map(|i| format!("cus_{i:05}")).collect();
    let headers = http::HeaderMap::new();
    let mut figures = Vec::new();

    let started = Instant::now();
    for i in 0..requests {
        let consumer = &consumers[(i % 256) as usize];
        let (_, record) = RequestRecord::scope(Some(metrics.clone()), None, None, false, async {
            let _in_flight = metrics.in_flight();
            RequestRecord::note_consumer(consumer, "pro", None);
        })
        .await;
        metrics.record_request(
            "/v2/dashboard",
            200,
            "OK",
            &record,
            Duration::from_micros(900),
        );
    }
    figures.push(Figure {
        what: "metrics + request record",
        ns: per(started.elapsed(), requests),
    });

    let started = Instant::now();
    for _ in 0..requests {
        let trace = TraceContext::from_headers(&headers);
        std::hint::black_box(trace.child());
    }
    figures.push(Figure {
        what: "trace context + 1 child span",
        ns: per(started.elapsed(), requests),
    });

    let started = Instant::now();
    let products = vec!["orders", "customers", "inventory"];
    for i in 0..requests {
        let line = AccessLine {
            ts: "2026-12-01T22:35:02.750752418Z".to_owned(),
            request_id: "412a66fa2246-3ef6-0",
            trace_id: Some("0af7651916cd43dd8448eb211c80319c"),
            bff: "mobile-bff",
            method: "GET",
            route: "/v2/dashboard",
            operation: None,
            status: 200,
            code: "OK",
            latency_ms: 0.9,
            consumer: Some(&consumers[(i % 256) as usize]),
            client_id: None,
            tier: Some("pro"),
            data_products: products.clone(),
            upstream_calls: 2,
            upstream_ms: 0.7,
            bytes: Some(412),
            ratelimit_remaining: None,
            stale: false,
            data_age_s: None,
        };
        std::hint::black_box(serde_json::to_string(&line).unwrap_or_default());
    }
    figures.push(Figure {
        what: "access line (JSON, not written)",
        ns: per(started.elapsed(), requests),
    });
    figures
}

fn per(elapsed: Duration, requests: u64) -> f64 {
    elapsed.as_nanos() as f64 / requests.max(1) as f64
}
