//! Partial results under failing upstreams: deadlines, stale data, breaker state.

use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_tests::{customer_json, order_json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::spawn_app_with;

const DASHBOARD: &str =
    "{ viewer { name orders(first: 2) { nodes { id items { sku stock { available } } } } } }";

#[tokio::test]
async fn a_slow_inventory_is_cut_off_at_the_deadline_and_the_rest_is_served() {
    let app = spawn_app_with(|config| config.graphql.deadline_ms = 300).await;
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    app.mocks
        .serve_orders(&[order_json("ord_1", "cus_1", &["SKU-1".to_owned()])])
        .await;
    Mock::given(method("GET"))
        .and(path("/inventory"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&app.mocks.inventory)
        .await;

    let started = Instant::now();
    let response = app.query(Some(&app.mocks.token("cus_1")), DASHBOARD).await;
    let elapsed = started.elapsed();

    assert!(
        elapsed < Duration::from_millis(300 + 300),
        "answered after {elapsed:?}"
    );
    assert_eq!(response.status, 200);
    let viewer = &response.json["data"]["viewer"];
    assert_eq!(viewer["name"], "Name of cus_1");
    assert_eq!(
        viewer["orders"]["nodes"][0]["items"][0].get("stock"),
        Some(&Value::Null)
    );
    assert_eq!(response.error_codes(), vec!["UPSTREAM_TIMEOUT"]);
    assert_eq!(
        response.json["errors"][0]["extensions"]["service"],
        "inventory"
    );
}

#[tokio::test]
async fn customers_down_serves_the_cached_customer_marked_stale_with_its_age() {
    let app = spawn_app_with(|config| {
        // Always refetch, so the second request really asks the (then failing) upstream.
        config.upstreams.customers.cache.ttl_ms = 0;
        config.upstreams.customers.retry.enabled = false;
    })
    .await;
    let token = app.mocks.token("cus_1");
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    let fresh = app.query(Some(&token), "{ viewer { name } }").await;
    assert_eq!(fresh.json["data"]["viewer"]["name"], "Name of cus_1");
    assert!(
        fresh.json.get("extensions").is_none(),
        "fresh data carries no freshness report"
    );

    app.mocks.customers.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&app.mocks.customers)
        .await;
    let stale = app.query(Some(&token), "{ viewer { name } }").await;
    assert_eq!(stale.status, 200);
    assert_eq!(
        stale.json["data"]["viewer"]["name"], "Name of cus_1",
        "{}",
        stale.json
    );
    assert!(stale.json.get("errors").is_none(), "{}", stale.json);
    let freshness = &stale.json["extensions"]["freshness"];
    assert_eq!(freshness["stale"], true);
    assert!(freshness["maxAgeSeconds"].as_u64().is_some());
    assert!(freshness["services"]["customers"].as_u64().is_some());
    assert_eq!(
        app.mocks
            .customers
            .received_requests()
            .await
            .map(|r| r.len()),
        Some(1),
        "the upstream was asked"
    );
}

#[tokio::test]
async fn an_open_breaker_shows_in_readiness_and_fails_fast_without_calling() {
    let app = spawn_app_with(|config| {
        config.upstreams.inventory.breaker.consecutive_failures = 2;
        config.upstreams.inventory.retry.enabled = false;
    })
    .await;
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    app.mocks
        .serve_orders(&[order_json("ord_1", "cus_1", &["SKU-1".to_owned()])])
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&app.mocks.inventory)
        .await;
    let token = app.mocks.token("cus_1");
    for _ in 0..2 {
        app.query(Some(&token), DASHBOARD).await;
    }
    let ready = app.get("/readyz").await;
    assert_eq!(
        ready.status, 200,
        "an open breaker does not make the BFF unready"
    );
    assert_eq!(ready.json["upstreams"]["inventory"], "open");
    assert_eq!(ready.json["upstreams"]["customers"], "closed");

    let calls = app
        .mocks
        .inventory
        .received_requests()
        .await
        .map_or(0, |r| r.len());
    let response = app.query(Some(&token), DASHBOARD).await;
    assert_eq!(response.json["data"]["viewer"]["name"], "Name of cus_1");
    assert_eq!(response.error_codes(), vec!["UPSTREAM_UNAVAILABLE"]);
    assert_eq!(
        app.mocks
            .inventory
            .received_requests()
            .await
            .map_or(0, |r| r.len()),
        calls
    );
}

#[tokio::test]
async fn the_viewer_and_their_orders_are_fetched_concurrently() {
    // Each upstream takes 250 ms and the budget is 400 ms: only if `viewer { name }` and
    // `viewer { orders }` are fetched in one round trip do both fit. The orders' customer
    // is the viewer, answered by the same customers call.
    let app = spawn_app_with(|config| config.graphql.deadline_ms = 400).await;
    let delay = Duration::from_millis(250);
    Mock::given(method("GET"))
        .and(path("/customers"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({ "data": [customer_json("cus_1")] }))
                .set_delay(delay),
        )
        .expect(1)
        .mount(&app.mocks.customers)
        .await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({
                    "data": [order_json("ord_1", "cus_1", &["SKU-1".to_owned()])],
                    "next_cursor": null
                }))
                .set_delay(delay),
        )
        .expect(1)
        .mount(&app.mocks.orders)
        .await;

    let response = app
        .query(
            Some(&app.mocks.token("cus_1")),
            "{ viewer { id name orders(first: 1) { nodes { id customer { name } } } } }",
        )
        .await;

    assert_eq!(response.status, 200);
    assert!(response.json.get("errors").is_none(), "{}", response.json);
    let viewer = &response.json["data"]["viewer"];
    assert_eq!(viewer["id"], "cus_1");
    assert_eq!(viewer["name"], "Name of cus_1");
    assert_eq!(
        viewer["orders"]["nodes"][0]["customer"]["name"],
        "Name of cus_1"
    );
}

#[tokio::test]
async fn an_unknown_signed_in_customer_is_not_found() {
    let app = spawn_app_with(|_| {}).await;
    app.mocks.serve_customers(&[]).await;

    let response = app
        .query(Some(&app.mocks.token("cus_gone")), "{ viewer { name } }")
        .await;

    assert_eq!(response.status, 200);
    assert_eq!(
        response.json["data"]["viewer"],
        Value::Null,
        "{}",
        response.json
    );
    assert_eq!(response.error_codes(), vec!["NOT_FOUND"]);
    assert_eq!(response.json["errors"][0]["path"][0], "viewer");
}
