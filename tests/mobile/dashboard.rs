//! `GET /v2/dashboard`: shape, size budget, exactly the expected upstream calls, partial
//! results.

use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::{customers_body, orders_of, spawn_app, spawn_app_with};

#[tokio::test]
async fn dashboard_shows_the_customer_and_five_recent_orders_from_one_call_per_service() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path("/customers"))
        .and(query_param("ids", "cus_00042"))
        .respond_with(ResponseTemplate::new(200).set_body_json(customers_body("cus_00042")))
        .expect(1)
        .mount(&app.mocks.customers)
        .await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param("customer_id", "cus_00042"))
        .and(query_param("limit", "5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": orders_of("cus_00042", 5, 3), "next_cursor": "ord-cus_00042-4"}),
        ))
        .expect(1)
        .mount(&app.mocks.orders)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&app.mocks.inventory)
        .await;

    let response = app
        .get("/v2/dashboard", Some(&app.token("cus_00042")))
        .await;

    assert_eq!(response.status, 200);
    let body = &response.json;
    assert_eq!(
        body["user"],
        json!({"id": "cus_00042", "name": "Name of cus_00042",
               "avatar": "https://img.test/cus_00042_64.png"})
    );
    let recent = body["recentOrders"].as_array().expect("recent orders");
    assert_eq!(recent.len(), 5);
    assert_eq!(
        recent[0],
        json!({"id": "ord-cus_00042-0", "status": "shipped", "total": "€3.00", "itemCount": 3})
    );
    assert_eq!(body["meta"]["degraded"], json!([]));
    assert_eq!(body["meta"]["freshnessSeconds"], 0);
    // Nothing the screen does not show: no e-mail, phone, line items or raw cents.
    let text = String::from_utf8(response.body.clone()).expect("utf-8");
    for absent in ["email", "phone", "items", "total_cents", "sku"] {
        assert!(!text.contains(absent), "{absent} leaked into {text}");
    }
    assert!(
        response.body.len() <= 2048,
        "dashboard is {} bytes, over the 2 KB budget",
        response.body.len()
    );
}

#[tokio::test]
async fn the_two_upstream_calls_run_concurrently() {
    // Each upstream takes 250 ms and the budget is 400 ms: only concurrent calls both fit.
    let app = spawn_app_with(|config| config.api.deadline_ms = 400).await;
    let delay = Duration::from_millis(250);
    Mock::given(method("GET"))
        .and(path("/customers"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(customers_body("cus_1"))
                .set_delay(delay),
        )
        .mount(&app.mocks.customers)
        .await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": orders_of("cus_1", 2, 1), "next_cursor": null}))
                .set_delay(delay),
        )
        .mount(&app.mocks.orders)
        .await;

    let response = app.get("/v2/dashboard", Some(&app.token("cus_1"))).await;

    assert_eq!(response.status, 200);
    assert_eq!(
        response.json["meta"]["degraded"],
        json!([]),
        "{}",
        response.json
    );
    assert_eq!(
        response.json["recentOrders"].as_array().map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn orders_down_leaves_recent_orders_null_and_says_so() {
    let app = spawn_app().await;
    app.mocks
        .serve_customers(&[switchyard_tests::customer_json("cus_1")])
        .await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&app.mocks.orders)
        .await;

    let response = app.get("/v2/dashboard", Some(&app.token("cus_1"))).await;

    assert_eq!(response.status, 200);
    assert_eq!(response.json["user"]["name"], "Name of cus_1");
    assert_eq!(response.json["recentOrders"], json!(null));
    assert_eq!(response.json["meta"]["degraded"], json!(["orders"]));
}

#[tokio::test]
async fn both_services_down_is_a_503_problem_naming_the_service() {
    let app = spawn_app().await;
    for server in [&app.mocks.customers, &app.mocks.orders] {
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(503))
            .mount(server)
            .await;
    }

    let response = app.get("/v2/dashboard", Some(&app.token("cus_1"))).await;

    assert_eq!(response.status, 503);
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(response.json["code"], "UPSTREAM_UNAVAILABLE");
    assert!(["customers", "orders"].contains(&response.json["service"].as_str().unwrap_or("")));
}

#[tokio::test]
async fn a_signed_in_customer_the_customers_service_does_not_know_is_a_404() {
    let app = spawn_app().await;
    app.mocks.serve_customers(&[]).await;
    app.mocks.serve_orders(&[]).await;

    let response = app.get("/v2/dashboard", Some(&app.token("cus_gone"))).await;

    assert_eq!(response.status, 404);
    assert_eq!(response.json["code"], "NOT_FOUND");
}
