//! The seam between core and a BFF's wire format.
//!
//! Core produces [`ErrorCode`]s; each BFF implements [`ErrorResponder`] once to render them
//! in its client's format. Core middleware (auth, body limits) renders through it, so every
//! error a client sees is in that client's format.

use axum::response::Response;

use crate::error::ErrorCode;

/// Renders an error as a complete HTTP response in a BFF's wire format.
pub trait ErrorResponder: Clone + Send + Sync + 'static {
    /// The response for `code`; `message` is safe to show to the client.
    fn respond(&self, code: ErrorCode, message: &str) -> Response;
}
