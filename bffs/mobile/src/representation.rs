//! How the mobile BFF's successful GETs are written: JSON with a strong `ETag`,
//! `Cache-Control: private, no-cache`, `304 Not Modified` when the client already holds
//! the content, and an optional `meta` block that does not take part in the tag.
//!
//! `meta.generatedAt` changes on every request; were it hashed, no response would ever be
//! a 304. The tag therefore covers the content only, and `meta` is spliced in afterwards.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG};
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use switchyard_core::conditional::{IfNoneMatch, strong_etag};
use switchyard_core::problem::Problem;
use switchyard_core::upstream::{Freshness, Service};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `Cache-Control` of every API response: only the user's own device may keep it, and it
/// must revalidate (cheaply, with `If-None-Match`) before reuse.
const PRIVATE_REVALIDATE: &str = "private, no-cache";

/// How fresh and complete a response is.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// When this response was assembled (RFC 3339, UTC).
    generated_at: String,
    /// Age in seconds of the oldest cached data served because an upstream failed (0 when
    /// everything is fresh).
    freshness_seconds: u64,
    /// Services whose data is missing or stale in this response.
    degraded: Vec<&'static str>,
}

impl Meta {
    /// The meta block of a response that could not reach `failed` and was served stale data
    /// as `freshness` reports.
    pub fn new(failed: &[Service], freshness: &Freshness) -> Self {
        let mut degraded: Vec<Service> = failed.to_vec();
        degraded.extend(freshness.stale.keys().copied());
        degraded.sort();
        degraded.dedup();
        Self {
            generated_at: OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap_or_else(|_| OffsetDateTime::now_utc())
                .format(&Rfc3339)
                .unwrap_or_default(),
            freshness_seconds: freshness.max_age().map_or(0, |age| age.as_secs()),
            degraded: degraded.into_iter().map(Service::as_str).collect(),
        }
    }
}

/// `content` as a cacheable JSON response to a request that sent `if_none_match`; with
/// `meta` appended as the last member when given. `content` must serialise to a JSON object.
pub fn cacheable_json<T: Serialize>(
    if_none_match: &IfNoneMatch,
    content: &T,
    meta: Option<&Meta>,
) -> Response {
    let mut body = match serde_json::to_vec(content) {
        Ok(body) => body,
        Err(error) => {
            return Problem::new(
                switchyard_core::ErrorCode::Internal,
                format!("serialising a response: {error}"),
            )
            .into_response();
        }
    };
    let etag = strong_etag(&body);
    let cache_control = HeaderValue::from_static(PRIVATE_REVALIDATE);
    if let Some(matched) = if_none_match.matching(&etag) {
        return (
            StatusCode::NOT_MODIFIED,
            [(ETAG, matched), (CACHE_CONTROL, cache_control)],
        )
            .into_response();
    }
    if let Some(meta) = meta {
        splice_member(&mut body, "meta", meta);
    }
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (ETAG, etag),
            (CACHE_CONTROL, cache_control),
        ],
        Body::from(body),
    )
        .into_response()
}

/// Appends `"name": value` to the serialised JSON object in `object`.
fn splice_member(object: &mut Vec<u8>, name: &str, value: &impl Serialize) {
    debug_assert_eq!(object.last(), Some(&b'}'), "content must be a JSON object");
    object.pop();
    if object.len() > 1 {
        object.push(b',');
    }
    object.push(b'"');
    object.extend_from_slice(name.as_bytes());
    object.extend_from_slice(b"\":");
    if serde_json::to_writer(&mut *object, value).is_err() {
        object.extend_from_slice(b"null");
    }
    object.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_a_member_into_empty_and_non_empty_objects() {
        let mut empty = b"{}".to_vec();
        splice_member(&mut empty, "meta", &1);
        assert_eq!(empty, br#"{"meta":1}"#);
        let mut object = br#"{"a":[1]}"#.to_vec();
        splice_member(&mut object, "meta", &serde_json::json!({"x": true}));
        assert_eq!(object, br#"{"a":[1],"meta":{"x":true}}"#);
    }
}
