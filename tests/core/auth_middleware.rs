//! The core auth middleware and `Principal` extractor, rendered by a BFF's own responder.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::Request;
use serde_json::json;
use switchyard_core::ErrorCode;
use switchyard_core::auth::{self, AuthState, Authenticator, Principal, Scope};
use switchyard_core::response::ErrorResponder;
use switchyard_tests::{MockUpstreams, Token, send};

/// A problem+json-style responder, standing in for a REST BFF's.
#[derive(Clone)]
struct ProblemResponder;

impl ErrorResponder for ProblemResponder {
    fn respond(&self, code: ErrorCode, message: &str) -> Response {
        (
            code.status(),
            Json(json!({"type": code.as_str(), "detail": message})),
        )
            .into_response()
    }
}

async fn whoami(principal: Principal) -> Response {
    match principal.require(Scope::OrdersRead) {
        Ok(()) => {
            Json(json!({"sub": principal.subject, "tier": principal.tier.as_str()})).into_response()
        }
        Err(error) => auth::reject(&ProblemResponder, &error),
    }
}

async fn router(up: &MockUpstreams) -> Router {
    let authenticator = Authenticator::new(&up.auth_config()).expect("valid auth config");
    authenticator.prime().await.expect("JWKS served");
    Router::new()
        .route("/whoami", get(whoami))
        .layer(axum::middleware::from_fn_with_state(
            AuthState::new(authenticator, ProblemResponder),
            auth::middleware::<ProblemResponder>,
        ))
}

fn request(token: Option<&str>) -> Request<Body> {
    let mut builder = Request::get("/whoami");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(Body::empty()).expect("request")
}

#[tokio::test]
async fn the_middleware_hands_handlers_a_principal() {
    let up = MockUpstreams::start().await;
    let app = router(&up).await;
    let response = send(&app, request(Some(&up.token("cus_9")))).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json, json!({"sub": "cus_9", "tier": "pro"}));
}

#[tokio::test]
async fn failures_are_rendered_in_the_bffs_format_with_a_challenge() {
    let up = MockUpstreams::start().await;
    let app = router(&up).await;
    let missing = send(&app, request(None)).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json["type"], "UNAUTHENTICATED");
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));

    let expired = Token {
        exp_in: -600,
        nbf_in: -1200,
        ..Token::customer("cus_9")
    }
    .sign(&up.ed);
    let response = send(&app, request(Some(&expired))).await;
    assert_eq!(response.status, 401);
    assert_eq!(response.json["detail"], "invalid token: token expired");
    assert_eq!(
        response.header("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );

    let no_scope = Token::customer("cus_9")
        .scope("data:customers:read")
        .sign(&up.ec);
    let response = send(&app, request(Some(&no_scope))).await;
    assert_eq!(response.status, 403);
    assert_eq!(response.json["type"], "FORBIDDEN");
}

#[tokio::test]
async fn verified_tokens_are_remembered_and_failures_are_not() {
    let up = MockUpstreams::start().await;
    let authenticator = Authenticator::new(&up.auth_config()).expect("valid auth config");
    authenticator.prime().await.expect("JWKS served");
    let good = up.token("cus_9");
    assert!(!authenticator.remembers(&good), "not verified yet");
    let principal = authenticator.verify(&good).await.expect("valid token");
    assert!(authenticator.remembers(&good));
    // Answered from memory: the same principal.
    assert_eq!(authenticator.verify(&good).await, Ok(principal));

    let expired = Token {
        exp_in: -600,
        nbf_in: -1200,
        ..Token::customer("cus_9")
    }
    .sign(&up.ed);
    for _ in 0..2 {
        assert!(authenticator.verify(&expired).await.is_err());
        assert!(!authenticator.remembers(&expired));
    }

    let mut off = up.auth_config();
    off.token_cache_secs = 0;
    let uncached = Authenticator::new(&off).expect("valid auth config");
    uncached.prime().await.expect("JWKS served");
    assert!(uncached.verify(&good).await.is_ok());
    assert!(!uncached.remembers(&good), "caching is off");
}
