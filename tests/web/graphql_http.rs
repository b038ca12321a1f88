//! GraphQL over HTTP: methods, media types, body limits, request ids, health routes.

use axum::body::Body;
use http::Request;
use serde_json::json;
use switchyard_tests::customer_json;

use crate::{spawn_app, spawn_app_with};

fn get(uri: &str, token: &str, accept: &str) -> Request<Body> {
    Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("accept", accept)
        .body(Body::empty())
        .expect("request")
}

#[tokio::test]
async fn queries_run_over_get() {
    let app = spawn_app().await;
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    let response = app
        .send(get(
            "/graphql?query=%7B%20viewer%20%7B%20name%20%7D%20%7D",
            &app.mocks.token("cus_1"),
            "application/graphql-response+json",
        ))
        .await;
    assert_eq!(response.status, 200, "{}", response.json);
    assert_eq!(
        response.header("content-type"),
        Some("application/graphql-response+json")
    );
    assert_eq!(response.json["data"]["viewer"]["name"], "Name of cus_1");
}

#[tokio::test]
async fn request_errors_are_400_with_graphql_response_json_and_200_with_legacy_json() {
    let app = spawn_app().await;
    let token = app.mocks.token("cus_1");
    let modern = app
        .send(get(
            "/graphql?query=%7B%20nope%20%7D",
            &token,
            "application/graphql-response+json",
        ))
        .await;
    assert_eq!(modern.status, 400);
    assert_eq!(modern.error_codes(), vec!["BAD_REQUEST"]);

    let legacy = app
        .send(get(
            "/graphql?query=%7B%20nope%20%7D",
            &token,
            "application/json",
        ))
        .await;
    assert_eq!(legacy.status, 200);
    assert_eq!(legacy.header("content-type"), Some("application/json"));
    assert_eq!(legacy.error_codes(), vec!["BAD_REQUEST"]);

    let syntax = app
        .send(get(
            "/graphql?query=%7B%20viewer%20%7B",
            &token,
            "application/graphql-response+json",
        ))
        .await;
    assert_eq!(syntax.status, 400);
    assert_eq!(syntax.error_codes(), vec!["BAD_REQUEST"]);
}

#[tokio::test]
async fn post_bodies_must_be_json_well_formed_and_within_the_limit() {
    let app = spawn_app_with(|config| config.server.body_limit_bytes = 1024).await;
    let token = app.mocks.token("cus_1");
    let request = |content_type: &str, body: String| {
        Request::post("/graphql")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", content_type)
            .body(Body::from(body))
            .expect("request")
    };
    let wrong_type = app.send(request("text/plain", "{}".into())).await;
    assert_eq!(wrong_type.status, 415);
    assert_eq!(wrong_type.error_codes(), vec!["UNSUPPORTED_MEDIA_TYPE"]);

    let malformed = app
        .send(request("application/json", "{\"query\": ".into()))
        .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.error_codes(), vec!["BAD_REQUEST"]);

    let huge = json!({"query": format!("{{ viewer {{ id }} }} #{}", "x".repeat(4096))}).to_string();
    let too_large = app.send(request("application/json", huge)).await;
    assert_eq!(too_large.status, 413);
    assert_eq!(too_large.error_codes(), vec!["PAYLOAD_TOO_LARGE"]);
    assert_eq!(app.upstream_calls().await, 0);
}

#[tokio::test]
async fn batches_return_one_response_per_operation() {
    let app = spawn_app().await;
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    let batch = json!([{"query": "{ viewer { name } }"}, {"query": "{ viewer { id } }"}]);
    let response = app.post(Some(&app.mocks.token("cus_1")), &batch).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json[0]["data"]["viewer"]["name"], "Name of cus_1");
    assert_eq!(response.json[1]["data"]["viewer"]["id"], "cus_1");
}

#[tokio::test]
async fn browsers_get_graphiql_without_a_token() {
    let app = spawn_app().await;
    let request = Request::get("/graphql")
        .header("accept", "text/html,application/xhtml+xml")
        .body(Body::empty())
        .expect("request");
    let response = app.send(request).await;
    assert_eq!(response.status, 200);
    assert!(String::from_utf8_lossy(&response.body).contains("GraphiQL"));
}

/// Every file the page loads from the CDN is pinned to a version and carries an integrity
/// hash; the policy allows scripts only from the CDN and the page's own inline script, by
/// its hash, and no framing.
#[tokio::test]
async fn graphiql_pins_its_cdn_files_by_hash_under_a_content_security_policy() {
    use base64::Engine as _;
    let app = spawn_app().await;
    let request = Request::get("/graphql")
        .header("accept", "text/html")
        .body(Body::empty())
        .expect("request");
    let response = app.send(request).await;
    let page = String::from_utf8_lossy(&response.body).into_owned();
    let external: Vec<&str> = page
        .lines()
        .filter(|line| line.contains("https://"))
        .collect();
    assert_eq!(external.len(), 4, "{page}");
    for line in external {
        assert!(
            line.contains(r#"integrity="sha384-"#),
            "no integrity: {line}"
        );
        assert!(line.contains(r#"crossorigin="anonymous""#), "{line}");
        let version = line
            .split('@')
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .expect("a version");
        assert_eq!(version.split('.').count(), 3, "not pinned: {line}");
        assert!(
            version.split('.').all(|n| n.parse::<u32>().is_ok()),
            "{line}"
        );
    }
    let policy = response
        .header("content-security-policy")
        .expect("a policy");
    for directive in [
        "default-src 'none'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} missing: {policy}");
    }
    let inline = page
        .split("<script>")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .expect("the boot script");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, inline.as_bytes());
    let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    let scripts = policy
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .expect("script-src");
    assert_eq!(
        scripts,
        format!("script-src 'sha256-{hash}' https://unpkg.com"),
        "only the CDN and the boot script"
    );
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn request_ids_are_generated_or_echoed_and_bad_ones_replaced() {
    let app = spawn_app().await;
    let health = |id: Option<&str>| {
        let mut builder = Request::get("/healthz");
        if let Some(id) = id {
            builder = builder.header("x-request-id", id);
        }
        builder.body(Body::empty()).expect("request")
    };
    let generated = app.send(health(None)).await;
    assert!(
        generated
            .header("x-request-id")
            .is_some_and(|id| !id.is_empty())
    );
    let echoed = app.send(health(Some("client-id-42"))).await;
    assert_eq!(echoed.header("x-request-id"), Some("client-id-42"));
    let hostile = app.send(health(Some("a b\"c"))).await;
    let replaced = hostile.header("x-request-id").unwrap_or_default();
    assert!(!replaced.is_empty() && replaced != "a b\"c");
}

#[tokio::test]
async fn readiness_reports_loaded_signing_keys() {
    let app = spawn_app().await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json["checks"]["signing_keys"], "ok");
    assert_eq!(
        app.upstream_calls().await,
        0,
        "readiness never calls upstreams"
    );
}

#[tokio::test]
async fn readiness_is_503_while_no_signing_keys_can_be_loaded() {
    let app = spawn_app_with(|config| {
        config.auth.jwks_url = Some("http://127.0.0.1:9/.well-known/jwks.json".into());
    })
    .await;
    let response = app.get("/readyz").await;
    assert_eq!(response.status, 503);
    assert_eq!(response.json["checks"]["signing_keys"], "missing");
    let alive = app.get("/healthz").await;
    assert_eq!(alive.status, 200);
}

#[tokio::test]
async fn a_ready_bff_does_not_call_the_issuer_on_probes() {
    let app = spawn_app().await;
    let before = app
        .mocks
        .issuer
        .received_requests()
        .await
        .map_or(0, |r| r.len());
    for _ in 0..10 {
        let ready = app.get("/readyz").await;
        assert_eq!(ready.status, 200);
    }
    let after = app
        .mocks
        .issuer
        .received_requests()
        .await
        .map_or(0, |r| r.len());
    assert_eq!(after, before);
}

#[tokio::test]
async fn an_unready_bff_retries_the_issuer_at_most_once_per_cooldown() {
    // An issuer that answers 404 to everything: keys never load.
    let issuer = wiremock::MockServer::start().await;
    let app = spawn_app_with(|config| {
        config.auth.jwks_url = Some(format!("{}/.well-known/jwks.json", issuer.uri()));
        config.auth.jwks_refresh_cooldown_secs = 3600;
    })
    .await;
    for _ in 0..10 {
        let ready = app.get("/readyz").await;
        assert_eq!(ready.status, 503);
    }
    // The start-up attempt only: no probe retried within the cooldown.
    assert_eq!(issuer.received_requests().await.map(|r| r.len()), Some(1));
}
