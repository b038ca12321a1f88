//! Upstream failures become typed errors, never panics; healthy branches still answer.

use serde_json::json;
use switchyard_tests::{customer_json, order_json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::spawn_app;

#[tokio::test]
async fn an_upstream_404_is_not_found() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": "not found"})))
        .mount(&app.mocks.orders)
        .await;
    let response = app
        .query(
            Some(&app.mocks.token("cus_1")),
            "{ orders { nodes { id } } }",
        )
        .await;
    assert_eq!(
        response.error_codes(),
        vec!["NOT_FOUND"],
        "{}",
        response.json
    );
    assert_eq!(
        response.json["errors"][0]["extensions"]["service"],
        "orders"
    );
}

#[tokio::test]
async fn an_entity_the_upstream_does_not_know_is_not_found() {
    let app = spawn_app().await;
    app.mocks.serve_orders(&[]).await;
    let response = app
        .query(
            Some(&app.mocks.token("cus_1")),
            r#"{ order(id: "ord_nope") { id } }"#,
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json["data"].get("order"),
        Some(&serde_json::Value::Null)
    );
    assert_eq!(response.error_codes(), vec!["NOT_FOUND"]);
}

#[tokio::test]
async fn malformed_upstream_json_is_a_clean_error_and_the_rest_is_served() {
    let app = spawn_app().await;
    app.mocks
        .serve_orders(&[order_json("ord_1", "cus_1", &["SKU-1".to_owned()])])
        .await;
    Mock::given(method("GET"))
        .and(path("/inventory"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"data\": [{\"sku\": 42"))
        .mount(&app.mocks.inventory)
        .await;
    let response = app
        .query(
            Some(&app.mocks.token("cus_1")),
            r#"{ order(id: "ord_1") { id items { sku stock { available } } } }"#,
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json["data"]["order"]["id"], "ord_1");
    assert_eq!(response.json["data"]["order"]["items"][0]["sku"], "SKU-1");
    assert_eq!(
        response.json["data"]["order"]["items"][0]["stock"],
        serde_json::Value::Null
    );
    assert_eq!(response.error_codes(), vec!["UPSTREAM_UNAVAILABLE"]);
    let error = &response.json["errors"][0];
    assert_eq!(error["extensions"]["service"], "inventory");
    assert_eq!(error["path"], json!(["order", "items", 0, "stock"]));
    let body = String::from_utf8_lossy(&response.body);
    assert!(
        !body.contains("127.0.0.1"),
        "no internal addresses in errors: {body}"
    );
}

#[tokio::test]
async fn a_failing_customers_service_is_upstream_unavailable() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path("/customers"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&app.mocks.customers)
        .await;
    let response = app
        .query(Some(&app.mocks.token("cus_1")), "{ viewer { name } }")
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.error_codes(), vec!["UPSTREAM_UNAVAILABLE"]);
    assert_eq!(
        response.json["errors"][0]["extensions"]["service"],
        "customers"
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_upstream_unavailable_not_a_hang() {
    let app = crate::spawn_app_with(|config| {
        config.upstreams.customers.url = "http://127.0.0.1:9".into();
    })
    .await;
    let response = app
        .query(Some(&app.mocks.token("cus_1")), "{ viewer { name } }")
        .await;
    assert_eq!(response.error_codes(), vec!["UPSTREAM_UNAVAILABLE"]);
}

#[tokio::test]
async fn a_customer_the_viewer_token_names_but_the_upstream_lacks_is_not_found() {
    let app = spawn_app().await;
    app.mocks
        .serve_customers(&[customer_json("cus_other")])
        .await;
    let response = app
        .query(Some(&app.mocks.token("cus_1")), "{ viewer { name } }")
        .await;
    assert_eq!(response.error_codes(), vec!["NOT_FOUND"]);
}

#[tokio::test]
async fn an_inventory_outage_nulls_only_the_stock_field_of_a_multi_root_query() {
    let app = spawn_app().await;
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    Mock::given(method("GET"))
        .and(path("/inventory"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&app.mocks.inventory)
        .await;
    let response = app
        .query(
            Some(&app.mocks.token("cus_1")),
            r#"{ viewer { name } stock(skus: ["SKU-1", "SKU-2"]) { available } }"#,
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json["data"]["viewer"]["name"], "Name of cus_1");
    assert_eq!(
        response.json["data"].get("stock"),
        Some(&serde_json::Value::Null)
    );
    assert_eq!(response.json["errors"][0]["path"], json!(["stock"]));
    assert!(
        response
            .error_codes()
            .iter()
            .all(|c| c == "UPSTREAM_UNAVAILABLE")
    );
}
