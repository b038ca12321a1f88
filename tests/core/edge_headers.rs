//! Headers a client could pose as someone (or as Switchyard) with are dropped at the edge:
//! no handler sees them, so nothing can forward or trust them.

use axum::Router;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::routing::get;
use http::Request;
use switchyard_core::config::ServerConfig;
use switchyard_core::metrics::Metrics;
use switchyard_core::problem::ProblemResponder;
use switchyard_core::server::{Observer, with_common_layers};

#[tokio::test]
async fn internal_and_configured_headers_never_reach_a_handler() {
    let echo = Router::new().route(
        "/echo",
        get(|headers: HeaderMap| async move {
            let mut names: Vec<String> = headers.keys().map(|n| n.as_str().to_owned()).collect();
            names.sort();
            names.join(",")
        }),
    );
    let config = ServerConfig {
        strip_request_headers: vec!["X-Proxy-Secret".to_owned()],
        ..ServerConfig::default()
    };
    let observer = Observer {
        bff: "test-bff",
        metrics: Metrics::new("test-bff", 10),
        access_log: false,
        spans: None,
        sample_ratio: 1.0,
    };
    let app = with_common_layers(echo, &config, None, observer, ProblemResponder);
    let request = Request::get("/echo")
        .header("x-consumer-id", "someone-else")
        .header("X-Switchyard-Deadline-Ms", "999999")
        .header("x-internal-user", "root")
        .header("x-proxy-secret", "hunter2")
        .header("x-forwarded-for", "203.0.113.9")
        .header("accept", "text/plain")
        .body(Body::empty())
        .expect("request");
    let response = switchyard_tests::send(&app, request).await;
    assert_eq!(response.status, 200);
    let seen = String::from_utf8(response.body.to_vec()).expect("utf-8");
    assert_eq!(seen, "accept,x-forwarded-for,x-request-id", "{seen}");
}
