//! The web BFF's one place where core errors become GraphQL errors and HTTP responses.
//!
//! Every GraphQL error carries `extensions.code` (the core `ErrorCode`) and, for upstream
//! failures, `extensions.service`. Errors raised outside GraphQL execution (auth, body
//! limits, malformed requests) are rendered as a GraphQL response with no `data`.

use async_graphql::ErrorExtensions;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use switchyard_core::ErrorCode;
use switchyard_core::auth::AuthError;
use switchyard_core::response::ErrorResponder;
use switchyard_core::upstream::UpstreamError;

/// Media type of GraphQL-over-HTTP responses.
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// A GraphQL error with `extensions.code`.
pub fn graphql_error(code: ErrorCode, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, ext| ext.set("code", code.as_str()))
}

/// A GraphQL error for a failed upstream call, naming the service.
pub fn upstream_error(error: &UpstreamError) -> async_graphql::Error {
    error.report();
    let service = error.service().as_str();
    graphql_error(error.code(), error.public_message())
        .extend_with(|_, ext| ext.set("service", service))
}

/// A GraphQL error for a missing scope or a hidden entity.
pub fn auth_error(error: &AuthError) -> async_graphql::Error {
    graphql_error(error.code(), error.to_string())
}

/// Renders errors outside execution as `{"errors":[{"message","extensions":{"code"}}]}`.
#[derive(Clone, Copy, Debug, Default)]
pub struct GraphqlErrorResponder;

impl ErrorResponder for GraphqlErrorResponder {
    fn respond(&self, code: ErrorCode, message: &str) -> Response {
        let status = StatusCode::from(code);
        let message = code.public_detail(message);
        let body = serde_json::json!({
            "errors": [{ "message": message, "extensions": { "code": code.as_str() } }]
        });
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static(GRAPHQL_RESPONSE_JSON),
        );
        response.extensions_mut().insert(code);
        response
    }
}
