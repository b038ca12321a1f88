//! Validates responses against `schema/mobile.openapi.yaml` (OpenAPI 3.1, whose schemas are
//! JSON Schema 2020-12): the operation and status must be documented, the content type
//! must be one the document lists for that status, and the body must validate, formats
//! included. A 304 must have an empty body.

use std::sync::LazyLock;

use serde_json::{Value, json};
use switchyard_tests::TestResponse;

static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    serde_norway::from_str(mobile_bff::openapi::OPENAPI_YAML)
        .expect("schema/mobile.openapi.yaml is valid YAML")
});

/// The path template in the document that `path` (without query) instantiates.
fn template_for(path: &str) -> Option<&'static str> {
    let paths = DOCUMENT["paths"].as_object()?;
    let segments: Vec<&str> = path.split('/').collect();
    // Literal templates win over parameterised ones.
    let mut best: Option<(&'static str, usize)> = None;
    for template in paths.keys() {
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut literal = 0;
        let matches = parts.iter().zip(&segments).all(|(part, segment)| {
            if part.starts_with('{') && part.ends_with('}') {
                !segment.is_empty()
            } else {
                literal += 1;
                part == segment
            }
        });
        if matches && best.is_none_or(|(_, score)| literal > score) {
            best = Some((template.as_str(), literal));
        }
    }
    best.map(|(template, _)| template)
}

/// Follows a local `$ref` (`#/components/...`) if `value` is one.
fn resolve(value: &Value) -> &Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            DOCUMENT
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {reference}"))
        }
        None => value,
    }
}

/// Panics unless `response` to `method uri` is what the document promises.
pub(crate) fn assert_conforms(method: &str, uri: &str, response: &TestResponse) {
    let path = uri.split('?').next().unwrap_or(uri);
    let template =
        template_for(path).unwrap_or_else(|| panic!("{path} is not in the OpenAPI document"));
    let operation = &DOCUMENT["paths"][template][method];
    assert!(
        operation.is_object(),
        "{method} {template} is not in the OpenAPI document"
    );
    let status = response.status.as_str();
    let documented = operation["responses"]
        .get(status)
        .map(resolve)
        .unwrap_or_else(|| {
            panic!(
                "{method} {template} answered {status}, which the document does not list: {}",
                String::from_utf8_lossy(&response.body)
            )
        });
    if response.status == http::StatusCode::NOT_MODIFIED {
        assert!(response.body.is_empty(), "a 304 must have an empty body");
        return;
    }
    let media_type = response
        .header("content-type")
        .map(|ct| ct.split(';').next().unwrap_or(ct).trim().to_owned())
        .unwrap_or_default();
    let content = &documented["content"];
    if content.is_null() && response.body.is_empty() {
        return;
    }
    let schema = content[&media_type].get("schema").unwrap_or_else(|| {
        panic!("{method} {template} {status}: content type {media_type:?} is not documented")
    });
    let instance = if media_type.ends_with("json") {
        serde_json::from_slice::<Value>(&response.body)
            .unwrap_or_else(|e| panic!("{method} {template} {status}: body is not JSON ({e})"))
    } else {
        Value::String(String::from_utf8_lossy(&response.body).into_owned())
    };
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": DOCUMENT["components"],
        "allOf": [schema],
    });
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("{template} {status}: schema does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {uri} {status} does not match the OpenAPI document:\n  {}\nbody: {instance}",
        errors.join("\n  ")
    );
}

#[test]
fn the_document_is_openapi_3_1_and_every_reference_resolves() {
    assert_eq!(DOCUMENT["openapi"], "3.1.0");
    fn walk(value: &Value) {
        match value {
            Value::Object(map) => {
                if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                    resolve(&json!({ "$ref": reference }));
                }
                map.values().for_each(walk);
            }
            Value::Array(items) => items.iter().for_each(walk),
            _ => {}
        }
    }
    walk(&DOCUMENT);
    for template in [
        "/v2/dashboard",
        "/v2/orders",
        "/v2/orders/{id}",
        "/v1/dashboard",
        "/v1/orders",
    ] {
        assert!(DOCUMENT["paths"][template]["get"].is_object(), "{template}");
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
    assert_eq!(response.json, *DOCUMENT);
}
