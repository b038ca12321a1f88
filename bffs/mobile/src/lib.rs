//! The mobile BFF: compact, versioned REST/JSON for phone apps on slow networks.
//!
//! v2 ([`v2`]) serves a dashboard, a cursor-paged order list and order details with
//! preformatted values and partial results; v1 ([`v1`]) keeps the legacy page-based shapes
//! alive with retirement headers. Every GET carries a strong `ETag` and answers
//! `If-None-Match` with 304 ([`representation`]); bodies of `api.compress_min_bytes` and
//! more are gzip- or brotli-compressed by `Accept-Encoding`; every error is RFC 9457
//! problem+json ([`problem`]). Auth, upstream clients, resilience and caching come from
//! `switchyard-core`.
//!
//! [`build_state`] wires the process-wide parts once; [`router`] serves them. Tests, the
//! sandbox launcher and benchmarks run the router in-process.

pub mod config;
pub mod cursor;
pub mod openapi;
mod params;
pub mod problem;
pub mod representation;
pub mod v1;
pub mod v2;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::routing::get;
use http::HeaderMap;
use switchyard_core::ErrorCode;
use switchyard_core::auth::{self, AuthState, Authenticator};
use switchyard_core::cache::{Freshness, track_freshness};
use switchyard_core::conditional::tag_content_coding;
use switchyard_core::config::{ConfigError, ServerConfig};
use switchyard_core::resilience::{Deadline, with_deadline};
use switchyard_core::server::{self, Readiness};
use switchyard_core::upstream::Upstreams;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate, SizeAbove};

pub use crate::config::{ApiConfig, LegacyConfig, MobileConfig};
use crate::openapi::OpenApiDocument;
use crate::problem::{Problem, ProblemResponder, render_problems};
use crate::v1::RetirementHeaders;

/// Everything a request handler needs, built once per process. Handlers and middleware
/// take it by value (axum clones the state for every request), so it is one shared
/// allocation: a clone is one reference-count increment, not one per part.
pub type AppState = Arc<AppStateInner>;

/// The parts of [`AppState`].
pub struct AppStateInner {
    upstreams: Upstreams,
    authenticator: Authenticator,
    api: Arc<ApiConfig>,
    retirement: RetirementHeaders,
    openapi: OpenApiDocument,
    server: Arc<ServerConfig>,
}

impl AppStateInner {
    /// Runs one request's upstream work under the configured deadline, reporting whether
    /// stale cached data was served.
    async fn within_budget<F: Future>(&self, work: F) -> (F::Output, Freshness) {
        let deadline = Deadline::after(Duration::from_millis(self.api.deadline_ms));
        track_freshness(with_deadline(deadline, work)).await
    }

    /// Loads the signing keys now rather than on the first request; failures are logged and
    /// retried later (readiness reports them).
    pub async fn prime(&self) {
        self.authenticator.prime_or_warn().await;
    }
}

/// Wires auth and the API for `config`, using the given upstream clients.
pub fn build_state_with(
    config: &MobileConfig,
    upstreams: Upstreams,
) -> Result<AppState, ConfigError> {
    let openapi = OpenApiDocument::embedded().map_err(|error| {
        ConfigError::Malformed(format!("embedded schema/mobile.openapi.yaml: {error}"))
    })?;
    Ok(Arc::new(AppStateInner {
        upstreams,
        authenticator: Authenticator::new(&config.auth)?,
        api: Arc::new(config.api.clone()),
        retirement: RetirementHeaders::new(&config.v1),
        openapi,
        server: Arc::new(config.server.clone()),
    }))
}

/// Wires HTTP upstream clients, auth and the API for `config`.
pub fn build_state(config: &MobileConfig) -> Result<AppState, ConfigError> {
    build_state_with(config, Upstreams::from_config(&config.upstreams)?)
}

/// The mobile BFF's routes and middleware. Layers, outermost first: the common ones
/// (request id, access log, body limit) → ETag coding suffix → compression → problem
/// rendering → per route: v1 retirement headers → auth → handler.
pub fn router(state: AppState) -> Router {
    let authenticate = from_fn_with_state(
        AuthState::new(state.authenticator.clone(), ProblemResponder),
        auth::middleware::<ProblemResponder>,
    );
    let v2 = Router::new()
        .route("/v2/dashboard", get(v2::dashboard))
        .route("/v2/orders", get(v2::orders))
        .route("/v2/orders/{id}", get(v2::order))
        .route_layer(authenticate.clone());
    let v1 = Router::new()
        .route("/v1/dashboard", get(v1::dashboard))
        .route("/v1/orders", get(v1::orders))
        .route_layer(authenticate)
        .route_layer(from_fn_with_state(
            state.retirement.clone(),
            v1::retirement_headers,
        ));
    let openapi = state.openapi.clone();
    let app = v2
        .merge(v1)
        .route(
            "/openapi.json",
            get(move |headers: HeaderMap| async move { openapi.respond(&headers) }),
        )
        .fallback(|| async {
            Problem::new(ErrorCode::NotFound, "no such endpoint").into_response()
        })
        .with_state(state.clone())
        .merge(server::health_routes(Readiness::new(
            state.authenticator.clone(),
            state.upstreams.clone(),
        )))
        .layer(from_fn(render_problems))
        .layer(CompressionLayer::new().compress_when(
            DefaultPredicate::new().and(SizeAbove::new(state.api.compress_min_bytes)),
        ))
        .layer(from_fn(tag_content_coding));
    server::with_common_layers(app, &state.server)
}

/// Serves the mobile BFF on `listener` until `shutdown` completes.
pub async fn serve(
    config: &MobileConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = build_state(config)?;
    state.prime().await;
    server::serve(
        listener,
        router(state),
        shutdown,
        config.server.shutdown_grace(),
    )
    .await?;
    Ok(())
}
