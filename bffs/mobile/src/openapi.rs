//! The checked-in OpenAPI 3.1 document (`schema/mobile.openapi.yaml`), served as JSON at
//! `GET /openapi.json`. The integration tests validate every response body against this
//! same document, so it cannot drift from what the handlers send.

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG};
use switchyard_core::conditional::{if_none_match, strong_etag};

/// The document as checked in.
pub const OPENAPI_YAML: &str = include_str!("../../../schema/mobile.openapi.yaml");

/// The document converted to JSON once at start-up, with its entity tag.
#[derive(Clone, Debug)]
pub struct OpenApiDocument {
    json: Bytes,
    etag: http::HeaderValue,
}

impl OpenApiDocument {
    /// Parses the embedded YAML; it is part of the binary, so failure is a build defect
    /// that the tests catch.
    pub fn embedded() -> Result<Self, serde_norway::Error> {
        let value: serde_json::Value = serde_norway::from_str(OPENAPI_YAML)?;
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        let etag = strong_etag(&json);
        Ok(Self { json, etag })
    }

    /// `GET /openapi.json`.
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
