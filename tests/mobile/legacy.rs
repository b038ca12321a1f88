//! API v1: legacy shapes, numbered pages over upstream cursors, and the retirement headers
//! (`Deprecation`, `Sunset`, `Link: rel="successor-version"`) on every response.

use serde_json::json;
use time::OffsetDateTime;
use wiremock::matchers::{method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use crate::{orders_of, spawn_app, spawn_app_with};

fn parse_http_date(value: &str) -> OffsetDateTime {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(value, &format)
        .unwrap_or_else(|e| panic!("{value:?} is not an IMF-fixdate: {e}"))
        .assume_utc()
}

#[tokio::test]
async fn v1_dashboard_keeps_the_legacy_shape_and_announces_its_retirement() {
    let app = spawn_app_with(|config| {
        config.v1.deprecated_on = time::macros::date!(2026 - 09 - 01);
        config.v1.sunset_on = time::macros::date!(2027 - 06 - 30);
    })
    .await;
    app.mocks
        .serve_customers(&[switchyard_tests::customer_json("cus_1")])
        .await;
    app.mocks.serve_orders(&orders_of("cus_1", 2, 1)).await;

    let response = app.get("/v1/dashboard", Some(&app.token("cus_1"))).await;

    assert_eq!(response.status, 200);
    assert_eq!(
        response.json["customer"]["avatar_url"],
        "https://img.test/cus_1.png"
    );
    assert_eq!(response.json["orders"][0]["total_cents"], 100);
    let deprecation = response.header("deprecation").expect("Deprecation");
    let deprecated_at: i64 = deprecation
        .strip_prefix('@')
        .and_then(|s| s.parse().ok())
        .expect("@<unix seconds>");
    assert_eq!(
        deprecated_at,
        time::macros::datetime!(2026-09-01 0:00 UTC).unix_timestamp()
    );
    let sunset = parse_http_date(response.header("sunset").expect("Sunset"));
    assert_eq!(sunset, time::macros::datetime!(2027-06-30 0:00 UTC));
    assert_eq!(
        response.header("link"),
        Some("</v2/dashboard>; rel=\"successor-version\"")
    );
}

#[tokio::test]
async fn v1_errors_carry_the_retirement_headers_too() {
    let app = spawn_app().await;
    let response = app.get("/v1/orders", None).await;
    assert_eq!(response.status, 401);
    assert!(response.header("deprecation").is_some());
    assert!(response.header("sunset").is_some());
    assert_eq!(
        response.header("link"),
        Some("</v2/orders>; rel=\"successor-version\"")
    );
    let v2 = app.get("/v2/orders", None).await;
    assert!(v2.header("deprecation").is_none(), "v2 is not deprecated");
}

#[tokio::test]
async fn a_deep_v1_page_walks_the_upstream_cursor_pages() {
    let app = spawn_app().await;
    // Page 3 of 40 is orders 80..120: the first upstream page of 100 and 20 of the next.
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param_is_missing("cursor"))
        .and(query_param("limit", "100"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": orders_of("cus_1", 100, 1), "next_cursor": "c1"})),
        )
        .expect(1)
        .mount(&app.mocks.orders)
        .await;
    let second: Vec<_> = orders_of("cus_1", 120, 1).into_iter().skip(100).collect();
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param("cursor", "c1"))
        .and(query_param("limit", "20"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": second, "next_cursor": "c2"})),
        )
        .expect(1)
        .mount(&app.mocks.orders)
        .await;

    let response = app
        .get("/v1/orders?page=3&per_page=40", Some(&app.token("cus_1")))
        .await;

    assert_eq!(response.status, 200);
    let orders = response.json["orders"].as_array().expect("orders");
    assert_eq!(orders.len(), 40);
    assert_eq!(orders[0]["id"], "ord-cus_1-80");
    assert_eq!(orders[39]["id"], "ord-cus_1-119");
    assert_eq!(response.json["has_next"], true);
    assert_eq!(response.json["page"], 3);
}

#[tokio::test]
async fn v1_pages_past_the_last_one_are_refused_whatever_the_page_size() {
    let app = spawn_app().await;
    // 20 pages of the largest page size (50) reach the thousandth order.
    for query in ["page=21&per_page=50", "page=21&per_page=5"] {
        let response = app
            .get(&format!("/v1/orders?{query}"), Some(&app.token("cus_1")))
            .await;
        assert_eq!(response.status, 400, "{query}");
        assert_eq!(response.json["code"], "BAD_USER_INPUT");
        assert!(
            response.json["detail"]
                .as_str()
                .is_some_and(|d| d.contains("from 1 to 20")),
            "{}",
            response.json
        );
    }
    assert_eq!(
        app.mocks.orders.received_requests().await.map(|r| r.len()),
        Some(0)
    );
}

#[tokio::test]
async fn after_its_sunset_v1_is_gone_in_problem_form_and_costs_the_upstreams_nothing() {
    let app = spawn_app_with(|config| {
        config.v1.deprecated_on = time::macros::date!(2025 - 01 - 01);
        config.v1.sunset_on = time::macros::date!(2026 - 01 - 01);
    })
    .await;
    let token = app.token("cus_1");
    for (uri, successor) in [
        (
            "/v1/dashboard",
            "</v2/dashboard>; rel=\"successor-version\"",
        ),
        (
            "/v1/orders?page=2",
            "</v2/orders>; rel=\"successor-version\"",
        ),
    ] {
        let response = app.get(uri, Some(&token)).await;
        assert_eq!(response.status, 410, "{uri}");
        assert_eq!(response.json["code"], "GONE");
        assert_eq!(
            response.json["detail"],
            format!(
                "this API version was retired on 2026-01-01; use {}",
                uri.split('?').next().unwrap_or(uri).replace("/v1/", "/v2/")
            )
        );
        assert_eq!(response.header("link"), Some(successor));
        let sunset = parse_http_date(response.header("sunset").expect("Sunset"));
        assert_eq!(sunset, time::macros::datetime!(2026-01-01 0:00 UTC));
    }
    assert_eq!(app.upstream_calls().await, 0);
    let v2 = app.get("/v2/orders", None).await;
    assert_eq!(v2.status, 401, "v2 is still served");
}
