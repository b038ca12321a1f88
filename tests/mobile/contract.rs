//! The mobile BFF's responses against `schema/mobile.openapi.yaml` (the checker is the
//! support crate's [`OpenApiContract`]).

use std::sync::LazyLock;

use serde_json::{Value, json};
use switchyard_tests::{OpenApiContract, TestResponse};

static DOCUMENT: LazyLock<OpenApiContract> = LazyLock::new(|| {
    OpenApiContract::from_yaml("schema/mobile.openapi.yaml", mobile_bff::OPENAPI_YAML)
});

/// Panics unless `response` to `method uri` is what the document promises.
pub(crate) fn assert_conforms(method: &str, uri: &str, response: &TestResponse) {
    DOCUMENT.assert_conforms(method, uri, response);
}

#[test]
fn the_document_is_openapi_3_1_and_every_reference_resolves() {
    assert_eq!(DOCUMENT.document["openapi"], "3.1.0");
    DOCUMENT.assert_references_resolve();
    for template in [
        "/v2/dashboard",
        "/v2/orders",
        "/v2/orders/{id}",
        "/v1/dashboard",
        "/v1/orders",
    ] {
        assert!(
            DOCUMENT.document["paths"][template]["get"].is_object(),
            "{template}"
        );
    }
}

#[test]
fn the_validator_rejects_a_body_that_breaks_the_document() {
    // Guards the guard: an extra member, a wrong type and a missing member all fail.
    let bad = |body: Value| {
        let response = TestResponse {
            status: http::StatusCode::OK,
            headers: [(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            )]
            .into_iter()
            .collect(),
            json: body.clone(),
            body: body.to_string().into_bytes(),
        };
        std::panic::catch_unwind(|| assert_conforms("get", "/v2/orders", &response)).is_err()
    };
    let page = |data: Value| json!({"data": data, "pagination": {"cursor": null, "hasMore": false, "limit": 20}});
    let row = json!({"id": "o1", "status": "paid", "total": "€1.00", "itemCount": 1,
                     "createdAt": "2025-01-01T00:00:00Z"});
    assert!(!bad(page(json!([row.clone()]))), "a valid page must pass");
    let mut extra = row.clone();
    extra["secret"] = json!(1);
    assert!(bad(page(json!([extra]))));
    let mut wrong = row.clone();
    wrong["itemCount"] = json!("1");
    assert!(bad(page(json!([wrong]))));
    let mut missing = row.clone();
    missing.as_object_mut().expect("object").remove("total");
    assert!(bad(page(json!([missing]))));
    let mut bad_date = row;
    bad_date["createdAt"] = json!("yesterday");
    assert!(bad(page(json!([bad_date]))));
}

#[tokio::test]
async fn openapi_json_serves_the_checked_in_document() {
    let app = crate::spawn_app().await;
    let response = app.get("/openapi.json", None).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json, DOCUMENT.document);
}

/// The served document states the configured page sizes, so that what it calls valid is
/// what this process accepts.
#[tokio::test]
async fn the_served_document_carries_the_configured_page_sizes() {
    let app = crate::spawn_app_with(|config| {
        config.api.max_page_size = 30;
        config.api.default_page_size = 10;
    })
    .await;
    let document = app.get("/openapi.json", None).await.json;
    let parameter = |path: &str, name: &str| {
        document["paths"][path]["get"]["parameters"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == name))
            .map(|p| p["schema"].clone())
            .unwrap_or_default()
    };
    assert_eq!(parameter("/v2/orders", "limit")["maximum"], 30);
    assert_eq!(parameter("/v2/orders", "limit")["default"], 10);
    assert_eq!(parameter("/v1/orders", "per_page")["maximum"], 30);
    assert_eq!(parameter("/v1/orders", "page")["maximum"], 33);
    let token = app.token("cus_1");
    for (query, status) in [("page=33&per_page=30", 200), ("page=34&per_page=1", 400)] {
        app.mocks.serve_orders(&[]).await;
        let response = app.get(&format!("/v1/orders?{query}"), Some(&token)).await;
        assert_eq!(response.status, status, "{query}: {}", response.json);
    }
    let response = app.get("/v2/orders?limit=31", Some(&token)).await;
    assert_eq!(response.status, 400);
}
