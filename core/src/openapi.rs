//! A BFF's checked-in OpenAPI 3.1 document, served as JSON at `GET /openapi.json`.
//!
//! The REST BFFs embed their document (`schema/<bff>.openapi.yaml`) and serve it with this;
//! their integration tests validate every response against the same document, so it cannot
//! drift from what the handlers send.

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG};

use crate::conditional::{if_none_match, strong_etag};

/// The document converted to JSON once at start-up, with its entity tag.
#[derive(Clone, Debug)]
pub struct OpenApiDocument {
    json: Bytes,
    etag: http::HeaderValue,
}

impl OpenApiDocument {
    /// Parses an embedded YAML document. It is part of the binary, so a failure is a build
    /// defect that the tests catch; `name` says which document in the error.
    pub fn from_yaml(name: &str, yaml: &str) -> Result<Self, crate::config::ConfigError> {
        Self::from_yaml_adjusted(name, yaml, |_| {})
    }

    /// [`from_yaml`](Self::from_yaml), then `adjust`ed before it is frozen: for what the
    /// configuration decides, such as page-size limits, so that the served document states
    /// what this process accepts.
    pub fn from_yaml_adjusted(
        name: &str,
        yaml: &str,
        adjust: impl FnOnce(&mut serde_json::Value),
    ) -> Result<Self, crate::config::ConfigError> {
        let mut value: serde_json::Value = serde_norway::from_str(yaml).map_err(|error| {
            crate::config::ConfigError::Malformed(format!("embedded {name}: {error}"))
        })?;
        adjust(&mut value);
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        let etag = strong_etag(&json);
        Ok(Self { json, etag })
    }

    /// `GET /openapi.json`: the document, or 304 when the client holds it.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        let cache_control = http::HeaderValue::from_static("public, max-age=300");
        if let Some(matched) = if_none_match(request, &self.etag) {
            return (
                http::StatusCode::NOT_MODIFIED,
                [(ETAG, matched), (CACHE_CONTROL, cache_control)],
            )
                .into_response();
        }
        (
            [
                (
                    CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                ),
                (ETAG, self.etag.clone()),
                (CACHE_CONTROL, cache_control),
            ],
            self.json.clone(),
        )
            .into_response()
    }
}

/// Sets `keyword` (e.g. `maximum`) of the schema of parameter `parameter` of operation
/// `method` (lower case) on `path` to `value`; a document without that parameter is left
/// as it is (the BFF's contract tests would notice).
pub fn set_parameter_schema(
    document: &mut serde_json::Value,
    path: &str,
    method: &str,
    parameter: &str,
    keyword: &str,
    value: serde_json::Value,
) {
    let parameters = document
        .get_mut("paths")
        .and_then(|paths| paths.get_mut(path))
        .and_then(|item| item.get_mut(method))
        .and_then(|operation| operation.get_mut("parameters"))
        .and_then(serde_json::Value::as_array_mut);
    let Some(parameters) = parameters else {
        return;
    };
    let schema = parameters
        .iter_mut()
        .find(|p| p.get("name").and_then(serde_json::Value::as_str) == Some(parameter))
        .and_then(|p| p.get_mut("schema"))
        .and_then(serde_json::Value::as_object_mut);
    if let Some(schema) = schema {
        schema.insert(keyword.to_owned(), value);
    }
}
