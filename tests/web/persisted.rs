//! Persisted queries: Apollo's APQ (by hash over POST and GET, registration only of
//! documents that validate, shared through Redis across replicas), `off`, and `trusted`
//! mode with the checked-in manifest, which must match `schema/operations/`.

use std::path::PathBuf;

use axum::body::Body;
use http::Request;
use serde_json::{Value, json};
use switchyard_tests::{RedisServer, TestApp, customer_json};
use web_bff::config::PersistedQueryMode;
use web_bff::manifest::Manifest;
use web_bff::{WebBff, WebConfig};

use crate::{WebApp, spawn_app, spawn_app_with};

const VIEWER: &str = "query Viewer { viewer { name } }";

fn sha256_hex(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn persisted(hash: &str) -> Value {
    json!({"persistedQuery": {"version": 1, "sha256Hash": hash}})
}

/// `GET /graphql` with only the hash (and `variables`), as Apollo's clients send it.
fn get_by_hash(hash: &str, variables: &Value, token: &str) -> Request<Body> {
    let url = reqwest::Url::parse_with_params(
        "http://bff/graphql",
        &[
            ("extensions", persisted(hash).to_string()),
            ("variables", variables.to_string()),
        ],
    )
    .expect("url");
    Request::get(format!("/graphql?{}", url.query().unwrap_or("")))
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "application/graphql-response+json")
        .body(Body::empty())
        .expect("request")
}

fn code(response: &switchyard_tests::TestResponse) -> String {
    response.json["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn an_unknown_hash_is_not_found_then_registered_with_its_text_and_served_by_hash_over_get() {
    let app = spawn_app().await;
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    let token = app.mocks.token("cus_1");
    let hash = sha256_hex(VIEWER);

    let unknown = app
        .post(Some(&token), &json!({"extensions": persisted(&hash)}))
        .await;
    assert_eq!(unknown.status, 400, "{}", unknown.json);
    assert_eq!(code(&unknown), "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(
        unknown.json["errors"][0]["message"],
        "PersistedQueryNotFound"
    );
    assert_eq!(app.upstream_calls().await, 0);

    let registered = app
        .post(
            Some(&token),
            &json!({"query": VIEWER, "extensions": persisted(&hash)}),
        )
        .await;
    assert_eq!(registered.status, 200, "{}", registered.json);

    let by_hash = app.send(get_by_hash(&hash, &json!({}), &token)).await;
    assert_eq!(by_hash.status, 200, "{}", by_hash.json);
    assert_eq!(by_hash.json["data"], registered.json["data"]);
    assert_eq!(by_hash.json["data"]["viewer"]["name"], "Name of cus_1");
}

#[tokio::test]
async fn variables_travel_with_the_hash() {
    let app = spawn_app().await;
    app.mocks.serve_customers(&[customer_json("cus_7")]).await;
    let token = app.mocks.token("cus_7");
    let query = "query One($id: ID!) { customer(id: $id) { id name } }";
    let hash = sha256_hex(query);
    let variables = json!({"id": "cus_7"});
    let first = app
        .post(
            Some(&token),
            &json!({"query": query, "variables": variables, "extensions": persisted(&hash)}),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.json);
    let again = app.send(get_by_hash(&hash, &variables, &token)).await;
    assert_eq!(
        again.json["data"]["customer"]["id"], "cus_7",
        "{}",
        again.json
    );
}

#[tokio::test]
async fn a_wrong_hash_a_bad_extension_and_an_invalid_document_register_nothing() {
    let app = spawn_app().await;
    let token = app.mocks.token("cus_1");

    let mismatch = app
        .post(
            Some(&token),
            &json!({"query": VIEWER, "extensions": persisted(&sha256_hex("{ other }"))}),
        )
        .await;
    assert_eq!(code(&mismatch), "BAD_REQUEST");
    assert!(
        mismatch.json["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not the SHA-256 of the query")),
        "{}",
        mismatch.json
    );

    let version_two = app
        .post(
            Some(&token),
            &json!({"extensions": {"persistedQuery": {"version": 2, "sha256Hash": sha256_hex(VIEWER)}}}),
        )
        .await;
    assert_eq!(code(&version_two), "BAD_REQUEST", "{}", version_two.json);

    let invalid = "query Bad { viewer { nope } }";
    let hash = sha256_hex(invalid);
    let refused = app
        .post(
            Some(&token),
            &json!({"query": invalid, "extensions": persisted(&hash)}),
        )
        .await;
    assert_eq!(refused.status, 400);
    let later = app
        .post(Some(&token), &json!({"extensions": persisted(&hash)}))
        .await;
    assert_eq!(code(&later), "PERSISTED_QUERY_NOT_FOUND", "not registered");
    assert_eq!(app.upstream_calls().await, 0);
}

#[tokio::test]
async fn with_persisted_queries_off_a_hash_alone_is_not_supported() {
    let app = spawn_app_with(|config| {
        config.graphql.persisted_queries = PersistedQueryMode::Off;
    })
    .await;
    let token = app.mocks.token("cus_1");
    let response = app
        .post(
            Some(&token),
            &json!({"extensions": persisted(&sha256_hex(VIEWER))}),
        )
        .await;
    assert_eq!(code(&response), "BAD_REQUEST");
    assert_eq!(
        response.json["errors"][0]["message"],
        "PersistedQueryNotSupported"
    );
}

fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

async fn trusted_app() -> WebApp {
    spawn_app_with(|config| {
        config.graphql.persisted_queries = PersistedQueryMode::Trusted;
        config.graphql.trusted_manifest = Some(repo_path("schema/web.operations.json"));
    })
    .await
}

#[tokio::test]
async fn trusted_mode_runs_manifest_operations_by_hash_or_exact_text_and_refuses_anything_else() {
    let app = trusted_app().await;
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    app.mocks.serve_orders(&[]).await;
    let token = app.mocks.token("cus_1");
    let manifest = Manifest::read(&repo_path("schema/web.operations.json")).expect("manifest");
    let dashboard = manifest
        .operations
        .iter()
        .find(|operation| operation.name == "Dashboard")
        .expect("the dashboard operation");

    let by_hash = app
        .send(get_by_hash(&dashboard.id, &json!({}), &token))
        .await;
    assert_eq!(by_hash.status, 200, "{}", by_hash.json);
    assert_eq!(by_hash.json["data"]["viewer"]["name"], "Name of cus_1");
    let by_text = app
        .post(Some(&token), &json!({"query": dashboard.body}))
        .await;
    assert_eq!(by_text.json["data"], by_hash.json["data"]);

    let calls = app.upstream_calls().await;
    let freeform = app.query(Some(&token), VIEWER).await;
    assert_eq!(freeform.status, 400);
    assert_eq!(code(&freeform), "BAD_REQUEST");
    assert!(
        freeform.json["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("trusted manifest")),
        "{}",
        freeform.json
    );
    let unknown = app
        .post(
            Some(&token),
            &json!({"extensions": persisted(&sha256_hex(VIEWER))}),
        )
        .await;
    assert_eq!(code(&unknown), "PERSISTED_QUERY_NOT_FOUND");
    // Registration is not a way in.
    let register = app
        .post(
            Some(&token),
            &json!({"query": VIEWER, "extensions": persisted(&sha256_hex(VIEWER))}),
        )
        .await;
    assert_eq!(code(&register), "BAD_REQUEST");
    assert_eq!(
        app.upstream_calls().await,
        calls,
        "refusals cost the upstreams nothing"
    );
}

#[tokio::test]
async fn trusted_mode_holds_on_the_stream_transport_too() {
    let app = trusted_app().await;
    let token = app.mocks.token("cus_1");
    let request = Request::post("/graphql/stream")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "text/event-stream")
        .body(Body::from(
            json!({"query": "subscription { orderUpdated { id } }"}).to_string(),
        ))
        .expect("request");
    let response = app.send(request).await;
    assert_eq!(
        response.status,
        400,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
}

#[tokio::test]
async fn a_manifest_whose_ids_are_not_their_bodies_hashes_stops_the_bff_at_start() {
    let dir = switchyard_tests::ScratchDir::new("manifest");
    let tampered = json!({
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [{"id": sha256_hex(VIEWER), "name": "Viewer", "type": "query", "body": "{ customer(id: \"x\") { email } }"}]
    });
    let path = dir.write("tampered.json", &tampered.to_string());
    let mut config = WebConfig::default();
    config.graphql.persisted_queries = PersistedQueryMode::Trusted;
    config.graphql.trusted_manifest = Some(path);
    let error = switchyard_core::bff::App::<WebBff>::new(&config)
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains("graphql.trusted_manifest"),
        "{error}"
    );
    assert!(error.to_string().contains("SHA-256"), "{error}");
}

/// `schema/web.operations.json` is generated from `schema/operations/`, each operation
/// checked against the schema; any drift fails here.
#[tokio::test]
async fn the_checked_in_manifest_matches_the_operations_and_they_validate() {
    let generated = Manifest::from_operations_dir(&repo_path("schema/operations"))
        .await
        .expect("every operation validates against the schema");
    assert!(generated.operations.len() >= 4);
    let path = repo_path("schema/web.operations.json");
    if std::env::var_os("UPDATE_MANIFEST").is_some() {
        std::fs::write(&path, generated.to_json()).expect("writable");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated.to_json(),
        "schema/web.operations.json differs from schema/operations/.\n\
         Regenerate it with:\n  \
         cargo run -p web-bff -- --print-manifest schema/operations > schema/web.operations.json"
    );
}

#[tokio::test]
async fn the_manifest_generator_names_the_file_of_an_operation_that_does_not_validate() {
    let dir = switchyard_tests::ScratchDir::new("operations");
    dir.write("Bad.graphql", "query Bad { viewer { nope } }");
    let error = Manifest::from_operations_dir(dir.path())
        .await
        .expect_err("refused");
    assert!(
        error.contains("Bad.graphql") && error.contains("nope"),
        "{error}"
    );
}

async fn two_replicas(redis_url: &str) -> (WebApp, WebApp) {
    let (first, second) = TestApp::<WebBff>::two_replicas_sharing(redis_url).await;
    (WebApp(first), WebApp(second))
}

#[tokio::test]
async fn a_query_registered_through_one_replica_is_served_by_another_and_redis_down_only_means_resend()
 {
    let Some(mut redis) = RedisServer::start("apq across replicas") else {
        return;
    };
    let (first, second) = two_replicas(&redis.url()).await;
    first.mocks.serve_customers(&[customer_json("cus_1")]).await;
    let token = first.mocks.token("cus_1");
    let hash = sha256_hex(VIEWER);

    let registered = first
        .post(
            Some(&token),
            &json!({"query": VIEWER, "extensions": persisted(&hash)}),
        )
        .await;
    assert_eq!(registered.status, 200, "{}", registered.json);
    let stored = redis
        .cli(&["GET", &format!("sy:apq:{hash}")])
        .expect("redis-cli");
    assert_eq!(stored.trim(), VIEWER);
    let served = second.send(get_by_hash(&hash, &json!({}), &token)).await;
    assert_eq!(served.status, 200, "{}", served.json);
    assert_eq!(served.json["data"], registered.json["data"]);

    // Redis gone: a hash the replica holds is still served, an unknown one is "not
    // found" (never a 5xx), and the text still works.
    redis.kill();
    let held = second.send(get_by_hash(&hash, &json!({}), &token)).await;
    assert_eq!(held.status, 200, "{}", held.json);
    let other = "query Name { viewer { name tier } }";
    let unknown = second
        .post(
            Some(&token),
            &json!({"extensions": persisted(&sha256_hex(other))}),
        )
        .await;
    assert_eq!(
        code(&unknown),
        "PERSISTED_QUERY_NOT_FOUND",
        "{}",
        unknown.json
    );
    let resent = second
        .post(
            Some(&token),
            &json!({"query": other, "extensions": persisted(&sha256_hex(other))}),
        )
        .await;
    assert_eq!(resent.status, 200, "{}", resent.json);
}
