//! Credentials: partner JWTs and API keys through core's `Authenticator`, and every
//! rejection a problem that costs the upstreams nothing.

use switchyard_tests::stock_json;

use crate::{API_KEY, spawn_app};

#[tokio::test]
async fn an_api_key_authenticates_as_its_configured_consumer_with_its_scopes() {
    let app = spawn_app().await;
    app.mocks.serve_stock(&[stock_json("SKU-1", 4)]).await;
    let response = app
        .get(
            "/partner/v1/stock?skus=SKU-1",
            Some(&format!("ApiKey {API_KEY}")),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.json);
    assert_eq!(response.json["data"][0]["available"], 4);
    // The scheme name is case-insensitive, as for Bearer.
    let response = app
        .get(
            "/partner/v1/stock?skus=SKU-1",
            Some(&format!("apikey {API_KEY}")),
        )
        .await;
    assert_eq!(response.status, 200);
    // The key grants data:inventory:read only, so orders are forbidden.
    let response = app
        .get("/partner/v1/orders", Some(&format!("ApiKey {API_KEY}")))
        .await;
    assert_eq!(response.status, 403);
    assert_eq!(response.json["code"], "FORBIDDEN");
}

#[tokio::test]
async fn wrong_missing_and_malformed_credentials_are_401_problems_without_upstream_calls() {
    let app = spawn_app().await;
    let wrong_key = format!("ApiKey {API_KEY}x");
    let huge_key = format!("ApiKey {}", "k".repeat(20_000));
    let cases: [(Option<&str>, &str); 5] = [
        (None, "Bearer"),
        (Some(&wrong_key), "ApiKey"),
        (Some(&huge_key), "ApiKey"),
        (Some("ApiKey "), "Bearer"),
        (Some("Bearer not.a.jwt"), "Bearer error=\"invalid_token\""),
    ];
    for (authorization, challenge) in cases {
        let response = app.get("/partner/v1/stock?skus=SKU-1", authorization).await;
        assert_eq!(response.status, 401, "{authorization:?}");
        assert_eq!(response.json["code"], "UNAUTHENTICATED");
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(response.header("www-authenticate"), Some(challenge));
        assert!(
            !response
                .body
                .windows(API_KEY.len())
                .any(|w| w == API_KEY.as_bytes()),
            "the key is never echoed"
        );
    }
    assert_eq!(app.upstream_calls().await, 0);
}

#[tokio::test]
async fn other_bffs_refuse_api_keys_when_none_are_configured() {
    // The same scheme against a BFF without keys is no credential at all.
    let app = crate::spawn_app_with(|config| config.auth.api_keys.clear()).await;
    let response = app
        .get(
            "/partner/v1/stock?skus=SKU-1",
            Some(&format!("ApiKey {API_KEY}")),
        )
        .await;
    assert_eq!(response.status, 401);
    assert_eq!(app.upstream_calls().await, 0);
}

#[tokio::test]
async fn a_partner_jwt_without_a_needed_scope_is_a_403_problem_without_upstream_calls() {
    let app = spawn_app().await;
    let no_admin = app.bearer("partner-acme", "data:orders:read data:customers:read");
    let response = app.get("/partner/v1/orders", Some(&no_admin)).await;
    assert_eq!(response.status, 403);
    assert_eq!(response.json["code"], "FORBIDDEN");
    assert_eq!(
        response.header("www-authenticate"),
        Some(r#"Bearer error="insufficient_scope""#)
    );
    assert!(
        response.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("data:admin")),
        "{}",
        response.json
    );
    let no_inventory = app.bearer("partner-acme", "data:orders:read data:admin");
    let response = app
        .get("/partner/v1/stock?skus=SKU-1", Some(&no_inventory))
        .await;
    assert_eq!(response.status, 403);
    assert_eq!(app.upstream_calls().await, 0);
}
