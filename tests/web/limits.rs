//! Query limits: rejected before execution, so they cost the upstreams nothing.

use axum::body::Body;
use http::Request;
use serde_json::json;

use crate::{spawn_app, spawn_app_with};

async fn assert_rejected_for_free(query: &str, code: &str, why: &str) {
    let app = spawn_app().await;
    let response = app.query(Some(&app.mocks.token("cus_1")), query).await;
    assert_eq!(response.status, 400, "{why}: {}", response.json);
    assert_eq!(
        response.error_codes(),
        vec![code.to_owned()],
        "{why}: {}",
        response.json
    );
    assert!(
        response.json.get("data").is_none(),
        "{why}: request errors carry no data"
    );
    assert_eq!(
        app.upstream_calls().await,
        0,
        "{why}: upstreams were called"
    );
}

#[tokio::test]
async fn an_over_deep_query_is_rejected_with_zero_upstream_calls() {
    let mut query = "id".to_owned();
    for _ in 0..7 {
        query = format!("orders {{ nodes {{ customer {{ {query} }} }} }}");
    }
    assert_rejected_for_free(
        &format!("{{ viewer {{ {query} }} }}"),
        "QUERY_TOO_COMPLEX",
        "depth",
    )
    .await;
}

#[tokio::test]
async fn an_over_complex_query_is_rejected_with_zero_upstream_calls() {
    let query = "{ orders(first: 100) { nodes { id status createdAt updatedAt itemCount total { minorUnits currency formatted } items { sku quantity stock { name available } } } } }";
    assert_rejected_for_free(query, "QUERY_TOO_COMPLEX", "complexity").await;
}

#[tokio::test]
async fn too_many_aliases_are_rejected_with_zero_upstream_calls() {
    let aliases: Vec<String> = (0..31).map(|n| format!("a{n}: viewer {{ id }}")).collect();
    assert_rejected_for_free(
        &format!("{{ {} }}", aliases.join(" ")),
        "QUERY_TOO_COMPLEX",
        "aliases",
    )
    .await;
}

#[tokio::test]
async fn an_oversized_batch_is_rejected_with_zero_upstream_calls() {
    let app = spawn_app().await;
    let batch: Vec<_> = (0..11)
        .map(|_| json!({"query": "{ viewer { id } }"}))
        .collect();
    let response = app
        .post(Some(&app.mocks.token("cus_1")), &json!(batch))
        .await;
    assert_eq!(response.status, 400);
    assert_eq!(response.error_codes(), vec!["QUERY_TOO_COMPLEX"]);
    assert_eq!(app.upstream_calls().await, 0);
}

#[tokio::test]
async fn a_page_size_over_the_maximum_is_bad_user_input_not_clamped() {
    let app = spawn_app().await;
    let response = app
        .query(
            Some(&app.mocks.token("cus_1")),
            "{ orders(first: 101) { nodes { id } } }",
        )
        .await;
    assert_eq!(
        response.error_codes(),
        vec!["BAD_USER_INPUT"],
        "{}",
        response.json
    );
    assert!(
        response.json["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("100")
    );
    assert_eq!(app.upstream_calls().await, 0);
}

#[tokio::test]
async fn a_tampered_cursor_is_bad_request() {
    let app = spawn_app().await;
    let response = app
        .query(
            Some(&app.mocks.token("cus_1")),
            r#"{ orders(after: "bm90LWEtY3Vyc29y!") { nodes { id } } }"#,
        )
        .await;
    assert_eq!(
        response.error_codes(),
        vec!["BAD_REQUEST"],
        "{}",
        response.json
    );
    assert_eq!(app.upstream_calls().await, 0);
}

#[tokio::test]
async fn a_mutation_over_get_is_refused_with_405() {
    let app = spawn_app().await;
    let request = Request::get("/graphql?query=mutation%20%7B%20x%20%7D")
        .header(
            "authorization",
            format!("Bearer {}", app.mocks.token("cus_1")),
        )
        .body(Body::empty())
        .expect("request");
    let response = app.send(request).await;
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("POST"));
    assert_eq!(app.upstream_calls().await, 0);
}

#[tokio::test]
async fn introspection_can_be_switched_off() {
    let on = spawn_app().await;
    let response = on
        .query(
            Some(&on.mocks.token("cus_1")),
            "{ __schema { queryType { name } } }",
        )
        .await;
    assert_eq!(
        response.json["data"]["__schema"]["queryType"]["name"],
        "Query"
    );

    let off = spawn_app_with(|config| config.graphql.introspection = Some(false)).await;
    let response = off
        .query(
            Some(&off.mocks.token("cus_1")),
            "{ __schema { queryType { name } } }",
        )
        .await;
    // async-graphql answers introspection fields with null when it is off.
    assert!(
        response.json["data"]["__schema"].is_null(),
        "{}",
        response.json
    );
}

#[tokio::test]
async fn an_exponential_fragment_document_is_refused_at_once_while_others_are_served() {
    // A kilobyte: 30 fragments each spreading the next twice, 2^30 fields once expanded.
    let mut query = String::from("{ ...F0 }");
    for n in 0..30 {
        query.push_str(&format!(
            " fragment F{n} on Query {{ ...F{} ...F{} }}",
            n + 1,
            n + 1
        ));
    }
    query.push_str(" fragment F30 on Query { viewer { __typename } }");
    assert!(query.len() < 2_048);
    let app = spawn_app().await;
    app.mocks
        .serve_customers(&[switchyard_tests::customer_json("cus_1")])
        .await;
    let token = app.mocks.token("cus_1");
    let (bomb, normal) = tokio::join!(
        app.query(Some(&token), &query),
        app.query(Some(&token), "{ viewer { name } }")
    );
    assert_eq!(bomb.status, 400, "{}", bomb.json);
    assert_eq!(bomb.error_codes(), ["QUERY_TOO_COMPLEX"]);
    assert!(
        bomb.json["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("fields once its fragments are expanded")),
        "{}",
        bomb.json
    );
    assert_eq!(normal.status, 200, "{}", normal.json);
    assert_eq!(normal.json["data"]["viewer"]["name"], "Name of cus_1");
    assert_eq!(
        app.mocks
            .customers
            .received_requests()
            .await
            .map(|r| r.len()),
        Some(1),
        "only the normal request reached an upstream"
    );
}

#[tokio::test]
async fn a_field_duplicated_five_hundred_times_is_refused_for_free() {
    let fields = "__typename ".repeat(500);
    assert_rejected_for_free(
        &format!("{{ {fields} }}"),
        "QUERY_TOO_COMPLEX",
        "duplicates",
    )
    .await;
}

#[tokio::test]
async fn a_deep_introspection_cycle_is_refused_for_free() {
    let mut selection = "name".to_owned();
    for _ in 0..20 {
        selection = format!("fields {{ type {{ {selection} }} }}");
    }
    assert_rejected_for_free(
        &format!("{{ __schema {{ types {{ {selection} }} }} }}"),
        "QUERY_TOO_COMPLEX",
        "introspection",
    )
    .await;
}

#[tokio::test]
async fn too_many_directives_tokens_or_brackets_are_query_too_complex_for_free() {
    let directives = "@include(if: true) ".repeat(11);
    assert_rejected_for_free(
        &format!("{{ viewer {directives} {{ id }} }}"),
        "QUERY_TOO_COMPLEX",
        "directives",
    )
    .await;
    let tokens = "id ".repeat(16_000);
    assert_rejected_for_free(
        &format!("{{ viewer {{ {tokens} }} }}"),
        "QUERY_TOO_COMPLEX",
        "tokens",
    )
    .await;
    let deep = format!("{}{}", "{ viewer ".repeat(5_000), "}".repeat(5_000));
    assert_rejected_for_free(&deep, "QUERY_TOO_COMPLEX", "nesting").await;
}
