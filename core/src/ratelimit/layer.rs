//! The tower layers through which BFFs apply usage plans.
//!
//! - [`UsagePlanLayer`] (REST BFFs, on their authenticated routes, inside the auth layer):
//!   charges the request's weight to the principal's plan, adds `RateLimit-Policy` and
//!   `RateLimit` to the response, or answers 429 with `Retry-After` itself in the BFF's
//!   format, before the handler (and so every upstream) is reached.
//! - [`AddressLimit`] (every BFF, before authentication, at core's edge): a limit per
//!   client address that keeps floods of bad tokens from costing signature checks.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use http::HeaderMap;

use super::limiter::Limiter;
use super::policy::Decision;
use crate::auth::Principal;
use crate::error::ErrorCode;
use crate::response::{ErrorResponder, LayerFuture};

/// Paths that are never limited: probes and scrapes must see the BFF as it is.
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | crate::metrics::METRICS_PATH)
}

/// See the module documentation. `limiter` `None` (usage plans off) passes everything.
#[derive(Clone)]
pub struct UsagePlanLayer<R> {
    limiter: Option<Limiter>,
    responder: R,
    weight: u32,
}

impl<R: ErrorResponder> UsagePlanLayer<R> {
    /// Charges each request 1 unit, refusing in `responder`'s format.
    pub fn new(limiter: Option<Limiter>, responder: R) -> Self {
        Self {
            limiter,
            responder,
            weight: 1,
        }
    }

    /// Charges each request `weight` units instead (a route that costs the upstreams more).
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight.max(1);
        self
    }
}

impl<S, R: Clone> tower::Layer<S> for UsagePlanLayer<R> {
    type Service = UsagePlanService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        UsagePlanService {
            inner,
            limiter: self.limiter.clone(),
            responder: self.responder.clone(),
            weight: self.weight,
        }
    }
}

/// The service [`UsagePlanLayer`] wraps a route in.
#[derive(Clone)]
pub struct UsagePlanService<S, R> {
    inner: S,
    limiter: Option<Limiter>,
    responder: R,
    weight: u32,
}

impl<S, R> tower::Service<Request> for UsagePlanService<S, R>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    R: ErrorResponder,
{
    type Response = Response;
    type Error = Infallible;
    type Future = UsagePlanFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    /// With the plans kept in this process, the request is decided here, at once, and the
    /// route's future is this one's; only a shared store (Redis) takes an async path,
    /// boxed so that the common path's future does not carry its state.
    fn call(&mut self, request: Request) -> Self::Future {
        // Routes without the auth layer in front have no principal: nothing to charge.
        let (Some(limiter), Some(principal)) =
            (&self.limiter, request.extensions().get::<Principal>())
        else {
            return UsagePlanFuture::routed(self.inner.call(request), None);
        };
        if let Some(decision) = limiter.charge_now(principal, self.weight) {
            if decision.allowed {
                return UsagePlanFuture::routed(self.inner.call(request), Some(decision));
            }
            return UsagePlanFuture::new(
                LayerFuture::answered(refusal(&self.responder, &request, &decision)),
                None,
            );
        }
        // The clone that was polled ready serves this request (tower's usual dance).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let limiter = limiter.clone();
        let responder = self.responder.clone();
        let weight = self.weight;
        UsagePlanFuture::new(
            LayerFuture::waiting(Box::pin(async move {
                let Some(principal) = request.extensions().get::<Principal>() else {
                    return inner.call(request).await;
                };
                let decision = limiter.charge(principal, weight).await;
                if !decision.allowed {
                    return Ok(refusal(&responder, &request, &decision));
                }
                let mut response = inner.call(request).await?;
                decision.apply_headers(response.headers_mut());
                Ok(response)
            })),
            None,
        )
    }
}

/// The 429 for a request `decision` refused, with its `RateLimit` headers.
fn refusal<R: ErrorResponder>(responder: &R, request: &Request, decision: &Decision) -> Response {
    let message = decision.message.as_deref().unwrap_or("rate limit exceeded");
    let mut response = responder.respond_to(request, ErrorCode::RateLimited, message);
    decision.apply_headers(response.headers_mut());
    response
}

pin_project_lite::pin_project! {
    /// The response future of [`UsagePlanService`]: a [`LayerFuture`], and the decision
    /// whose headers go on the route's response when it was made in `call`.
    pub struct UsagePlanFuture<F> {
        #[pin]
        future: LayerFuture<F>,
        decision: Option<Decision>,
    }
}

impl<F> UsagePlanFuture<F> {
    fn new(future: LayerFuture<F>, decision: Option<Decision>) -> Self {
        Self { future, decision }
    }

    fn routed(future: F, decision: Option<Decision>) -> Self {
        Self::new(LayerFuture::routed(future), decision)
    }
}

impl<F> Future for UsagePlanFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.future.poll(cx))?;
        if let Some(decision) = this.decision.take() {
            decision.apply_headers(response.headers_mut());
        }
        Poll::Ready(Ok(response))
    }
}

/// The client's address: the peer, or with `trusted_proxy_hops` = N > 0 the N-th
/// `X-Forwarded-For` entry from the right (the one the outermost trusted proxy saw). `None`
/// when neither is known (requests served without a socket, as in tests).
pub fn client_address(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trusted_proxy_hops: u32,
) -> Option<IpAddr> {
    if trusted_proxy_hops > 0 {
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .collect();
        let hops = trusted_proxy_hops as usize;
        let entry = if forwarded.len() >= hops {
            forwarded.get(forwarded.len() - hops)
        } else {
            forwarded.first()
        };
        if let Some(address) = entry.and_then(|entry| entry.parse::<IpAddr>().ok()) {
            return Some(address);
        }
    }
    peer.map(|peer| peer.ip())
}

/// The limit per client address: the limiter (`None`: usage plans off) and the BFF's
/// error format.
#[derive(Clone)]
pub struct AddressLimit<R> {
    limiter: Option<Limiter>,
    responder: R,
}

impl<R: ErrorResponder> AddressLimit<R> {
    /// Limits requests per client address, refusing in `responder`'s format.
    pub fn new(limiter: Option<Limiter>, responder: R) -> Self {
        Self { limiter, responder }
    }

    /// The refusal of `request` when its client address is over its limit (429
    /// `RATE_LIMITED` with `Retry-After`); `None` lets it through. Probes always pass.
    pub fn refusal(&self, request: &Request) -> Option<Response> {
        let limiter = self.limiter.as_ref()?;
        if is_probe(request.uri().path()) {
            return None;
        }
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        let address = client_address(request.headers(), peer, limiter.trusted_proxy_hops())?;
        let decision = limiter.check_address(address);
        if decision.allowed {
            return None;
        }
        let mut response = self.responder.respond_to(
            request,
            ErrorCode::RateLimited,
            "too many requests from this address",
        );
        if let Some(secs) = decision.retry_after_secs() {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, secs.into());
        }
        Some(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().expect("header"));
        headers
    }

    #[test]
    fn forwarded_for_is_trusted_only_for_the_configured_hops() {
        let peer: Option<SocketAddr> = Some("10.0.0.9:5000".parse().expect("addr"));
        let headers = forwarded("203.0.113.7, 198.51.100.2, 10.0.0.5");
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        assert_eq!(client_address(&headers, peer, 0), ip("10.0.0.9"));
        assert_eq!(client_address(&headers, peer, 1), ip("10.0.0.5"));
        assert_eq!(client_address(&headers, peer, 2), ip("198.51.100.2"));
        assert_eq!(client_address(&headers, peer, 5), ip("203.0.113.7"));
        assert_eq!(client_address(&forwarded("junk"), peer, 1), ip("10.0.0.9"));
        assert_eq!(client_address(&HeaderMap::new(), None, 1), None);
    }
}
