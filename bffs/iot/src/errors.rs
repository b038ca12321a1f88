//! The IoT BFF's one place where errors become responses: a CBOR `error` map
//! `{1: code, 2: message}` with the core `ErrorCode`'s status, `Retry-After` when retrying
//! later will help.

use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use switchyard_core::ErrorCode;
use switchyard_core::response::ErrorResponder;

use crate::message::error_to_cbor;

/// Media type of every request and response body.
pub const CBOR: &str = "application/cbor";

/// An error for a device: a code, a short message, and maybe when to retry.
#[derive(Clone, Debug)]
pub struct DeviceError {
    code: ErrorCode,
    message: String,
    retry_after_secs: Option<u32>,
    challenge: Option<HeaderValue>,
}

impl DeviceError {
    /// An error with a message safe to send to the device.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_secs: None,
            challenge: None,
        }
    }

    /// Tells the device to retry after `secs`.
    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }
}

impl IntoResponse for DeviceError {
    fn into_response(self) -> Response {
        let message = self.code.public_detail(&self.message);
        let mut response = (
            self.code.status(),
            [(CONTENT_TYPE, HeaderValue::from_static(CBOR))],
            error_to_cbor(self.code.as_str(), message),
        )
            .into_response();
        response.extensions_mut().insert(self.code);
        if let Some(challenge) = self.challenge {
            response
                .headers_mut()
                .insert(http::header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<switchyard_core::auth::AuthError> for DeviceError {
    /// The error, with its `WWW-Authenticate` challenge (`insufficient_scope` for a
    /// missing scope).
    fn from(error: switchyard_core::auth::AuthError) -> Self {
        Self {
            challenge: Some(error.www_authenticate()),
            ..Self::new(error.code(), error.to_string())
        }
    }
}

/// Renders core errors (auth failures) as CBOR error maps.
#[derive(Clone, Copy, Debug, Default)]
pub struct CborErrorResponder;

impl ErrorResponder for CborErrorResponder {
    fn respond(&self, code: ErrorCode, message: &str) -> Response {
        DeviceError::new(code, message).into_response()
    }
}
