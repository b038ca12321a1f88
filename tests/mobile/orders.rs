//! `GET /v2/orders` (cursor pages) and `GET /v2/orders/{id}` (detail with stock).

use serde_json::{Value, json};
use switchyard_tests::{Token, order_json, stock_json};
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use crate::{orders_of, spawn_app};

async fn serve_pages(app: &crate::MobileApp) {
    // First page: two paid orders and a next cursor; second page (after "ord-x-1"): one.
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param_is_missing("cursor"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"data": orders_of("cus_1", 2, 1), "next_cursor": "ord-cus_1-1"}),
            ),
        )
        .mount(&app.mocks.orders)
        .await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param("cursor", "ord-cus_1-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": [order_json("ord-cus_1-2", "cus_1", &["a".to_owned()])], "next_cursor": null}),
        ))
        .mount(&app.mocks.orders)
        .await;
}

#[tokio::test]
async fn orders_page_through_opaque_cursors_with_the_filter_forwarded() {
    let app = spawn_app().await;
    serve_pages(&app).await;
    let token = app.token("cus_1");

    let first = app
        .get("/v2/orders?limit=2&status=shipped", Some(&token))
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.json["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(first.json["data"][0]["createdAt"], "2025-06-01T00:00:00Z");
    let pagination = &first.json["pagination"];
    assert_eq!(pagination["hasMore"], true);
    assert_eq!(pagination["limit"], 2);
    let cursor = pagination["cursor"].as_str().expect("a next cursor");
    assert!(!cursor.contains("ord"), "cursor {cursor} is not opaque");

    let second = app
        .get(
            &format!("/v2/orders?limit=2&status=shipped&cursor={cursor}"),
            Some(&token),
        )
        .await;
    assert_eq!(second.status, 200);
    assert_eq!(second.json["data"][0]["id"], "ord-cus_1-2");
    assert_eq!(
        second.json["pagination"],
        json!({"cursor": null, "hasMore": false, "limit": 2})
    );

    let received = app
        .mocks
        .orders
        .received_requests()
        .await
        .expect("recorded");
    let queries: Vec<String> = received
        .iter()
        .map(|r| r.url.query().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        queries,
        [
            "limit=2&customer_id=cus_1&status=shipped",
            "limit=2&customer_id=cus_1&status=shipped&cursor=ord-cus_1-1"
        ]
    );
}

#[tokio::test]
async fn garbage_tampered_and_misused_cursors_are_400s_without_an_upstream_call() {
    let app = spawn_app().await;
    serve_pages(&app).await;
    let token = app.token("cus_1");
    let issued = app.get("/v2/orders?limit=2", Some(&token)).await;
    let cursor = issued.json["pagination"]["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let mut tampered = cursor.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    app.mocks.orders.reset().await;

    for (query, message) in [
        ("cursor=not-a-cursor".to_owned(), "invalid cursor"),
        ("cursor=%00%FF".to_owned(), "invalid cursor"),
        (format!("cursor={tampered}"), "invalid cursor"),
        (format!("cursor={}", "A".repeat(5000)), "invalid cursor"),
        (
            format!("cursor={cursor}&status=paid"),
            "cursor was issued for a different status filter",
        ),
    ] {
        let response = app.get(&format!("/v2/orders?{query}"), Some(&token)).await;
        assert_eq!(response.status, 400, "{query}");
        assert_eq!(response.json["code"], "BAD_REQUEST", "{query}");
        assert_eq!(response.json["detail"], message, "{query}");
    }
    assert_eq!(
        app.mocks.orders.received_requests().await.map(|r| r.len()),
        Some(0)
    );
}

#[tokio::test]
async fn bad_parameters_are_400s_naming_the_parameter() {
    let app = spawn_app().await;
    let token = app.token("cus_1");
    for (query, fragment) in [
        ("limit=0", "limit must be an integer from 1 to 50"),
        ("limit=51", "limit must be an integer from 1 to 50"),
        ("limit=ten", "limit must be an integer from 1 to 50"),
        (
            "status=lost",
            "status must be one of pending, paid, shipped, delivered, cancelled",
        ),
        ("colour=blue", "unknown field `colour`"),
    ] {
        let response = app.get(&format!("/v2/orders?{query}"), Some(&token)).await;
        assert_eq!(response.status, 400, "{query}");
        assert_eq!(response.json["code"], "BAD_USER_INPUT", "{query}");
        let detail = response.json["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(fragment), "{query}: {detail}");
    }
    assert_eq!(
        app.mocks.orders.received_requests().await.map(|r| r.len()),
        Some(0)
    );
}

fn order_with(id: &str, customer: &str, skus: &[&str]) -> Value {
    let skus: Vec<String> = skus.iter().map(|s| (*s).to_owned()).collect();
    order_json(id, customer, &skus)
}

#[tokio::test]
async fn order_detail_bands_each_items_stock_from_one_inventory_call() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param("ids", "ord_1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [order_with(
                "ord_1",
                "cus_1",
                &["plenty", "few", "none", "unknown"],
            )]})),
        )
        .expect(1)
        .mount(&app.mocks.orders)
        .await;
    Mock::given(method("GET"))
        .and(path("/inventory"))
        .and(query_param("skus", "few,none,plenty,unknown"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            stock_json("plenty", 250), stock_json("few", 3), stock_json("none", 0)
        ]})))
        .expect(1)
        .mount(&app.mocks.inventory)
        .await;

    let response = app.get("/v2/orders/ord_1", Some(&app.token("cus_1"))).await;

    assert_eq!(response.status, 200);
    let items = &response.json["items"];
    let band = |i: usize| (items[i]["inStock"].clone(), items[i]["stockLevel"].clone());
    assert_eq!(band(0), (json!(true), json!("high")));
    assert_eq!(band(1), (json!(true), json!("low")));
    assert_eq!(band(2), (json!(false), json!("out")));
    assert_eq!(
        band(3),
        (json!(false), json!("out")),
        "an unknown SKU has no stock"
    );
    assert_eq!(items[0]["name"], "Product plenty");
    assert_eq!(items[3]["name"], json!(null));
    assert_eq!(items[0]["unitPrice"], "€1.00");
    assert_eq!(response.json["total"], "€4.00");
    assert_eq!(response.json["meta"]["degraded"], json!([]));
}

#[tokio::test]
async fn inventory_down_leaves_stock_null_and_marks_the_response_degraded() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param("ids", "ord_1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [order_with("ord_1", "cus_1", &["a"])]})),
        )
        .mount(&app.mocks.orders)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&app.mocks.inventory)
        .await;

    let response = app.get("/v2/orders/ord_1", Some(&app.token("cus_1"))).await;

    assert_eq!(response.status, 200);
    assert_eq!(response.json["items"][0]["inStock"], json!(null));
    assert_eq!(response.json["items"][0]["stockLevel"], json!(null));
    assert_eq!(response.json["meta"]["degraded"], json!(["inventory"]));
}

#[tokio::test]
async fn without_the_inventory_scope_stock_is_null_and_inventory_is_not_called() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param("ids", "ord_1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [order_with("ord_1", "cus_1", &["a"])]})),
        )
        .mount(&app.mocks.orders)
        .await;
    let token = Token::customer("cus_1")
        .scope("data:orders:read")
        .sign(&app.mocks.rsa);

    let response = app.get("/v2/orders/ord_1", Some(&token)).await;

    assert_eq!(response.status, 200);
    assert_eq!(response.json["items"][0]["stockLevel"], json!(null));
    assert_eq!(response.json["meta"]["degraded"], json!([]));
    assert_eq!(
        app.mocks
            .inventory
            .received_requests()
            .await
            .map(|r| r.len()),
        Some(0)
    );
}

#[tokio::test]
async fn another_customers_order_is_indistinguishable_from_an_unknown_one() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param("ids", "ord_theirs"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [order_with("ord_theirs", "cus_2", &["a"])]})),
        )
        .mount(&app.mocks.orders)
        .await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param("ids", "ord_missing"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&app.mocks.orders)
        .await;
    let token = app.token("cus_1");

    let theirs = app.get("/v2/orders/ord_theirs", Some(&token)).await;
    let missing = app.get("/v2/orders/ord_missing", Some(&token)).await;

    assert_eq!(theirs.status, 404);
    assert_eq!(missing.status, 404);
    let strip = |mut body: Value| {
        let object = body.as_object_mut().expect("problem object");
        object.remove("instance");
        object.remove("requestId");
        body
    };
    assert_eq!(strip(theirs.json.clone()), strip(missing.json.clone()));
    assert!(!theirs.body.windows(5).any(|w| w == b"cus_2"));
    assert_eq!(
        app.mocks
            .inventory
            .received_requests()
            .await
            .map(|r| r.len()),
        Some(0)
    );

    let admin = Token::customer("ops")
        .scope("data:orders:read data:admin")
        .sign(&app.mocks.rsa);
    assert_eq!(
        app.get("/v2/orders/ord_theirs", Some(&admin)).await.status,
        200
    );
}

#[tokio::test]
async fn an_empty_cursor_asks_for_the_first_page() {
    let app = spawn_app().await;
    serve_pages(&app).await;
    let response = app
        .get("/v2/orders?limit=2&cursor=", Some(&app.token("cus_1")))
        .await;
    assert_eq!(response.status, 200, "{}", response.json);
    assert_eq!(response.json["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(response.json["pagination"]["hasMore"], true);
}
