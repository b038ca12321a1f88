//! The one transport-agnostic error vocabulary every BFF speaks.
//!
//! Each BFF renders an [`ErrorCode`] in its client's format (GraphQL `extensions.code`,
//! problem+json `type`, CBOR error code); the HTTP status comes from [`ErrorCode::status`].

use http::StatusCode;
use serde::{Serialize, Serializer};
use strum::VariantArray as _;

/// A classified failure, stable across BFFs and documented in DESIGN.md.
///
/// The wire spelling (`UPSTREAM_UNAVAILABLE`) is derived once, from the variant name, and
/// serde serialises through it, so there is one spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// Malformed body, bad cursor, undecodable payload.
    BadRequest,
    /// Well-formed but invalid arguments (page size, unknown enum).
    BadUserInput,
    /// Depth, complexity, alias or batch limit exceeded.
    QueryTooComplex,
    /// A GraphQL request named a persisted query by hash that this BFF does not know
    /// (Apollo's APQ: the client resends it with its text).
    PersistedQueryNotFound,
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
    /// A retired API version, past its sunset date.
    Gone,
    /// Over the consumer's rate limit.
    RateLimited,
    /// This BFF is at its admission limit (not an upstream's fault).
    Overloaded,
    /// Upstream down, erroring, answering garbage, or its breaker open.
    UpstreamUnavailable,
    /// Upstream did not answer within the deadline.
    UpstreamTimeout,
    /// A bug; the body says nothing more than the request id.
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: &'static [Self] = Self::VARIANTS;

    /// The wire spelling, e.g. `UPSTREAM_UNAVAILABLE`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// What a client may be told about an error with this code whose detail is `detail`.
    ///
    /// `INTERNAL` means a bug: its detail goes to the log and the client is told only
    /// "internal error" (the request id, sent with every response, is the handle for the
    /// log). Every other code's detail is written to be shown and is returned as it is.
    pub fn public_detail(self, detail: &str) -> &str {
        if self == Self::Internal {
            tracing::error!(detail, "internal error");
            "internal error"
        } else {
            detail
        }
    }

    /// The code a response with `status` most likely carries, for responses that did not
    /// say (404 from the router's fallback, 413 from the body limit); `None` below 400.
    pub fn for_status(status: StatusCode) -> Option<Self> {
        Some(match status.as_u16() {
            0..=399 => return None,
            401 => Self::Unauthenticated,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            410 => Self::Gone,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            429 => Self::RateLimited,
            503 => Self::UpstreamUnavailable,
            504 => Self::UpstreamTimeout,
            500..=599 => Self::Internal,
            _ => Self::BadRequest,
        })
    }

    /// The HTTP status a response failing as a whole with this code carries.
    pub fn status(self) -> StatusCode {
        StatusCode::from(self)
    }
}

impl From<ErrorCode> for StatusCode {
    fn from(code: ErrorCode) -> Self {
        match code {
            ErrorCode::BadRequest
            | ErrorCode::BadUserInput
            | ErrorCode::QueryTooComplex
            | ErrorCode::PersistedQueryNotFound => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Gone => StatusCode::GONE,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Overloaded | ErrorCode::UpstreamUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
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

    /// The wire spelling of every code, as DESIGN.md's table lists it, with its status.
    const TABLE: &[(ErrorCode, &str, u16)] = &[
        (ErrorCode::BadRequest, "BAD_REQUEST", 400),
        (ErrorCode::BadUserInput, "BAD_USER_INPUT", 400),
        (ErrorCode::QueryTooComplex, "QUERY_TOO_COMPLEX", 400),
        (
            ErrorCode::PersistedQueryNotFound,
            "PERSISTED_QUERY_NOT_FOUND",
            400,
        ),
        (ErrorCode::Unauthenticated, "UNAUTHENTICATED", 401),
        (ErrorCode::Forbidden, "FORBIDDEN", 403),
        (ErrorCode::NotFound, "NOT_FOUND", 404),
        (ErrorCode::PayloadTooLarge, "PAYLOAD_TOO_LARGE", 413),
        (
            ErrorCode::UnsupportedMediaType,
            "UNSUPPORTED_MEDIA_TYPE",
            415,
        ),
        (ErrorCode::Gone, "GONE", 410),
        (ErrorCode::RateLimited, "RATE_LIMITED", 429),
        (ErrorCode::Overloaded, "OVERLOADED", 503),
        (ErrorCode::UpstreamUnavailable, "UPSTREAM_UNAVAILABLE", 503),
        (ErrorCode::UpstreamTimeout, "UPSTREAM_TIMEOUT", 504),
        (ErrorCode::Internal, "INTERNAL", 500),
    ];

    #[test]
    fn every_code_has_the_documented_spelling_status_and_serde_form() {
        assert_eq!(
            ErrorCode::ALL.len(),
            TABLE.len(),
            "a code is missing from TABLE"
        );
        for (code, spelling, status) in TABLE {
            assert_eq!(code.as_str(), *spelling);
            assert_eq!(code.to_string(), *spelling);
            assert_eq!(code.status(), *status, "{spelling}");
            let json = serde_json::to_string(code).expect("serialises");
            assert_eq!(json, format!("\"{spelling}\""));
        }
    }

    #[test]
    fn only_internal_errors_hide_their_detail() {
        for code in ErrorCode::ALL {
            let shown = code.public_detail("db pool exhausted at 10.0.0.7");
            if *code == ErrorCode::Internal {
                assert_eq!(shown, "internal error");
            } else {
                assert_eq!(shown, "db pool exhausted at 10.0.0.7");
            }
        }
    }
}
