//! `/metrics` after a scripted mix of requests, parsed as Prometheus text: each counter moved
//! by exactly what the mix implies, and the consumer cardinality cap holds.

use axum::body::Body;
use http::Request;
use switchyard_tests::MetricsScrape;

use crate::{spawn_app, spawn_app_with};

async fn scrape(app: &crate::MobileApp) -> MetricsScrape {
    MetricsScrape::of(
        &app.send(
            Request::get("/metrics")
                .body(Body::empty())
                .expect("request"),
        )
        .await,
    )
}

/// The value of `metric`'s samples whose labels include `labels`.
fn value(scrape: &MetricsScrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape.value(metric, labels)
}

#[tokio::test]
async fn requests_are_counted_by_route_status_code_tier_and_consumer() {
    let app = spawn_app().await;
    app.mocks.serve_orders(&[]).await;
    let token = app.token("cus_1");
    for _ in 0..2 {
        assert_eq!(app.get("/v2/orders", Some(&token)).await.status, 200);
    }
    assert_eq!(app.get("/v2/orders", None).await.status, 401);
    assert_eq!(
        app.get("/v2/orders?limit=0", Some(&token)).await.status,
        400
    );
    let missing = app
        .send(
            Request::get("/no/such/path")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(missing.status, 404);

    let scrape = scrape(&app).await;
    let requests = "switchyard_http_requests_total";
    let route = ("route", "/v2/orders");
    assert_eq!(
        value(
            &scrape,
            requests,
            &[route, ("status", "200"), ("code", "OK"), ("tier", "pro")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &scrape,
            requests,
            &[
                route,
                ("status", "401"),
                ("code", "UNAUTHENTICATED"),
                ("tier", "none")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &scrape,
            requests,
            &[
                route,
                ("status", "400"),
                ("code", "BAD_USER_INPUT"),
                ("tier", "pro")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &scrape,
            requests,
            &[("route", "unmatched"), ("status", "404")]
        ),
        Some(1.0)
    );
    let consumer = "switchyard_consumer_requests_total";
    assert_eq!(
        value(&scrape, consumer, &[("consumer", "cus_1"), ("tier", "pro")]),
        Some(3.0)
    );
    // The scrape itself is the one request in flight.
    assert_eq!(
        value(&scrape, "switchyard_in_flight_requests", &[]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &scrape,
            "switchyard_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert_eq!(
        scrape.histogram_count(
            "switchyard_http_request_duration_seconds",
            &[("route", "/v2/orders")]
        ),
        Some(4.0),
        "a latency histogram per route"
    );
    // Every series names its BFF.
    assert!(
        scrape
            .0
            .samples
            .iter()
            .all(|s| s.labels.get("bff") == Some("mobile-bff")),
        "a series without bff=\"mobile-bff\""
    );
}

#[tokio::test]
async fn consumers_past_the_cap_are_counted_as_other() {
    let app = spawn_app_with(|config| config.metrics.max_consumers = 2).await;
    app.mocks.serve_orders(&[]).await;
    for consumer in ["cus_1", "cus_2", "cus_3", "cus_4", "cus_1"] {
        let token = app.token(consumer);
        assert_eq!(app.get("/v2/orders", Some(&token)).await.status, 200);
    }
    let scrape = scrape(&app).await;
    let consumer = "switchyard_consumer_requests_total";
    assert_eq!(
        value(&scrape, consumer, &[("consumer", "cus_1")]),
        Some(2.0)
    );
    assert_eq!(
        value(&scrape, consumer, &[("consumer", "cus_2")]),
        Some(1.0)
    );
    assert_eq!(value(&scrape, consumer, &[("consumer", "cus_3")]), None);
    assert_eq!(
        value(&scrape, consumer, &[("consumer", "other")]),
        Some(2.0)
    );
}

#[tokio::test]
async fn production_serves_metrics_only_on_the_admin_port() {
    let app = spawn_app_with(|config| {
        config.profile = switchyard_core::config::Profile::Production;
    })
    .await;
    let response = app
        .send(
            Request::get("/metrics")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(
        response.status, 404,
        "no metrics beside the API in production"
    );
}

#[tokio::test]
async fn with_an_admin_port_metrics_and_probes_are_there_and_not_beside_the_api() {
    use switchyard_core::bff::{App, BffConfig as _};
    let mocks = switchyard_tests::MockUpstreams::start().await;
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let admin = free.local_addr().expect("addr");
    drop(free);
    let mut config = mobile_bff::MobileConfig::default();
    *config.upstreams_mut() = mocks.upstreams_config();
    *config.auth_mut() = mocks.auth_config();
    config.server.admin_listen = Some(admin);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let main = listener.local_addr().expect("addr");
    let app = App::<mobile_bff::MobileBff>::new(&config).expect("app");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let get = |url: String| {
        let client = client.clone();
        async move {
            for _ in 0..50 {
                if let Ok(response) = client.get(&url).send().await {
                    return response;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            panic!("{url} never answered");
        }
    };
    assert_eq!(get(format!("http://{main}/metrics")).await.status(), 404);
    assert_eq!(get(format!("http://{main}/healthz")).await.status(), 200);
    let metrics = get(format!("http://{admin}/metrics")).await;
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.expect("body");
    assert!(text.contains("switchyard_build_info"), "{text}");
    assert_eq!(get(format!("http://{admin}/healthz")).await.status(), 200);
    assert_eq!(get(format!("http://{admin}/v2/orders")).await.status(), 404);
    stop.send(()).expect("serving");
    served.await.expect("joined").expect("served");
}

/// 429 (the consumer over its plan) and 503 (an upstream down) are told apart, in the
/// request counter and in the plan decisions.
#[tokio::test]
async fn over_the_plan_and_upstream_down_are_counted_apart() {
    use switchyard_core::domain::Tier;
    use switchyard_core::ratelimit::TierPlan;
    let app = spawn_app_with(|config| {
        let plan = TierPlan {
            rate_per_sec: 0.001,
            burst: 2,
            quotas: Vec::new(),
        };
        config.ratelimit.tiers.insert(Tier::Pro, plan);
        config.upstreams.orders.retry.enabled = false;
    })
    .await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .respond_with(wiremock::ResponseTemplate::new(503))
        .mount(&app.mocks.orders)
        .await;
    let token = app.token("cus_1");
    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(app.get("/v2/orders", Some(&token)).await.status.as_u16());
        }
        statuses
    };
    assert_eq!(statuses, [503, 503, 429]);
    let scrape = scrape(&app).await;
    let requests = "switchyard_http_requests_total";
    let route = ("route", "/v2/orders");
    assert_eq!(
        value(
            &scrape,
            requests,
            &[route, ("status", "503"), ("code", "UPSTREAM_UNAVAILABLE")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &scrape,
            requests,
            &[route, ("status", "429"), ("code", "RATE_LIMITED")]
        ),
        Some(1.0)
    );
    let decisions = "switchyard_ratelimit_decisions_total";
    assert_eq!(
        value(
            &scrape,
            decisions,
            &[("tier", "pro"), ("decision", "allowed")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &scrape,
            decisions,
            &[
                ("tier", "pro"),
                ("decision", "limited"),
                ("policy", "burst")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &scrape,
            "switchyard_upstream_requests_total",
            &[("service", "orders"), ("outcome", "unavailable")]
        ),
        Some(2.0)
    );
}
