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
    let opaque = URL_SAFE_NO_PAD.encode(&hash.as_ref()[..16]);
    HeaderValue::from_str(&format!("\"{opaque}\"")).expect("base64url is a valid header value")
}

/// The entity tag from the request's `If-None-Match` that matches `etag`, exactly as the
/// client sent it (a 304 repeats it), or `None` when the client does not hold this
/// representation.
///
/// Uses the weak comparison RFC 9110 §13.1.2 prescribes for `If-None-Match`; `*` matches
/// any current representation, and a tag with a content-coding suffix matches its base tag.
pub fn if_none_match(request: &HeaderMap, etag: &HeaderValue) -> Option<HeaderValue> {
    let ours = opaque_tag(etag.to_str().ok()?)?;
    for value in request.get_all(IF_NONE_MATCH) {
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
}
