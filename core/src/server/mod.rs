//! Server plumbing every BFF shares: health and readiness routes, the edge every request
//! goes through (request ids, observation, admission control, the limit per client
//! address: [`edge`]), body limits, the listener with its connection limits and graceful
//! shutdown ([`listener`]), and the connection workers it hands connections to
//! ([`workers`]).

mod edge;
mod listener;
mod workers;

pub use edge::Observer;
use edge::{Edge, EdgeLayer, StrippedHeaders};

pub use listener::{
    BodyReadTimeout, ConnectionLimits, MAX_CONCURRENT_STREAMS, MAX_HEADER_BYTES,
    MAX_REQUEST_HEADERS, serve,
};
pub use workers::{Workers, current_worker};

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::request_id::RequestId;

use crate::auth::Authenticator;
use crate::config::ServerConfig;
use crate::metrics::{METRICS_PATH, Metrics};
use crate::ratelimit::{AddressLimit, Limiter};
use crate::response::ErrorResponder;
use crate::upstream::{Guards, UpstreamsHealth};

/// Header carrying the request id, accepted from clients and echoed on every response.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of `request` (set by [`with_common_layers`]), or `"-"` outside it.
pub fn request_id_of(extensions: &http::Extensions) -> &str {
    request_id_text(extensions.get::<RequestId>())
}

/// The text of a request id, `-` without one (as [`request_id_of`]).
pub(crate) fn request_id_text(id: Option<&RequestId>) -> &str {
    id.and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-")
}

/// What `/readyz` reports; the BFF is ready when every check passes.
#[derive(Clone)]
pub struct Readiness {
    authenticator: Authenticator,
    guards: Guards,
}

impl Readiness {
    /// Readiness of a BFF authenticating with `authenticator` and calling upstreams through
    /// `guards` (whose breaker states it reports).
    pub fn new(authenticator: Authenticator, guards: Guards) -> Self {
        Self {
            authenticator,
            guards,
        }
    }
}

/// Open breakers do not make a BFF unready: it still serves what it can (and cached data),
/// and taking it out of rotation would not heal the upstream.
#[derive(Serialize)]
struct ReadinessReport {
    ready: bool,
    checks: ReadinessChecks,
    upstreams: UpstreamsHealth,
}

#[derive(Serialize)]
struct ReadinessChecks {
    config: &'static str,
    signing_keys: &'static str,
}

/// `GET /healthz` (alive) and `GET /readyz` (able to serve). Neither calls an upstream.
pub fn health_routes<S: Clone + Send + Sync + 'static>(readiness: Readiness) -> Router<S> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz).with_state(readiness))
}

async fn readyz(State(readiness): State<Readiness>) -> Response {
    let keys = readiness.authenticator.has_keys();
    if !keys {
        // Keys may have failed to load at start-up; retry, at most once per JWKS cooldown,
        // so that frequent probes against a down issuer do not hammer it.
        let _ = readiness.authenticator.retry_keys().await;
    }
    let keys = keys || readiness.authenticator.has_keys();
    let report = ReadinessReport {
        ready: keys,
        checks: ReadinessChecks {
            config: "ok",
            signing_keys: if keys { "ok" } else { "missing" },
        },
        upstreams: readiness.guards.health(),
    };
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report)).into_response()
}

/// Wraps a BFF's router in what every request of every BFF goes through ([`edge`]):
/// internal headers stripped → request id (sanitised, or made; echoed) → observation
/// (metrics, access log, span) → `Retry-After` on 503/504 → panics caught → admission
/// control (`server.max_in_flight`) → the limit per client address (`ratelimit.anonymous`)
/// → body limit. Refusals are in `responder`'s format; `/healthz` and `/readyz` pass
/// admission and the address limit.
pub fn with_common_layers<R: ErrorResponder>(
    router: Router,
    config: &ServerConfig,
    limiter: Option<Limiter>,
    observer: Observer,
    responder: R,
) -> Router {
    let edge = EdgeLayer {
        edge: Arc::new(Edge {
            stripped: StrippedHeaders::new(&config.strip_request_headers),
            observer,
            responder: responder.clone(),
            permits: Arc::new(Semaphore::new(config.max_in_flight)),
            address_limit: AddressLimit::new(limiter, responder),
        }),
    };
    router.layer(
        ServiceBuilder::new()
            .layer(edge)
            .layer(DefaultBodyLimit::max(config.body_limit_bytes)),
    )
}

/// `GET /metrics`: the Prometheus text exposition of `metrics`, with the breaker states
/// of `guards` read at scrape time.
pub fn metrics_route<S: Clone + Send + Sync + 'static>(
    metrics: Metrics,
    guards: Guards,
) -> Router<S> {
    Router::new().route(
        METRICS_PATH,
        get(move || {
            let metrics = metrics.clone();
            let health = guards.health();
            async move {
                for (service, state) in [
                    ("customers", health.customers),
                    ("orders", health.orders),
                    ("inventory", health.inventory),
                ] {
                    metrics.set_breaker_state(service, state.gauge_value());
                }
                (
                    [(
                        http::header::CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                    )],
                    metrics.encode(),
                )
            }
        }),
    )
}

/// Requests that are never shed or limited: probes and scrapes, which must keep working
/// when the BFF is at its capacity (that is when they matter).
fn is_operational(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | METRICS_PATH)
}

/// Completes on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; draining in-flight requests");
}
