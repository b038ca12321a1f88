//! Conditional GETs: strong entity tags, `If-None-Match` → 304, and tags that stay correct
//! when a response is compressed.
//!
//! A BFF computes [`strong_etag`] over the bytes that identify a representation (usually its
//! JSON body, minus volatile fields such as a generation timestamp) and asks
//! [`if_none_match`] whether the client already holds it. Compression changes the bytes on
//! the wire, and RFC 9110 §8.8.3 ties a strong tag to those bytes, so the
//! [`tag_content_coding`] response mapper, placed *outside* the compression layer, appends the
//! coding to the tag (`"abc"` → `"abc-br"`), as Apache's `mod_deflate` does. `If-None-Match`
//! accepts the plain and every coded form of the same tag.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{CONTENT_ENCODING, ETAG, IF_NONE_MATCH};
use http::{HeaderMap, HeaderValue};

/// Content codings whose suffix [`tag_content_coding`] may have appended to a tag.
const CODINGS: [&str; 3] = ["gzip", "br", "deflate"];

/// A strong entity tag for `content`: 128 bits of its SHA-256, quoted
/// (`"q3bM…"`, 24 characters with the quotes).
pub fn strong_etag(content: &[u8]) -> HeaderValue {
    let hash = digest::digest(&digest::SHA256, content);
    // Written on the stack: the header value is the only allocation.
    let mut tag = [b'"'; 24];
    let written = URL_SAFE_NO_PAD
        .encode_slice(&hash.as_ref()[..16], &mut tag[1..23])
        .expect("16 bytes are 22 base64url characters");
    debug_assert_eq!(written, 22);
    HeaderValue::from_bytes(&tag).expect("base64url is a valid header value")
}

/// The entity tag from the request's `If-None-Match` that matches `etag`, exactly as the
/// client sent it (a 304 repeats it), or `None` when the client does not hold this
/// representation.
///
/// Uses the weak comparison RFC 9110 §13.1.2 prescribes for `If-None-Match`; `*` matches
/// any current representation, and a tag with a content-coding suffix matches its base tag.
pub fn if_none_match(request: &HeaderMap, etag: &HeaderValue) -> Option<HeaderValue> {
    matching_tag(request.get_all(IF_NONE_MATCH), etag)
}

/// A request's `If-None-Match` values, as a handler's extractor: a handler that needs no
/// other header takes this instead of a copy of the whole `HeaderMap` (no allocation when
/// the client sent none, the usual case).
#[derive(Clone, Debug, Default)]
pub struct IfNoneMatch(Vec<HeaderValue>);

impl IfNoneMatch {
    /// As [`if_none_match`]: the client's tag that matches `etag`, or `None`.
    pub fn matching(&self, etag: &HeaderValue) -> Option<HeaderValue> {
        matching_tag(&self.0, etag)
    }
}

impl<S: Sync> axum::extract::FromRequestParts<S> for IfNoneMatch {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .headers
                .get_all(IF_NONE_MATCH)
                .iter()
                .cloned()
                .collect(),
        ))
    }
}

fn matching_tag<'a>(
    values: impl IntoIterator<Item = &'a HeaderValue>,
    etag: &HeaderValue,
) -> Option<HeaderValue> {
    let ours = opaque_tag(etag.to_str().ok()?)?;
    for value in values {
        let Ok(list) = value.to_str() else { continue };
        for candidate in list.split(',').map(str::trim) {
            if candidate == "*" {
                return Some(etag.clone());
            }
            let Some(theirs) = opaque_tag(candidate.strip_prefix("W/").unwrap_or(candidate)) else {
                continue;
            };
            let coded = |coding: &str| {
                theirs
                    .strip_suffix(coding)
                    .and_then(|rest| rest.strip_suffix('-'))
                    == Some(ours)
            };
            if theirs == ours || CODINGS.into_iter().any(coded) {
                return HeaderValue::from_str(candidate).ok();
            }
        }
    }
    None
}

/// The characters between the quotes of a strong entity tag.
fn opaque_tag(tag: &str) -> Option<&str> {
    tag.strip_prefix('"')?.strip_suffix('"')
}

/// Appends the response's content coding to a strong `ETag` (`"abc"` → `"abc-gzip"`), so
/// that the identity and each compressed representation have distinct strong tags. A
/// response mapper for `tower`'s `map_response`, which must wrap the compression layer:
/// `ServiceBuilder::new().map_response(tag_content_coding).layer(CompressionLayer::new())`.
/// Every request of its BFF passes it, and `map_response` adds no boxed future and no
/// clone of the service below.
pub fn tag_content_coding<B>(mut response: http::Response<B>) -> http::Response<B> {
    let coding = response
        .headers()
        .get(CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .filter(|coding| CODINGS.contains(coding));
    let tagged = match (coding, response.headers().get(ETAG)) {
        (Some(coding), Some(etag)) => etag
            .to_str()
            .ok()
            .and_then(opaque_tag)
            .and_then(|opaque| HeaderValue::from_str(&format!("\"{opaque}-{coding}\"")).ok()),
        _ => None,
    };
    if let Some(tagged) = tagged {
        response.headers_mut().insert(ETAG, tagged);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(if_none_match: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            IF_NONE_MATCH,
            HeaderValue::from_str(if_none_match).expect("test header"),
        );
        headers
    }

    #[test]
    fn same_content_same_tag_and_different_content_different_tag() {
        assert_eq!(strong_etag(b"{\"a\":1}"), strong_etag(b"{\"a\":1}"));
        assert_ne!(strong_etag(b"{\"a\":1}"), strong_etag(b"{\"a\":2}"));
        assert_eq!(strong_etag(b"x").len(), 24);
    }

    #[test]
    fn if_none_match_matches_exact_weak_coded_listed_and_star() {
        let etag = strong_etag(b"body");
        let tag = etag.to_str().expect("ascii").to_owned();
        let opaque = tag.trim_matches('"');
        for header in [
            tag.clone(),
            format!("W/{tag}"),
            format!("\"{opaque}-br\""),
            format!("\"{opaque}-gzip\""),
            format!("\"other\", {tag}"),
            "*".to_owned(),
        ] {
            assert!(
                if_none_match(&request_with(&header), &etag).is_some(),
                "{header} should match"
            );
        }
        let echoed = if_none_match(&request_with(&format!("\"{opaque}-br\"")), &etag);
        assert_eq!(
            echoed,
            HeaderValue::from_str(&format!("\"{opaque}-br\"")).ok()
        );
    }

    #[test]
    fn if_none_match_rejects_other_tags_and_garbage() {
        let etag = strong_etag(b"body");
        let opaque = etag.to_str().expect("ascii").trim_matches('"').to_owned();
        for header in [
            "\"other\"".to_owned(),
            format!("\"{opaque}-zstd\""),
            format!("\"{opaque}br\""),
            opaque.clone(),
            String::new(),
            "\"".to_owned(),
        ] {
            assert!(
                if_none_match(&request_with(&header), &etag).is_none(),
                "{header:?} should not match"
            );
        }
        assert!(if_none_match(&HeaderMap::new(), &etag).is_none());
    }

    #[test]
    fn the_tag_is_the_quoted_base64url_of_the_first_128_bits() {
        let hash = digest::digest(&digest::SHA256, b"body");
        let expected = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&hash.as_ref()[..16]));
        assert_eq!(strong_etag(b"body").to_str().ok(), Some(expected.as_str()));
    }

    #[tokio::test]
    async fn the_extractor_answers_as_the_header_map_does() {
        use axum::extract::FromRequestParts as _;
        let etag = strong_etag(b"body");
        let tag = etag.to_str().expect("ascii").to_owned();
        let cases: [&[&str]; 4] = [&[], &["\"other\""], &["\"other\"", &tag], &["W/\"x\", *"]];
        for values in cases {
            let mut builder = http::Request::builder();
            for value in values {
                builder = builder.header(IF_NONE_MATCH, *value);
            }
            let (mut parts, ()) = builder.body(()).expect("test request").into_parts();
            let extracted = IfNoneMatch::from_request_parts(&mut parts, &())
                .await
                .expect("infallible");
            assert_eq!(
                extracted.matching(&etag),
                if_none_match(&parts.headers, &etag),
                "{values:?}"
            );
        }
    }
}
