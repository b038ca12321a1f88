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
use crate::auth::Principal;
use crate::error::ErrorCode;
use crate::response::ErrorResponder;

type BoxedResponse = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

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
    type Future = BoxedResponse;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let Some(limiter) = self.limiter.clone() else {
            return Box::pin(inner.call(request));
        };
        let responder = self.responder.clone();
        let weight = self.weight;
        Box::pin(async move {
            // Routes without the auth layer in front have no principal: nothing to charge.
            let Some(principal) = request.extensions().get::<Principal>() else {
                return inner.call(request).await;
            };
            let decision = limiter.charge(principal, weight).await;
            let mut response = if decision.allowed {
                inner.call(request).await?
            } else {
                let message = decision.message.as_deref().unwrap_or("rate limit exceeded");
                responder.respond_to(&request, ErrorCode::RateLimited, message)
            };
            decision.apply_headers(response.headers_mut());
            Ok(response)
        })
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
