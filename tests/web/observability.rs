//! What a dashboard request leaves behind: its access-log line (consumer, tier, the three
//! data products, three upstream calls; no token, no contact details), the metrics it
//! moved, and the headers its upstream calls carried (the principal's consumer id and the
//! request id; nothing the client tried to slip through).

use axum::body::Body;
use http::Request;
use serde_json::{Value, json};
use switchyard_core::access_log::Capture;
use switchyard_tests::{MetricsScrape, customer_json, order_json, stock_json};
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::{WebApp, spawn_app, spawn_app_with};

const DASHBOARD: &str = "query Dashboard { viewer { name orders(first: 5) { nodes { id items { sku stock { available } } } } } }";

async fn serve_dashboard(app: &WebApp) {
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    let orders = [order_json(
        "ord_1",
        "cus_1",
        &["SKU-1".to_owned(), "SKU-2".to_owned()],
    )];
    app.mocks.serve_orders(&orders).await;
    app.mocks
        .serve_stock(&[stock_json("SKU-1", 5), stock_json("SKU-2", 0)])
        .await;
}

/// POSTs the dashboard with `token`, request id `id` and any `extra` headers.
async fn dashboard(app: &WebApp, token: &str, id: &str, extra: &[(&str, &str)]) -> Value {
    let mut builder = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .header("authorization", format!("Bearer {token}"))
        .header("x-request-id", id);
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    let body = json!({"query": DASHBOARD, "operationName": "Dashboard"}).to_string();
    let response = app
        .send(builder.body(Body::from(body)).expect("request"))
        .await;
    assert_eq!(response.status, 200, "{}", response.json);
    response.json
}

fn line_of(capture: &Capture, id: &str) -> Value {
    let lines: Vec<Value> = capture
        .lines()
        .into_iter()
        .filter(|line| line["request_id"] == id)
        .collect();
    assert_eq!(lines.len(), 1, "one access line for {id}: {lines:?}");
    lines.into_iter().next().unwrap_or_default()
}

#[tokio::test]
async fn a_dashboard_request_logs_its_consumer_data_products_and_upstream_calls_and_nothing_secret()
{
    let app = spawn_app().await;
    serve_dashboard(&app).await;
    let capture = Capture::start();
    let token = app.mocks.token("cus_1");
    let body = dashboard(&app, &token, "obs-dashboard-1", &[]).await;
    assert_eq!(body["data"]["viewer"]["name"], "Name of cus_1");

    let line = line_of(&capture, "obs-dashboard-1");
    assert_eq!(line["bff"], "web-bff");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["route"], "/graphql");
    assert_eq!(line["operation"], "Dashboard");
    assert_eq!(line["status"], 200);
    assert_eq!(line["code"], "OK");
    assert_eq!(line["consumer"], "cus_1");
    assert_eq!(line["tier"], "pro");
    let mut products: Vec<&str> = line["data_products"]
        .as_array()
        .expect("data products")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    products.sort_unstable();
    assert_eq!(products, ["customers", "inventory", "orders"]);
    assert_eq!(line["upstream_calls"], 3);
    assert!(
        line["upstream_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{line}"
    );
    assert!(
        line["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{line}"
    );
    assert_eq!(line["stale"], false);
    assert!(line["ratelimit_remaining"].as_u64().is_some(), "{line}");
    let text = line.to_string();
    for secret in [
        token.as_str(),
        "cus_1@example.com",
        "+1 555 0100 1234",
        "Name of cus_1",
    ] {
        assert!(!text.contains(secret), "{secret} in the access log: {text}");
    }
}

#[tokio::test]
async fn upstream_calls_carry_the_principal_and_request_id_and_nothing_the_client_slipped_in() {
    let app = spawn_app().await;
    serve_dashboard(&app).await;
    let token = app.mocks.token("cus_1");
    dashboard(
        &app,
        &token,
        "obs-headers-1",
        &[
            ("x-consumer-id", "someone-else"),
            ("x-internal-user", "root"),
            ("x-switchyard-deadline-ms", "999999"),
            ("cookie", "session=secret"),
        ],
    )
    .await;
    let mut seen = 0;
    for server in [
        &app.mocks.customers,
        &app.mocks.orders,
        &app.mocks.inventory,
    ] {
        for request in server.received_requests().await.unwrap_or_default() {
            seen += 1;
            let header = |name: &str| {
                request
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            assert_eq!(
                header("x-consumer-id").as_deref(),
                Some("cus_1"),
                "{}",
                request.url
            );
            assert_eq!(header("x-request-id").as_deref(), Some("obs-headers-1"));
            assert_eq!(header("x-internal-user"), None);
            assert_eq!(header("cookie"), None);
            assert_eq!(header("authorization"), None, "the token stays at the edge");
            let deadline: u64 = header("x-switchyard-deadline-ms")
                .and_then(|v| v.parse().ok())
                .expect("our deadline");
            assert!(
                deadline < 999_999,
                "the client's deadline header passed through"
            );
        }
    }
    assert_eq!(seen, 3);
}

#[tokio::test]
async fn stale_served_data_is_logged_with_its_age_and_counted() {
    let app = spawn_app_with(|config| {
        config.upstreams.customers.cache.ttl_ms = 0;
        config.upstreams.customers.retry.enabled = false;
    })
    .await;
    serve_dashboard(&app).await;
    let token = app.mocks.token("cus_1");
    let capture = Capture::start();
    dashboard(&app, &token, "obs-fresh-1", &[]).await;
    assert_eq!(line_of(&capture, "obs-fresh-1")["stale"], false);

    app.mocks.customers.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&app.mocks.customers)
        .await;
    let body = dashboard(&app, &token, "obs-stale-1", &[]).await;
    assert_eq!(body["extensions"]["freshness"]["stale"], true, "{body}");
    let line = line_of(&capture, "obs-stale-1");
    assert_eq!(line["stale"], true, "{line}");
    assert!(line["data_age_s"].as_u64().is_some(), "{line}");

    let scrape = MetricsScrape::of(&app.get("/metrics").await);
    let count = |metric: &str, labels: &[(&str, &str)]| scrape.value(metric, labels).unwrap_or(0.0);
    let lookups = "switchyard_cache_lookups_total";
    assert_eq!(
        count(lookups, &[("entity", "customers"), ("result", "miss")]),
        2.0
    );
    assert_eq!(
        count(lookups, &[("entity", "customers"), ("result", "stale")]),
        1.0
    );
    let upstream = "switchyard_upstream_requests_total";
    assert_eq!(
        count(upstream, &[("service", "customers"), ("outcome", "ok")]),
        1.0
    );
    assert_eq!(
        count(
            upstream,
            &[("service", "customers"), ("outcome", "unavailable")]
        ),
        1.0
    );
    assert_eq!(
        count(upstream, &[("service", "orders"), ("outcome", "ok")]),
        2.0
    );
    assert_eq!(
        count(upstream, &[("service", "inventory"), ("outcome", "ok")]),
        2.0
    );
    for service in ["customers", "orders", "inventory"] {
        assert_eq!(
            count("switchyard_breaker_state", &[("service", service)]),
            0.0
        );
    }
    assert_eq!(
        count(
            "switchyard_ratelimit_decisions_total",
            &[("tier", "pro"), ("decision", "allowed")]
        ),
        2.0
    );
    assert_eq!(
        scrape.histogram_count("switchyard_served_data_age_seconds", &[]),
        Some(1.0)
    );
}

#[tokio::test]
async fn an_incoming_traceparent_is_continued_into_every_upstream_call() {
    let app = spawn_app().await;
    serve_dashboard(&app).await;
    let capture = Capture::start();
    let token = app.mocks.token("cus_1");
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    dashboard(
        &app,
        &token,
        "obs-trace-1",
        &[
            ("traceparent", &format!("00-{trace_id}-00f067aa0ba902b7-01")),
            ("tracestate", "vendor=abc"),
        ],
    )
    .await;
    assert_eq!(line_of(&capture, "obs-trace-1")["trace_id"], trace_id);
    let mut spans = std::collections::HashSet::new();
    for server in [
        &app.mocks.customers,
        &app.mocks.orders,
        &app.mocks.inventory,
    ] {
        for request in server.received_requests().await.unwrap_or_default() {
            let traceparent = request
                .headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .expect("a traceparent upstream")
                .to_owned();
            let fields: Vec<&str> = traceparent.split('-').collect();
            assert_eq!(fields.len(), 4, "{traceparent}");
            assert_eq!((fields[0], fields[1], fields[3]), ("00", trace_id, "01"));
            assert_ne!(
                fields[2], "00f067aa0ba902b7",
                "a span of our own, not the caller's"
            );
            spans.insert(fields[2].to_owned());
            assert_eq!(
                request
                    .headers
                    .get("tracestate")
                    .and_then(|v| v.to_str().ok()),
                Some("vendor=abc")
            );
        }
    }
    assert_eq!(spans.len(), 3, "one span per upstream attempt");
}

#[tokio::test]
async fn without_a_traceparent_each_request_starts_a_trace_of_its_own() {
    let app = spawn_app().await;
    serve_dashboard(&app).await;
    let capture = Capture::start();
    let token = app.mocks.token("cus_1");
    dashboard(&app, &token, "obs-trace-2", &[]).await;
    dashboard(&app, &token, "obs-trace-3", &[]).await;
    let first = line_of(&capture, "obs-trace-2")["trace_id"].clone();
    let second = line_of(&capture, "obs-trace-3")["trace_id"].clone();
    assert_eq!(first.as_str().map(str::len), Some(32), "{first}");
    assert_ne!(first, second);
    let orders = app
        .mocks
        .orders
        .received_requests()
        .await
        .unwrap_or_default();
    let carried: Vec<String> = orders
        .iter()
        .filter_map(|r| {
            r.headers
                .get("traceparent")?
                .to_str()
                .ok()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(carried.len(), 2);
    assert!(
        carried[0].contains(first.as_str().unwrap_or_default()),
        "{carried:?}"
    );
}

/// An OTLP/HTTP receiver on loopback: the spans of every `POST /v1/traces`, decoded.
struct OtlpReceiver {
    url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<ExportTraceServiceRequest>>>,
}

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

impl OtlpReceiver {
    async fn start() -> Self {
        use axum::routing::post;
        use prost::Message as _;
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&received);
        let router = axum::Router::new().route(
            "/v1/traces",
            post(move |body: axum::body::Bytes| {
                let sink = std::sync::Arc::clone(&sink);
                async move {
                    let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                    sink.lock().expect("lock").push(request);
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, received }
    }

    /// (service.name, span) of every span received so far.
    fn spans(&self) -> Vec<(String, opentelemetry_proto::tonic::trace::v1::Span)> {
        let mut spans = Vec::new();
        for request in self.received.lock().expect("lock").iter() {
            for resource in &request.resource_spans {
                let service = resource
                    .resource
                    .as_ref()
                    .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                    .and_then(|a| a.value.as_ref())
                    .and_then(|v| match &v.value {
                        Some(
                            opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                                s,
                            ),
                        ) => Some(s.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                for scope in &resource.scope_spans {
                    for span in &scope.spans {
                        spans.push((service.clone(), span.clone()));
                    }
                }
            }
        }
        spans
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_the_request_and_each_upstream_attempt_reach_an_otlp_receiver_linked() {
    let receiver = OtlpReceiver::start().await;
    let app = spawn_app_with(|config| {
        config.telemetry.otlp_endpoint = Some(receiver.url.clone());
        config.telemetry.export_interval_ms = 50;
    })
    .await;
    serve_dashboard(&app).await;
    let token = app.mocks.token("cus_1");
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let caller_span = "b7ad6b7169203331";
    dashboard(
        &app,
        &token,
        "obs-otlp-1",
        &[("traceparent", &format!("00-{trace_id}-{caller_span}-01"))],
    )
    .await;
    let mut spans = Vec::new();
    for _ in 0..100 {
        spans = receiver.spans();
        if spans.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        spans.len(),
        4,
        "a server span and three client spans: {spans:?}"
    );
    assert!(spans.iter().all(|(service, _)| service == "web-bff"));
    assert!(
        spans
            .iter()
            .all(|(_, span)| hex(&span.trace_id) == trace_id)
    );
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    let servers: Vec<_> = spans
        .iter()
        .filter(|(_, s)| s.kind == SpanKind::Server as i32)
        .collect();
    assert_eq!(servers.len(), 1);
    let server = &servers[0].1;
    assert_eq!(hex(&server.parent_span_id), caller_span);
    assert_eq!(server.name, "POST /graphql");
    let server_id = hex(&server.span_id);
    let mut client_ids: Vec<String> = spans
        .iter()
        .filter(|(_, s)| s.kind == SpanKind::Client as i32)
        .map(|(_, s)| {
            assert_eq!(hex(&s.parent_span_id), server_id, "{}", s.name);
            assert!(s.end_time_unix_nano >= s.start_time_unix_nano);
            hex(&s.span_id)
        })
        .collect();
    client_ids.sort();
    // The spans are the ones named in the traceparent each upstream received.
    let mut sent: Vec<String> = Vec::new();
    for server in [
        &app.mocks.customers,
        &app.mocks.orders,
        &app.mocks.inventory,
    ] {
        for request in server.received_requests().await.unwrap_or_default() {
            let traceparent = request.headers["traceparent"]
                .to_str()
                .expect("ascii")
                .to_owned();
            sent.push(traceparent.split('-').nth(2).unwrap_or_default().to_owned());
        }
    }
    sent.sort();
    assert_eq!(client_ids, sent);
}

/// Every metric the Grafana dashboard queries is one `/metrics` exports, and every label
/// it groups by is one those series carry.
#[tokio::test]
async fn the_grafana_dashboard_queries_only_what_the_bffs_export() {
    let dashboard_json: Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/switchyard.json"
    )))
    .expect("the dashboard is JSON");
    let app = spawn_app().await;
    serve_dashboard(&app).await;
    let token = app.mocks.token("cus_1");
    dashboard(&app, &token, "obs-grafana-1", &[]).await;
    let text = String::from_utf8(app.get("/metrics").await.body.to_vec()).expect("utf-8");

    // What is exported: families by their TYPE line, and the labels each series carries.
    let mut families = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                families.insert(name.to_owned(), kind.to_owned());
            }
        }
    }
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("Prometheus text");
    let mut labels: std::collections::HashMap<String, std::collections::HashSet<String>> =
        std::collections::HashMap::new();
    for sample in &scrape.samples {
        let keys = labels.entry(sample.metric.clone()).or_default();
        keys.extend(sample.labels.keys().cloned());
        if matches!(sample.value, prometheus_parse::Value::Histogram(_)) {
            keys.insert("le".to_owned());
        }
    }

    let mut expressions = Vec::new();
    for panel in dashboard_json["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            expressions.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    expressions.push(
        dashboard_json["templating"]["list"][1]["query"]
            .as_str()
            .expect("the bff variable's query")
            .to_owned(),
    );
    assert!(expressions.len() >= 12);
    for expr in &expressions {
        let mut rest = expr.as_str();
        let mut names = Vec::new();
        while let Some(at) = rest.find("switchyard_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            names.push(name);
        }
        assert!(!names.is_empty(), "no metric in {expr}");
        for name in names {
            let family = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| families.get(*base).is_some_and(|k| k == "histogram"))
                .map(str::to_owned)
                .or_else(|| name.strip_suffix("_total").map(str::to_owned))
                .unwrap_or_else(|| name.clone());
            assert!(
                families.contains_key(&family),
                "{name} (in {expr}) is not exported"
            );
            // Labels grouped by must exist on the series, where there are series yet.
            let series_name = if families.get(&family).is_some_and(|k| k == "histogram") {
                family.clone()
            } else {
                name.clone()
            };
            if let (Some(keys), Some(by)) = (labels.get(&series_name), expr.find("by (")) {
                let grouped = &expr[by + 4..];
                let grouped = &grouped[..grouped.find(')').unwrap_or(0)];
                for label in grouped.split(',').map(str::trim) {
                    assert!(keys.contains(label), "{name} has no label {label}: {expr}");
                }
            }
        }
    }
}
