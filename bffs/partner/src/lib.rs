//! The partner BFF: stable, versioned REST/JSON for third-party integrations.
//!
//! Partners list stock levels and orders across customers ([`v1`]). They authenticate with
//! OAuth2 client-credentials JWTs (`sub` = the partner) or, for internal services, API keys
//! (`Authorization: ApiKey <key>`); both go through core's `Authenticator`. Customer
//! e-mail and phone are always masked: a partner never sees PII. Errors are RFC 9457
//! problem+json. Everything else (upstream clients, resilience, caching, cursors, parameter
//! parsing, serving) is core's; [`PartnerBff`] is what its BFF skeleton runs.

pub mod config;
pub mod v1;

use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use http::HeaderMap;
use switchyard_core::ErrorCode;
use switchyard_core::auth::Authenticator;
use switchyard_core::bff::{Bff, Core, api_route_layer};
use switchyard_core::config::ConfigError;
use switchyard_core::openapi::OpenApiDocument;
use switchyard_core::problem::{Problem, ProblemResponder, RenderProblemsLayer};
use switchyard_core::ratelimit::Limiter;
use switchyard_core::upstream::Upstreams;

pub use crate::config::{PartnerApiConfig, PartnerConfig};

/// The checked-in OpenAPI document, served at `/openapi.json`.
pub const OPENAPI_YAML: &str = include_str!("../../../schema/partner.openapi.yaml");

/// What the handlers need, built once per process (one `Arc`: axum clones it per request).
pub type AppState = Arc<AppStateInner>;

/// The parts of [`AppState`].
pub struct AppStateInner {
    upstreams: Upstreams,
    authenticator: Authenticator,
    limiter: Option<Limiter>,
    api: PartnerApiConfig,
    openapi: OpenApiDocument,
}

/// The partner BFF, as core's skeleton runs it.
pub struct PartnerBff;

impl Bff for PartnerBff {
    const NAME: &'static str = "partner-bff";
    const ABOUT: &'static str = "Serves the Switchyard partner BFF (versioned REST/JSON).";
    type Config = PartnerConfig;
    type State = AppState;
    type Responder = ProblemResponder;

    fn state(config: &PartnerConfig, core: &Core) -> Result<AppState, ConfigError> {
        Ok(Arc::new(AppStateInner {
            upstreams: core.upstreams.clone(),
            authenticator: core.authenticator.clone(),
            limiter: core.limiter.clone(),
            api: config.partner.clone(),
            openapi: OpenApiDocument::from_yaml("schema/partner.openapi.yaml", OPENAPI_YAML)?,
        }))
    }

    /// Layers, outermost first (inside core's request id → access log → body limit):
    /// problem rendering → per route: auth → usage plan → handler.
    fn router(state: AppState) -> Router {
        let api = api_route_layer(
            state.authenticator.clone(),
            state.limiter.clone(),
            ProblemResponder,
        );
        let openapi = state.openapi.clone();
        Router::new()
            .route("/partner/v1/stock", get(v1::stock))
            .route("/partner/v1/orders", get(v1::orders))
            .route_layer(api)
            .route(
                "/openapi.json",
                get(move |headers: HeaderMap| async move { openapi.respond(&headers) }),
            )
            .fallback(|| async {
                Problem::new(ErrorCode::NotFound, "no such endpoint").into_response()
            })
            .with_state(state)
            .layer(RenderProblemsLayer)
    }
}
