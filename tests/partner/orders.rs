//! `GET /partner/v1/orders`: orders across customers with masked customers, filters,
//! cursors and partial results.

use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use switchyard_tests::{customer_json, order_json};

use crate::{PARTNER_SCOPES, spawn_app};

/// An order of `customer` last changed at `updated_at`.
fn order(id: &str, customer: &str, updated_at: &str) -> Value {
    let mut order = order_json(id, customer, &["SKU-1".to_owned(), "SKU-2".to_owned()]);
    order["updated_at"] = json!(updated_at);
    order
}

async fn serve_page(app: &crate::PartnerApp, orders: &[Value], next_cursor: Option<&str>) {
    Mock::given(method("GET"))
        .and(path("/orders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "data": orders, "next_cursor": next_cursor })),
        )
        .mount(&app.mocks.orders)
        .await;
}

#[tokio::test]
async fn orders_of_every_customer_come_with_masked_customers_from_one_batched_call() {
    let app = spawn_app().await;
    serve_page(
        &app,
        &[
            order("ord_1", "cus_1", "2026-11-02T00:00:00Z"),
            order("ord_2", "cus_2", "2026-11-01T00:00:00Z"),
            order("ord_3", "cus_1", "2026-11-01T00:00:00Z"),
        ],
        None,
    )
    .await;
    Mock::given(method("GET"))
        .and(path("/customers"))
        .and(query_param("ids", "cus_1,cus_2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "data": [customer_json("cus_1"), customer_json("cus_2")] })),
        )
        .expect(1)
        .mount(&app.mocks.customers)
        .await;
    // Even a token holding data:customers:pii sees masked customers here.
    let scopes = format!("{PARTNER_SCOPES} data:customers:pii");
    let token = app.bearer("partner-acme", &scopes);
    let response = app
        .get("/partner/v1/orders?status=shipped", Some(&token))
        .await;
    assert_eq!(response.status, 200, "{}", response.json);
    let rows = response.json["data"].as_array().expect("data");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["totalCents"], 200);
    assert_eq!(rows[0]["currency"], "EUR");
    assert_eq!(rows[0]["items"][1]["unitPriceCents"], 100);
    let customer = &rows[1]["customer"];
    assert_eq!(customer["id"], "cus_2");
    assert_eq!(customer["email"], "c***@example.com");
    assert_eq!(customer["phone"], "+* *** **** **34");
    assert!(customer.get("name").is_none(), "names are never sent");
    assert_eq!(response.json["degraded"], json!([]));
    assert_eq!(response.json["pagination"]["hasMore"], false);
    let listing = &app
        .mocks
        .orders
        .received_requests()
        .await
        .expect("recorded")[0];
    let query: Vec<(String, String)> = listing.url.query_pairs().into_owned().collect();
    assert!(
        query.contains(&("status".into(), "shipped".into())),
        "{query:?}"
    );
    assert!(
        !query.iter().any(|(k, _)| k == "customer_id"),
        "across customers: {query:?}"
    );
}

#[tokio::test]
async fn without_customers_read_the_customers_service_is_not_called() {
    let app = spawn_app().await;
    serve_page(
        &app,
        &[order("ord_1", "cus_1", "2026-11-02T00:00:00Z")],
        None,
    )
    .await;
    let token = app.bearer("partner-acme", "data:orders:read data:admin");
    let response = app.get("/partner/v1/orders", Some(&token)).await;
    assert_eq!(response.status, 200, "{}", response.json);
    assert_eq!(response.json["data"][0]["customer"], Value::Null);
    let customers_calls = app
        .mocks
        .customers
        .received_requests()
        .await
        .map(|r| r.len());
    assert_eq!(customers_calls, Some(0));
}

#[tokio::test]
async fn updated_since_keeps_only_orders_changed_at_or_after_it() {
    let app = spawn_app().await;
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    serve_page(
        &app,
        &[
            order("ord_new", "cus_1", "2026-11-02T00:00:00Z"),
            order("ord_edge", "cus_1", "2026-11-01T00:00:00Z"),
            order("ord_old", "cus_1", "2026-10-31T23:59:59Z"),
        ],
        None,
    )
    .await;
    let response = app
        .get(
            "/partner/v1/orders?updated_since=2026-11-01T00:00:00Z",
            Some(&app.partner()),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.json);
    let ids: Vec<&str> = response.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|row| row["id"].as_str())
        .collect();
    assert_eq!(ids, ["ord_new", "ord_edge"]);
}

#[tokio::test]
async fn cursors_continue_the_upstream_listing_and_are_bound_to_their_filters() {
    let app = spawn_app().await;
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param_is_missing("cursor"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [order("ord_9", "cus_1", "2026-11-02T00:00:00Z")],
            "next_cursor": "ord_9"
        })))
        .mount(&app.mocks.orders)
        .await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param("cursor", "ord_9"))
        .and(query_param("limit", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [order("ord_8", "cus_1", "2026-11-01T00:00:00Z")],
            "next_cursor": null
        })))
        .expect(1)
        .mount(&app.mocks.orders)
        .await;
    let first = app
        .get(
            "/partner/v1/orders?status=paid&limit=1",
            Some(&app.partner()),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.json);
    assert_eq!(first.json["pagination"]["hasMore"], true);
    let cursor = first.json["pagination"]["cursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    assert!(!cursor.contains("ord_9"), "cursors are opaque: {cursor}");
    let second = app
        .get(
            &format!("/partner/v1/orders?status=paid&limit=1&cursor={cursor}"),
            Some(&app.partner()),
        )
        .await;
    assert_eq!(second.status, 200, "{}", second.json);
    assert_eq!(second.json["data"][0]["id"], "ord_8");
    assert_eq!(second.json["pagination"]["cursor"], Value::Null);

    let calls_before = app.upstream_calls().await;
    for uri in [
        format!("/partner/v1/orders?status=shipped&limit=1&cursor={cursor}"),
        format!(
            "/partner/v1/orders?status=paid&updated_since=2026-01-01T00:00:00Z&cursor={cursor}"
        ),
        format!("/partner/v1/orders?status=paid&cursor={cursor}x"),
    ] {
        let response = app.get(&uri, Some(&app.partner())).await;
        assert_eq!(response.status, 400, "{uri}");
        assert_eq!(response.json["code"], "BAD_REQUEST", "{uri}");
    }
    assert_eq!(app.upstream_calls().await, calls_before);
}

#[tokio::test]
async fn bad_parameters_are_400_problems_without_upstream_calls() {
    let app = spawn_app().await;
    for uri in [
        "/partner/v1/orders?limit=0",
        "/partner/v1/orders?limit=101",
        "/partner/v1/orders?limit=ten",
        "/partner/v1/orders?status=lost",
        "/partner/v1/orders?updated_since=yesterday",
        "/partner/v1/orders?customer_id=cus_1",
    ] {
        let response = app.get(uri, Some(&app.partner())).await;
        assert_eq!(response.status, 400, "{uri}: {}", response.json);
        assert_eq!(response.json["code"], "BAD_USER_INPUT", "{uri}");
    }
    let response = app
        .get("/partner/v1/orders?cursor=garbage", Some(&app.partner()))
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(response.json["code"], "BAD_REQUEST");
    assert_eq!(app.upstream_calls().await, 0);
}

#[tokio::test]
async fn a_customers_outage_degrades_the_page_and_an_orders_outage_fails_it() {
    let app = spawn_app().await;
    serve_page(
        &app,
        &[order("ord_1", "cus_1", "2026-11-02T00:00:00Z")],
        None,
    )
    .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&app.mocks.customers)
        .await;
    let response = app.get("/partner/v1/orders", Some(&app.partner())).await;
    assert_eq!(response.status, 200, "{}", response.json);
    assert_eq!(response.json["data"][0]["customer"], Value::Null);
    assert_eq!(response.json["degraded"], json!(["customers"]));

    let app = spawn_app().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&app.mocks.orders)
        .await;
    let response = app.get("/partner/v1/orders", Some(&app.partner())).await;
    assert_eq!(response.status, 503);
    assert_eq!(response.json["code"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(response.json["service"], "orders");
}
