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

/// A boxed response future, for a layer's rare asynchronous path.
pub type BoxedResponseFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>,
>;

pin_project_lite::pin_project! {
    /// The response future of a layer that decides most requests in `call` (auth, usage
    /// plans): the route's own future when it let the request through, its answer when it
    /// refused it there, or a boxed future for the rare decision that has to wait. The
    /// common path's future is then the route's, not an `async` block as large as the rare
    /// path's state.
    pub struct LayerFuture<F> {
        #[pin]
        state: LayerFutureState<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = LayerFutureProjection]
    enum LayerFutureState<F> {
        Routed { #[pin] future: F },
        // Taken when polled.
        Answered { response: Option<Response> },
        Waiting { future: BoxedResponseFuture },
    }
}

impl<F> LayerFuture<F> {
    /// The route's future: the layer let the request through.
    pub fn routed(future: F) -> Self {
        Self {
            state: LayerFutureState::Routed { future },
        }
    }

    /// The layer's own answer (a refusal).
    pub fn answered(response: Response) -> Self {
        Self {
            state: LayerFutureState::Answered {
                response: Some(response),
            },
        }
    }

    /// A decision that has to wait, then the route.
    pub fn waiting(future: BoxedResponseFuture) -> Self {
        Self {
            state: LayerFutureState::Waiting { future },
        }
    }
}

impl<F> std::future::Future for LayerFuture<F>
where
    F: std::future::Future<Output = Result<Response, std::convert::Infallible>>,
{
    type Output = Result<Response, std::convert::Infallible>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.project().state.project() {
            LayerFutureProjection::Routed { future } => future.poll(cx),
            LayerFutureProjection::Answered { response } => std::task::Poll::Ready(Ok(response
                .take()
                .expect("a layer's future is not polled after it completed"))),
            LayerFutureProjection::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}
