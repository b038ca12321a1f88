//! Admission control: past `server.max_in_flight` requests at once, the next is answered
//! 503 `OVERLOADED` at once, in the client's format; probes are always answered.

use std::time::Duration;

use axum::body::Body;
use http::Request;
use mobile_bff::MobileBff;
use switchyard_tests::{TestApp, send};
use tower::ServiceExt as _;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::{bearer, get};

#[tokio::test]
async fn past_max_in_flight_a_request_is_shed_at_once_and_probes_still_answer() {
    let app = TestApp::<MobileBff>::spawn_with(|config| {
        config.server.max_in_flight = 4;
        config.ratelimit.enabled = false;
    })
    .await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"data": [], "next_cursor": null}))
                // Slow, but within the mobile BFF's 800 ms deadline.
                .set_delay(Duration::from_millis(400)),
        )
        .mount(&app.mocks.orders)
        .await;
    let token = bearer(&app.mocks, "cus_1", "pro");
    let slow: Vec<_> = (0..4)
        .map(|_| {
            let router = app.router.clone();
            let request = get("/v2/orders", &token);
            tokio::spawn(async move { router.oneshot(request).await })
        })
        .collect();
    // Wait until all four are in the upstream, so they hold their admission.
    for _ in 0..200 {
        let seen = app
            .mocks
            .orders
            .received_requests()
            .await
            .map_or(0, |r| r.len());
        if seen == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let shed = send(&app.router, get("/v2/orders", &token)).await;
    // Answered at once: not queued behind the four, which are all still in flight.
    assert!(slow.iter().all(|task| !task.is_finished()));
    assert_eq!(shed.status, 503);
    assert_eq!(shed.json["code"], "OVERLOADED");
    assert_eq!(shed.json["instance"], "/v2/orders");
    assert_eq!(shed.header("retry-after"), Some("1"));
    let probe = Request::get("/healthz")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&app.router, probe).await.status, 200);
    assert_eq!(
        app.mocks.orders.received_requests().await.map(|r| r.len()),
        Some(4),
        "the shed request cost nothing upstream"
    );
    for request in slow {
        let response = request.await.expect("joined").expect("infallible");
        assert_eq!(response.status(), 200);
    }
    // Capacity is back once they are done.
    assert_eq!(
        send(&app.router, get("/v2/orders", &token)).await.status,
        200
    );
}

#[tokio::test]
async fn a_shed_graphql_request_is_a_graphql_error() {
    let app = TestApp::<web_bff::WebBff>::spawn_with(|config| {
        config.server.max_in_flight = 1;
        config.ratelimit.enabled = false;
    })
    .await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(switchyard_tests::customer_json("cus_1"))
                .set_delay(Duration::from_millis(1_000)),
        )
        .mount(&app.mocks.customers)
        .await;
    let token = app.mocks.token("cus_1");
    let body = serde_json::json!({ "query": "{ viewer { name } }" });
    let router = app.router.clone();
    let first = switchyard_tests::graphql_post(Some(&token), &body);
    let busy = tokio::spawn(async move { router.oneshot(first).await });
    for _ in 0..200 {
        if app
            .mocks
            .customers
            .received_requests()
            .await
            .map_or(0, |r| r.len())
            > 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let shed = send(
        &app.router,
        switchyard_tests::graphql_post(Some(&token), &body),
    )
    .await;
    assert_eq!(shed.status, 503);
    assert_eq!(shed.error_codes(), ["OVERLOADED"]);
    assert_eq!(shed.header("retry-after"), Some("1"));
    let _ = busy.await;
}
