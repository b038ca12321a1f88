//! The one transport-agnostic error vocabulary every BFF speaks.
//!
//! Each BFF renders an [`ErrorCode`] in its client's format (GraphQL `extensions.code`,
//! problem+json `type`, CBOR error code); the HTTP status comes from [`ErrorCode::status`].

use http::StatusCode;
use serde::Serialize;

/// A classified failure, stable across BFFs and documented in DESIGN.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// Malformed body, bad cursor, undecodable payload.
    BadRequest,
    /// Well-formed but invalid arguments (page size, unknown enum).
    BadUserInput,
    /// Depth, complexity, alias or batch limit exceeded.
    QueryTooComplex,
    /// Missing or invalid token.
    Unauthenticated,
    /// Valid token, not allowed.
    Forbidden,
    /// No such entity, or hidden from this consumer.
    NotFound,
    /// Body over the limit.
    PayloadTooLarge,
    /// Wrong content type.
    UnsupportedMediaType,
    /// Over the consumer's rate limit.
    RateLimited,
    /// Upstream down, erroring, answering garbage, or its breaker open.
    UpstreamUnavailable,
    /// Upstream did not answer within the deadline.
    UpstreamTimeout,
    /// A bug; the body says nothing more than the request id.
    Internal,
}

impl ErrorCode {
    /// The wire spelling, e.g. `UPSTREAM_UNAVAILABLE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "BAD_REQUEST",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::QueryTooComplex => "QUERY_TOO_COMPLEX",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound => "NOT_FOUND",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::RateLimited => "RATE_LIMITED",
            Self::UpstreamUnavailable => "UPSTREAM_UNAVAILABLE",
            Self::UpstreamTimeout => "UPSTREAM_TIMEOUT",
            Self::Internal => "INTERNAL",
        }
    }

    /// The HTTP status a response failing as a whole with this code carries.
    pub fn status(self) -> StatusCode {
        StatusCode::from(self)
    }
}

impl From<ErrorCode> for StatusCode {
    fn from(code: ErrorCode) -> Self {
        match code {
            ErrorCode::BadRequest | ErrorCode::BadUserInput | ErrorCode::QueryTooComplex => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::UpstreamUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_spelling_matches_serde_spelling() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::QueryTooComplex,
            ErrorCode::UpstreamUnavailable,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_string(&code).expect("serialises");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn statuses_follow_the_design_table() {
        assert_eq!(ErrorCode::Unauthenticated.status(), 401);
        assert_eq!(ErrorCode::Forbidden.status(), 403);
        assert_eq!(ErrorCode::RateLimited.status(), 429);
        assert_eq!(ErrorCode::UpstreamTimeout.status(), 504);
    }
}
