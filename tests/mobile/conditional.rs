//! Strong ETags, `If-None-Match` → 304, `Cache-Control`, and gzip/brotli by
//! `Accept-Encoding` (with the coding reflected in the tag).

use std::io::Read;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::{MobileApp, orders_of, spawn_app, spawn_app_with};

async fn serve_dashboard(app: &MobileApp, orders: usize) {
    app.mocks
        .serve_customers(&[switchyard_tests::customer_json("cus_1")])
        .await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": orders_of("cus_1", orders, 2), "next_cursor": null})),
        )
        .mount(&app.mocks.orders)
        .await;
}

fn is_strong_tag(tag: &str) -> bool {
    tag.len() > 2 && tag.starts_with('"') && tag.ends_with('"') && !tag.starts_with("W/")
}

#[tokio::test]
async fn an_etag_round_trip_answers_304_with_an_empty_body() {
    let app = spawn_app().await;
    serve_dashboard(&app, 3).await;
    let token = app.token("cus_1");

    let first = app.get("/v2/dashboard", Some(&token)).await;
    assert_eq!(first.status, 200);
    let etag = first.header("etag").expect("an ETag").to_owned();
    assert!(is_strong_tag(&etag), "{etag}");
    assert_eq!(first.header("cache-control"), Some("private, no-cache"));

    let again = app
        .get_with("/v2/dashboard", Some(&token), &[("if-none-match", &etag)])
        .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));

    let other = app
        .get_with(
            "/v2/dashboard",
            Some(&token),
            &[("if-none-match", "\"stale\"")],
        )
        .await;
    assert_eq!(other.status, 200);
}

#[tokio::test]
async fn changed_data_gets_a_new_etag_and_a_full_response() {
    let app = spawn_app().await;
    serve_dashboard(&app, 3).await;
    let token = app.token("cus_1");
    let before = app.get("/v2/dashboard", Some(&token)).await;
    let etag = before.header("etag").expect("an ETag").to_owned();

    app.mocks.orders.reset().await;
    serve_dashboard(&app, 4).await;
    let after = app
        .get_with("/v2/dashboard", Some(&token), &[("if-none-match", &etag)])
        .await;

    assert_eq!(after.status, 200);
    assert_ne!(after.header("etag"), Some(etag.as_str()));
    assert_eq!(after.json["recentOrders"].as_array().map(Vec::len), Some(4));
}

fn decode(encoding: &str, body: &[u8]) -> Value {
    let mut text = Vec::new();
    match encoding {
        "br" => brotli::Decompressor::new(body, 4096)
            .read_to_end(&mut text)
            .expect("valid brotli"),
        "gzip" => flate2::read::GzDecoder::new(body)
            .read_to_end(&mut text)
            .expect("valid gzip"),
        other => panic!("unexpected encoding {other}"),
    };
    serde_json::from_slice(&text).expect("JSON inside")
}

#[tokio::test]
async fn brotli_and_gzip_follow_accept_encoding_and_keep_distinct_strong_tags() {
    let app = spawn_app().await;
    serve_dashboard(&app, 20).await;
    let token = app.token("cus_1");
    let uri = "/v2/orders?limit=20";
    let plain = app.get(uri, Some(&token)).await;
    let plain_tag = plain.header("etag").expect("ETag").to_owned();
    assert_eq!(plain.header("content-encoding"), None);
    assert!(
        plain.body.len() >= 1024,
        "a page of 20 orders ({} bytes) is over the default threshold",
        plain.body.len()
    );

    for (accept, coding) in [("br", "br"), ("gzip", "gzip"), ("gzip;q=0.5, br", "br")] {
        let request = http::Request::get(uri)
            .header("authorization", format!("Bearer {token}"))
            .header("accept-encoding", accept)
            .body(axum::body::Body::empty())
            .expect("request");
        let response = switchyard_tests::send(&app.router, request).await;
        assert_eq!(response.status, 200, "{accept}");
        assert_eq!(
            response.header("content-encoding"),
            Some(coding),
            "{accept}"
        );
        assert!(
            response
                .header("vary")
                .is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding")),
            "{accept}: Vary names Accept-Encoding"
        );
        assert!(
            response.body.len() < plain.body.len(),
            "{accept}: compressed is smaller"
        );
        let decoded = decode(coding, &response.body);
        assert_eq!(decoded["data"], plain.json["data"]);

        let tag = response.header("etag").expect("ETag").to_owned();
        assert!(is_strong_tag(&tag));
        assert_eq!(
            tag,
            format!("{}-{coding}\"", plain_tag.trim_end_matches('"'))
        );

        let revalidate = app
            .get_with(
                uri,
                Some(&token),
                &[("if-none-match", &tag), ("accept-encoding", accept)],
            )
            .await;
        assert_eq!(revalidate.status, 304, "{accept}");
        assert_eq!(revalidate.header("etag"), Some(tag.as_str()));
    }
}

#[tokio::test]
async fn bodies_under_the_threshold_are_sent_as_is() {
    let app = spawn_app().await;
    serve_dashboard(&app, 5).await;
    let token = app.token("cus_1");
    let dashboard = app
        .get_with(
            "/v2/dashboard",
            Some(&token),
            &[("accept-encoding", "gzip, br")],
        )
        .await;
    assert_eq!(dashboard.status, 200);
    assert!(
        dashboard.body.len() < 1024,
        "{} bytes",
        dashboard.body.len()
    );
    assert_eq!(dashboard.header("content-encoding"), None);
    assert_eq!(
        dashboard.json["recentOrders"].as_array().map(Vec::len),
        Some(5)
    );

    let request = http::Request::get("/v2/dashboard")
        .header("accept-encoding", "gzip")
        .body(axum::body::Body::empty())
        .expect("request");
    let problem = switchyard_tests::send(&app.router, request).await;
    assert_eq!(problem.status, 401);
    assert_eq!(problem.header("content-encoding"), None);
    assert_eq!(problem.json["code"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn problems_are_compressed_too_and_stay_valid() {
    let app = spawn_app_with(|config| config.api.compress_min_bytes = 0).await;
    let request = http::Request::get("/v2/dashboard")
        .header("accept-encoding", "gzip")
        .body(axum::body::Body::empty())
        .expect("request");
    let response = switchyard_tests::send(&app.router, request).await;
    assert_eq!(response.status, 401);
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    assert_eq!(decode("gzip", &response.body)["code"], "UNAUTHENTICATED");
}
