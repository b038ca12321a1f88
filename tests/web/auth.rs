//! Bearer tokens: every way a token can be wrong is a 401, a missing scope a 403.

use axum::body::Body;
use http::Request;
use serde_json::json;
use switchyard_tests::{TestApp, TestKey, Token, customer_json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::{WebApp, spawn_app};

const QUERY: &str = "{ viewer { name } }";

async fn assert_unauthenticated(app: &WebApp, token: Option<&str>, why: &str) {
    let response = app.query(token, QUERY).await;
    assert_eq!(response.status, 401, "{why}: {}", response.json);
    assert_eq!(response.error_codes(), vec!["UNAUTHENTICATED"], "{why}");
    let challenge = response.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer"), "{why}: {challenge}");
    if let Some(token) = token {
        let body = String::from_utf8_lossy(&response.body);
        assert!(!body.contains(token), "{why}: the token is echoed");
    }
    assert_eq!(
        app.upstream_calls().await,
        0,
        "{why}: upstreams were called"
    );
}

#[tokio::test]
async fn tokens_signed_with_each_allowed_algorithm_are_accepted() {
    let app = spawn_app().await;
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    for key in [&app.mocks.rsa, &app.mocks.ec, &app.mocks.ed] {
        let response = app
            .query(Some(&Token::customer("cus_1").sign(key)), QUERY)
            .await;
        assert_eq!(response.status, 200, "{:?}: {}", key.alg, response.json);
        assert_eq!(response.json["data"]["viewer"]["name"], "Name of cus_1");
    }
}

#[tokio::test]
async fn missing_and_garbage_tokens_are_401() {
    let app = spawn_app().await;
    let missing = app.query(None, QUERY).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    assert_unauthenticated(&app, Some("garbage"), "garbage").await;
    assert_unauthenticated(&app, Some("a.b.c"), "three garbage segments").await;
}

#[tokio::test]
async fn expired_not_yet_valid_and_misaddressed_tokens_are_401() {
    let app = spawn_app().await;
    let rsa = &app.mocks.rsa;
    let base = Token::customer("cus_1");
    let cases = [
        (
            Token {
                exp_in: -3600,
                nbf_in: -7200,
                ..base.clone()
            },
            "expired",
        ),
        (
            Token {
                nbf_in: 3600,
                ..base.clone()
            },
            "nbf in the future",
        ),
        (
            Token {
                aud: "someone-else".into(),
                ..base.clone()
            },
            "wrong aud",
        ),
        (
            Token {
                iss: "https://evil.test".into(),
                ..base.clone()
            },
            "wrong iss",
        ),
    ];
    for (token, why) in cases {
        assert_unauthenticated(&app, Some(&token.sign(rsa)), why).await;
    }
}

#[tokio::test]
async fn alg_none_and_hmac_with_the_public_key_never_pass() {
    let app = spawn_app().await;
    let token = Token::customer("cus_1");
    assert_unauthenticated(&app, Some(&token.unsigned()), "alg none").await;
    assert_unauthenticated(
        &app,
        Some(&token.hs256_with_public_key()),
        "HS256 with the public key",
    )
    .await;
}

#[tokio::test]
async fn a_token_signed_by_an_unpublished_key_is_401() {
    let app = spawn_app().await;
    // Right kid, wrong key: the signature does not verify.
    let forged = Token::customer("cus_1").sign(&TestKey::ec_other());
    assert_unauthenticated(&app, Some(&forged), "forged signature").await;
    // Unknown kid.
    let unknown = Token {
        kid: Some("no-such-key".into()),
        ..Token::customer("cus_1")
    };
    assert_unauthenticated(&app, Some(&unknown.sign(&app.mocks.rsa)), "unknown kid").await;
}

#[tokio::test]
async fn a_token_without_any_read_scope_is_403() {
    let app = spawn_app().await;
    let device = Token::customer("device-7").scope("data:inventory:write");
    let response = app.query(Some(&device.sign(&app.mocks.rsa)), QUERY).await;
    assert_eq!(response.status, 403, "{}", response.json);
    assert_eq!(response.error_codes(), vec!["FORBIDDEN"]);
    assert!(
        response
            .header("www-authenticate")
            .unwrap_or_default()
            .contains("insufficient_scope")
    );
    assert_eq!(app.upstream_calls().await, 0);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_query_string_tokens_are_ignored() {
    let app = spawn_app().await;
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    let token = app.mocks.token("cus_1");
    let lower = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("authorization", format!("bearer {token}"))
        .body(Body::from(json!({"query": QUERY}).to_string()))
        .expect("request");
    assert_eq!(app.send(lower).await.status, 200);

    let in_query = Request::get(format!(
        "/graphql?query=%7Bviewer%7Bname%7D%7D&access_token={token}"
    ))
    .body(Body::empty())
    .expect("request");
    assert_eq!(app.send(in_query).await.status, 401);
}

#[tokio::test]
async fn unknown_kids_fetch_the_jwks_at_most_once_per_cooldown() {
    let up = switchyard_tests::MockUpstreams::start().await;
    let mut config = web_bff::WebConfig {
        upstreams: up.upstreams_config(),
        auth: up.auth_config(),
        ..Default::default()
    };
    config.auth.jwks_refresh_cooldown_secs = 3600;
    // Not primed: the first token triggers the first fetch.
    let app = WebApp(TestApp::unprimed(&config, up));
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    for n in 0..25 {
        let token = Token {
            kid: Some(format!("rotated-{n}")),
            ..Token::customer("cus_1")
        };
        let response = app.query(Some(&token.sign(&app.mocks.rsa)), QUERY).await;
        assert_eq!(response.status, 401);
    }
    let fetches = app
        .mocks
        .issuer
        .received_requests()
        .await
        .map_or(0, |r| r.len());
    assert_eq!(
        fetches, 1,
        "25 unknown kids within one cooldown cost one fetch"
    );
    // That one fetch loaded the published keys.
    let response = app.query(Some(&app.mocks.token("cus_1")), QUERY).await;
    assert_eq!(response.status, 200, "{}", response.json);
}

/// An app whose issuer publishes the keys `first` picks at its first JWKS fetch and those
/// `then` picks at every later one; unknown kids refetch without a cooldown. The app is
/// primed (one fetch made). Returns the app and the issuer, to count fetches.
async fn app_with_rotating_keys(
    first: fn(&switchyard_tests::MockUpstreams) -> Vec<&TestKey>,
    then: fn(&switchyard_tests::MockUpstreams) -> Vec<&TestKey>,
) -> (WebApp, wiremock::MockServer) {
    use switchyard_tests::jwks;
    let up = switchyard_tests::MockUpstreams::start().await;
    let issuer = wiremock::MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(&first(&up))))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&issuer)
        .await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks(&then(&up))))
        .mount(&issuer)
        .await;
    let mut config = web_bff::WebConfig {
        upstreams: up.upstreams_config(),
        auth: up.auth_config(),
        ..Default::default()
    };
    config.auth.jwks_url = Some(format!("{}/.well-known/jwks.json", issuer.uri()));
    config.auth.jwks_refresh_cooldown_secs = 0;
    let app = WebApp(TestApp::with_config(&config, up).await);
    (app, issuer)
}

#[tokio::test]
async fn a_rotated_in_key_is_picked_up_by_the_refetch() {
    // The issuer first publishes only the RSA key, then RSA and EC.
    let (app, issuer) =
        app_with_rotating_keys(|up| vec![&up.rsa], |up| vec![&up.rsa, &up.ec]).await;
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    let response = app
        .query(Some(&Token::customer("cus_1").sign(&app.mocks.ec)), QUERY)
        .await;
    assert_eq!(response.status, 200, "{}", response.json);
    assert_eq!(issuer.received_requests().await.map(|r| r.len()), Some(2));
}

#[tokio::test]
async fn a_withdrawn_key_stops_tokens_it_signed_even_after_they_were_accepted() {
    // The issuer first publishes the RSA and EC keys, then withdraws the RSA key.
    let (app, _issuer) =
        app_with_rotating_keys(|up| vec![&up.rsa, &up.ec], |up| vec![&up.ec]).await;
    assert!(
        web_bff::WebConfig::default().auth.token_cache_secs > 0,
        "verified tokens are remembered"
    );
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    let signed_by_rsa = Token::customer("cus_1").sign(&app.mocks.rsa);
    for _ in 0..2 {
        let response = app.query(Some(&signed_by_rsa), QUERY).await;
        assert_eq!(response.status, 200, "{}", response.json);
    }

    // A token naming a new kid makes the BFF fetch the keys again: the RSA key is gone.
    let new_kid = Token {
        kid: Some("next".into()),
        ..Token::customer("cus_1")
    };
    let response = app.query(Some(&new_kid.sign(&app.mocks.ec)), QUERY).await;
    assert_eq!(response.status, 401);

    let response = app.query(Some(&signed_by_rsa), QUERY).await;
    assert_eq!(
        response.status, 401,
        "a remembered token is checked again against the new keys: {}",
        response.json
    );
}
