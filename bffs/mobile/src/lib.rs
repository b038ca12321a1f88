//! The mobile BFF: compact, versioned REST/JSON for phone apps on slow networks.
//!
//! v2 ([`v2`]) serves a dashboard, a cursor-paged order list and order details with
//! preformatted values and partial results; v1 ([`v1`]) keeps the legacy page-based shapes
//! alive with core's retirement machinery (headers until its sunset, 410 Gone after).
//! Every GET carries a strong `ETag` and answers
//! `If-None-Match` with 304 ([`representation`]); bodies of `api.compress_min_bytes` and
//! more are gzip- or brotli-compressed by `Accept-Encoding`; every error is RFC 9457
//! problem+json (core's `problem`). Auth, upstream clients, resilience, caching, cursors and
//! parameter parsing come from `switchyard-core`.
//!
//! [`MobileBff`] is what core's BFF skeleton runs. Tests, the sandbox launcher and
//! benchmarks run it in-process through `switchyard_core::bff::App`.

pub mod config;
pub mod representation;
mod state;
mod stream;
pub mod v1;
pub mod v2;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::get;
use http::HeaderMap;
use switchyard_core::ErrorCode;
use switchyard_core::bff::{Bff, Core, api_route_layer};
use switchyard_core::conditional::tag_content_coding;
use switchyard_core::config::ConfigError;
use switchyard_core::problem::{Problem, ProblemResponder, RenderProblemsLayer};
use switchyard_core::versioning::retire;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate, SizeAbove};

pub use crate::config::{ApiConfig, LegacyConfig, MobileConfig};
pub use crate::state::{AppState, AppStateInner, OPENAPI_YAML};

/// The mobile BFF, as core's skeleton runs it.
pub struct MobileBff;

impl Bff for MobileBff {
    const NAME: &'static str = "mobile-bff";
    const ABOUT: &'static str = "Serves the Switchyard mobile BFF (compact REST/JSON).";
    type Config = MobileConfig;
    type State = AppState;
    type Responder = ProblemResponder;

    fn state(config: &MobileConfig, core: &Core) -> Result<AppState, ConfigError> {
        state::build(config, core)
    }

    /// Layers, outermost first (inside core's request id → access log → body limit):
    /// ETag coding suffix → compression → problem rendering → per route: v1 retirement →
    /// auth → usage plan → handler.
    fn router(state: AppState) -> Router {
        let api = api_route_layer(
            state.authenticator.clone(),
            state.limiter.clone(),
            ProblemResponder,
        );
        let v2 = Router::new()
            .route("/v2/dashboard", get(v2::dashboard))
            .route("/v2/orders", get(v2::orders))
            .route("/v2/orders/stream", get(stream::orders_stream))
            .route("/v2/orders/{id}", get(v2::order))
            .route_layer(api.clone());
        // One `route_layer` of a stack, outermost first, not one call per layer: each call
        // boxes every route again. Retirement runs before auth (so v1 errors carry the
        // retirement headers too, and a retired v1 costs nothing).
        let v1 = Router::new()
            .route("/v1/dashboard", get(v1::dashboard))
            .route("/v1/orders", get(v1::orders))
            .route_layer(
                ServiceBuilder::new()
                    .layer(from_fn_with_state(
                        state.retirement.clone(),
                        retire::<ProblemResponder>,
                    ))
                    .layer(api),
            );
        let openapi = state.openapi.clone();
        let compress_min_bytes = state.api.compress_min_bytes;
        v2.merge(v1)
            .route(
                "/openapi.json",
                get(move |headers: HeaderMap| async move { openapi.respond(&headers) }),
            )
            .fallback(|| async {
                Problem::new(ErrorCode::NotFound, "no such endpoint").into_response()
            })
            .with_state(state)
            .layer(
                ServiceBuilder::new()
                    .map_response(tag_content_coding)
                    .layer(CompressionLayer::new().compress_when(
                        DefaultPredicate::new().and(SizeAbove::new(compress_min_bytes)),
                    ))
                    .layer(RenderProblemsLayer),
            )
    }
}
