//! Auth and error format: 401/403 as problem+json, request ids in problems, opaque 5xx,
//! unknown routes.

use switchyard_tests::Token;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::spawn_app;

#[tokio::test]
async fn missing_bad_and_expired_tokens_are_401_problems_without_upstream_calls() {
    let app = spawn_app().await;
    let expired = Token {
        exp_in: -3600,
        ..Token::customer("cus_1")
    }
    .sign(&app.mocks.rsa);
    let forged = Token::customer("cus_1").hs256_with_public_key();
    for token in [
        None,
        Some("garbage"),
        Some(expired.as_str()),
        Some(forged.as_str()),
    ] {
        let response = app.get("/v2/dashboard", token).await;
        assert_eq!(response.status, 401, "{token:?}");
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(
            response.json["type"],
            "urn:switchyard:error:UNAUTHENTICATED"
        );
        assert!(
            response
                .header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer"))
        );
        if let Some(token) = token {
            let body = String::from_utf8_lossy(&response.body);
            assert!(!body.contains(token), "the token is echoed");
        }
    }
    for server in [
        &app.mocks.customers,
        &app.mocks.orders,
        &app.mocks.inventory,
    ] {
        assert_eq!(server.received_requests().await.map(|r| r.len()), Some(0));
    }
}

#[tokio::test]
async fn oversized_wrongly_typed_critical_and_future_tokens_are_refused_before_any_upstream_call() {
    let app = spawn_app().await;
    let key = &app.mocks.rsa;
    let customer = Token::customer("cus_1");
    let padded = Token {
        sub: "x".repeat(9 * 1024),
        ..customer.clone()
    }
    .sign(key);
    let cases = [
        (padded, "invalid token: token too large"),
        (
            customer.sign_with_header(key, |h| h.typ = Some("id_token+jwt".into())),
            "invalid token: token type not accepted",
        ),
        (
            customer.sign_with_header(key, |h| h.crit = Some(vec!["exp".into()])),
            "invalid token: critical header parameters not supported",
        ),
        (
            Token {
                iat_in: 3_600,
                nbf_in: -10,
                ..customer.clone()
            }
            .sign(key),
            "invalid token: token issued in the future",
        ),
    ];
    for (token, detail) in &cases {
        let response = app.get("/v2/orders", Some(token)).await;
        assert_eq!(response.status, 401, "{detail}");
        assert_eq!(response.json["detail"], *detail);
    }
    // `at+jwt` (RFC 9068 access tokens), and no `typ` at all, are accepted.
    app.mocks.serve_orders(&[]).await;
    for token in [
        customer.sign_with_header(key, |h| h.typ = Some("at+jwt".into())),
        customer.sign_with_header(key, |h| h.typ = None),
    ] {
        assert_eq!(app.get("/v2/orders", Some(&token)).await.status, 200);
    }
    let calls = app.mocks.orders.received_requests().await.map(|r| r.len());
    assert_eq!(
        calls,
        Some(2),
        "only the two accepted tokens reached the orders service"
    );
}

#[tokio::test]
async fn a_token_without_the_needed_scope_is_a_403_problem() {
    let app = spawn_app().await;
    let token = Token::customer("cus_1")
        .scope("data:orders:read")
        .sign(&app.mocks.rsa);
    let response = app.get("/v2/dashboard", Some(&token)).await;
    assert_eq!(response.status, 403);
    assert_eq!(response.json["code"], "FORBIDDEN");
    assert_eq!(
        response.json["detail"],
        "insufficient scope: requires data:customers:read"
    );
    assert_eq!(
        response.header("www-authenticate"),
        Some(r#"Bearer error="insufficient_scope""#)
    );
}

#[tokio::test]
async fn problems_carry_the_request_id_and_the_path() {
    let app = spawn_app().await;
    let response = app
        .get_with("/v2/orders/ord_1", None, &[("x-request-id", "req-123")])
        .await;
    assert_eq!(response.json["requestId"], "req-123");
    assert_eq!(response.header("x-request-id"), Some("req-123"));
    assert_eq!(response.json["instance"], "/v2/orders/ord_1");
    assert_eq!(response.json["status"], 401);
    assert_eq!(response.json["title"], "Unauthorized");
}

#[tokio::test]
async fn an_upstream_5xx_says_nothing_internal() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param("ids", "ord_1"))
        .respond_with(
            ResponseTemplate::new(500).set_body_string("db at 10.0.0.7:5432 refused: password"),
        )
        .mount(&app.mocks.orders)
        .await;
    let response = app.get("/v2/orders/ord_1", Some(&app.token("cus_1"))).await;
    assert_eq!(response.status, 503);
    assert_eq!(response.json["detail"], "the orders service is unavailable");
    assert_eq!(response.json["service"], "orders");
    let body = String::from_utf8_lossy(&response.body);
    for secret in ["10.0.0.7", "5432", "password", "127.0.0.1"] {
        assert!(!body.contains(secret), "{secret} leaked: {body}");
    }
}

#[tokio::test]
async fn unknown_routes_are_404_problems() {
    let app = spawn_app().await;
    let request = http::Request::get("/v3/everything")
        .body(axum::body::Body::empty())
        .expect("request");
    let response = switchyard_tests::send(&app.router, request).await;
    assert_eq!(response.status, 404);
    assert_eq!(
        response.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(response.json["code"], "NOT_FOUND");
}
