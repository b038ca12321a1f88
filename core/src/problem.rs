//! RFC 9457 `application/problem+json` errors, for every BFF whose clients speak plain
//! REST (mobile, partner).
//!
//! Handlers and core middleware (auth, versioning) only decide *what* went wrong: they
//! return a response carrying a [`Problem`] extension and no body. The [`RenderProblemsLayer`]
//! middleware, which sees the request, writes the body with the request id and the path, so
//! every error a client gets, wherever it was raised, has the same shape:
//!
//! ```json
//! {"type":"urn:switchyard:error:NOT_FOUND","title":"Not Found","status":404,
//!  "detail":"order not found","code":"NOT_FOUND","instance":"/v2/orders/ord_1",
//!  "requestId":"…"}
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Uri};
use serde::Serialize;
use tower::{Layer, Service};
use tower_http::request_id::RequestId;

use crate::auth::AuthError;
use crate::error::ErrorCode;
use crate::response::ErrorResponder;
use crate::server::{request_id_of, request_id_text};
use crate::upstream::UpstreamError;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of a problem's `type`; the suffix is the core `ErrorCode`.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:switchyard:error:";

/// The problem type of a request refused by its usage plan (IANA HTTP Problem Types).
pub const QUOTA_EXCEEDED_TYPE: &str =
    "https://iana.org/assignments/http-problem-types#quota-exceeded";

/// What went wrong, attached to an error response until [`RenderProblemsLayer`] writes it out.
#[derive(Clone, Debug)]
pub struct Problem {
    code: ErrorCode,
    detail: String,
    service: Option<&'static str>,
    /// The `WWW-Authenticate` challenge of an auth failure.
    challenge: Option<HeaderValue>,
}

impl Problem {
    /// A problem with a message safe to show to the client.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            service: None,
            challenge: None,
        }
    }

    /// The problem a failed upstream call becomes (reported to the log here).
    pub fn upstream(error: &UpstreamError) -> Self {
        error.report();
        Self {
            code: error.code(),
            detail: error.public_message(),
            service: Some(error.service().as_str()),
            challenge: None,
        }
    }
}

impl From<AuthError> for Problem {
    /// The problem, with the error's `WWW-Authenticate` challenge (`insufficient_scope` for
    /// a missing scope).
    fn from(error: AuthError) -> Self {
        Self {
            challenge: Some(error.www_authenticate()),
            ..Self::new(error.code(), error.to_string())
        }
    }
}

impl From<UpstreamError> for Problem {
    fn from(error: UpstreamError) -> Self {
        Self::upstream(&error)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = self.code.status().into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(challenge) = &self.challenge {
            response
                .headers_mut()
                .insert(http::header::WWW_AUTHENTICATE, challenge.clone());
        }
        response.extensions_mut().insert(self.code);
        response.extensions_mut().insert(self);
        response
    }
}

/// Renders core errors (auth failures) as problems.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProblemResponder;

impl ErrorResponder for ProblemResponder {
    fn respond(&self, code: ErrorCode, message: &str) -> Response {
        Problem::new(code, message).into_response()
    }

    fn respond_to<B>(
        &self,
        request: &http::Request<B>,
        code: ErrorCode,
        message: &str,
    ) -> Response {
        let response = Problem::new(code, message).into_response();
        finish(
            response,
            request_id_of(request.extensions()),
            request.uri().path(),
        )
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProblemBody<'a> {
    r#type: std::borrow::Cow<'static, str>,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<&'static str>,
    instance: &'a str,
    request_id: &'a str,
}

/// The problem type of `code`: the IANA-registered `quota-exceeded` for `RATE_LIMITED`
/// (draft-ietf-httpapi-ratelimit-headers), `urn:switchyard:error:<code>` otherwise.
fn problem_type(code: ErrorCode) -> std::borrow::Cow<'static, str> {
    if code == ErrorCode::RateLimited {
        std::borrow::Cow::Borrowed(QUOTA_EXCEEDED_TYPE)
    } else {
        std::borrow::Cow::Owned(format!("{PROBLEM_TYPE_PREFIX}{}", code.as_str()))
    }
}

/// Writes the body of every response that carries a [`Problem`]. Must run inside the
/// request-id layer (the edge) and outside every route.
///
/// A tower layer with a future of its own rather than an axum `from_fn`: it runs on every
/// request of its BFF, and `from_fn` clones and boxes the service below it and boxes a
/// future per request. What it keeps of the request (its id and URI) are reference-counted
/// clones, read only if the response is a problem.
#[derive(Clone, Copy, Debug, Default)]
pub struct RenderProblemsLayer;

impl<S> Layer<S> for RenderProblemsLayer {
    type Service = RenderProblems<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RenderProblems { inner }
    }
}

/// The service of [`RenderProblemsLayer`].
#[derive(Clone, Debug)]
pub struct RenderProblems<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for RenderProblems<S>
where
    S: Service<http::Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RenderProblemsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let seen = Some((
            request.extensions().get::<RequestId>().cloned(),
            request.uri().clone(),
        ));
        RenderProblemsFuture {
            inner: self.inner.call(request),
            seen,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`RenderProblems`].
    pub struct RenderProblemsFuture<F> {
        #[pin]
        inner: F,
        // The request's id and URI, until the response is ready.
        seen: Option<(Option<RequestId>, Uri)>,
    }
}

impl<F, E> Future for RenderProblemsFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let Some((id, uri)) = this.seen.take() else {
            return Poll::Ready(Ok(response));
        };
        let request_id = request_id_text(id.as_ref());
        Poll::Ready(Ok(finish(response, request_id, uri.path())))
    }
}

/// Writes the body of `response` if it carries a [`Problem`].
fn finish(mut response: Response, request_id: &str, path: &str) -> Response {
    let Some(problem) = response.extensions_mut().remove::<Problem>() else {
        return response;
    };
    let status = problem.code.status();
    let detail = problem.code.public_detail(&problem.detail);
    let body = ProblemBody {
        r#type: problem_type(problem.code),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        code: problem.code.as_str(),
        service: problem.service,
        instance: path,
        request_id,
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    Response::from_parts(parts, axum::body::Body::from(bytes))
}
