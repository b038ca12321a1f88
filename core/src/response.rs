//! The seam between core and a BFF's wire format.
//!
//! Core produces [`ErrorCode`]s; each BFF implements [`ErrorResponder`] once to render them
//! in its client's format. Core middleware (auth, usage plans, admission) renders through
//! it, so every error a client sees is in that client's format.

use axum::response::Response;

use crate::error::ErrorCode;

/// Renders an error as a complete HTTP response in a BFF's wire format.
pub trait ErrorResponder: Clone + Send + Sync + 'static {
    /// The response for `code`; `message` is safe to show to the client.
    fn respond(&self, code: ErrorCode, message: &str) -> Response;

    /// The response for `code` to `request`, for middleware that answers before the BFF's
    /// own layers run (and so before any of them could finish the body). A format whose
    /// body names the request (problem+json's `instance` and request id) overrides this.
    fn respond_to<B>(
        &self,
        request: &http::Request<B>,
        code: ErrorCode,
        message: &str,
    ) -> Response {
        let _ = request;
        self.respond(code, message)
    }
}
