//! Extractors that take from a request what axum's own would copy.
//!
//! axum's `HeaderMap` extractor clones the request's headers (a table and a reference
//! count per value) so that later extractors can still read them. A handler whose only
//! other extractors read the body or the state does not need that copy.

use http::HeaderMap;
use http::request::Parts;

/// The request's headers, taken out of the request: for a handler that is their last
/// reader. Extractors after it (a body, the state) still work; any that reads a header
/// finds none, so put those before it.
#[derive(Debug, Default)]
pub struct TakenHeaders(pub HeaderMap);

impl<S: Sync> axum::extract::FromRequestParts<S> for TakenHeaders {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(std::mem::take(&mut parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use axum::extract::FromRequestParts as _;
    use http::header::ACCEPT;

    use super::*;

    #[tokio::test]
    async fn the_headers_are_taken_whole() {
        let request = http::Request::builder()
            .header(ACCEPT, "application/json")
            .header("x-one", "1")
            .header("x-one", "2")
            .body(())
            .expect("test request");
        let (mut parts, ()) = request.into_parts();
        let expected = parts.headers.clone();
        let TakenHeaders(taken) = TakenHeaders::from_request_parts(&mut parts, &())
            .await
            .expect("infallible");
        assert_eq!(taken, expected);
        assert!(parts.headers.is_empty(), "taken, not copied");
    }
}
