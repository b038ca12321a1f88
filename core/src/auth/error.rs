//! Why a request was not authenticated or not authorised.

use http::HeaderValue;

use crate::error::ErrorCode;

/// Why a request was not authenticated or not authorised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer …` header.
    #[error("missing bearer token")]
    Missing,
    /// The token is not acceptable; the reason is safe to show (it never contains the token).
    #[error("invalid token: {0}")]
    Invalid(&'static str),
    /// An `Authorization: ApiKey …` header whose key is not one of the configured keys.
    #[error("invalid API key")]
    InvalidApiKey,
    /// The token is valid but lacks a scope the operation needs.
    #[error("insufficient scope: requires {0}")]
    InsufficientScope(&'static str),
}

impl AuthError {
    /// The shared error code: 401 for token problems, 403 for scope problems.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Missing | Self::Invalid(_) | Self::InvalidApiKey => ErrorCode::Unauthenticated,
            Self::InsufficientScope(_) => ErrorCode::Forbidden,
        }
    }

    /// The RFC 6750 `WWW-Authenticate` challenge for this error.
    pub fn www_authenticate(&self) -> HeaderValue {
        match self {
            Self::Missing => HeaderValue::from_static("Bearer"),
            Self::Invalid(_) => HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            Self::InvalidApiKey => HeaderValue::from_static("ApiKey"),
            Self::InsufficientScope(_) => {
                HeaderValue::from_static(r#"Bearer error="insufficient_scope""#)
            }
        }
    }
}
