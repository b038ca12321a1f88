//! The web BFF: GraphQL over HTTP for web dashboards.
//!
//! [`build_state`] wires the process-wide parts (upstream clients, authenticator, schema,
//! document cache) once; [`router`] serves them. Tests, the sandbox launcher and benchmarks
//! run the router in-process; `main.rs` only adds config loading, logging and a socket.

pub mod config;
mod document;
pub mod errors;
mod fetchers;
mod http;
pub mod loader;
pub mod schema;

use std::sync::Arc;

use async_graphql::{EmptyMutation, EmptySubscription, Schema};
use axum::Router;
use axum::routing::get;
use switchyard_core::auth::Authenticator;
use switchyard_core::config::ConfigError;
use switchyard_core::server::{self, Readiness};
use switchyard_core::upstream::Upstreams;
use tokio::net::TcpListener;

pub use crate::config::{GraphqlConfig, WebConfig};
use crate::document::DocumentCache;
use crate::schema::{PageLimits, QueryRoot, WebSchema};

/// Everything a request handler needs, built once per process. Handlers and middleware
/// take it by value (axum clones the state for every request), so it is one shared
/// allocation: a clone is one reference-count increment, not one per part.
pub type AppState = Arc<AppStateInner>;

/// The parts of [`AppState`].
pub struct AppStateInner {
    schema: WebSchema,
    upstreams: Upstreams,
    authenticator: Authenticator,
    documents: Arc<DocumentCache>,
    limits: Arc<GraphqlConfig>,
    server: Arc<switchyard_core::config::ServerConfig>,
}

/// Builds the schema with the configured limits (also used to print `schema/web.graphql`).
pub fn build_schema(limits: &GraphqlConfig, upstreams: Option<Upstreams>) -> WebSchema {
    let mut builder = Schema::build(QueryRoot, EmptyMutation, EmptySubscription)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_directives(10)
        .data(PageLimits {
            max_page_size: limits.max_page_size,
        });
    if let Some(upstreams) = upstreams {
        builder = builder.data(upstreams);
    }
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    if !limits.suggestions {
        builder = builder.disable_suggestions();
    }
    builder.finish()
}

/// The schema in SDL, exactly as checked in at `schema/web.graphql`.
pub fn sdl() -> String {
    build_schema(&GraphqlConfig::default(), None).sdl()
}

/// Wires clients, auth and schema for `config`, using the given upstream clients.
pub fn build_state_with(config: &WebConfig, upstreams: Upstreams) -> Result<AppState, ConfigError> {
    let authenticator = Authenticator::new(&config.auth)?;
    Ok(Arc::new(AppStateInner {
        schema: build_schema(&config.graphql, Some(upstreams.clone())),
        upstreams,
        authenticator,
        documents: Arc::new(DocumentCache::new(config.graphql.document_cache_entries)),
        limits: Arc::new(config.graphql.clone()),
        server: Arc::new(config.server.clone()),
    }))
}

/// Wires HTTP upstream clients, auth and schema for `config`.
pub fn build_state(config: &WebConfig) -> Result<AppState, ConfigError> {
    build_state_with(config, Upstreams::from_config(&config.upstreams)?)
}

impl AppStateInner {
    /// Loads the signing keys now rather than on the first request; failures are logged and
    /// retried later (readiness reports them).
    pub async fn prime(&self) {
        self.authenticator.prime_or_warn().await;
    }
}

/// The web BFF's routes and middleware.
pub fn router(state: AppState) -> Router {
    let server_config = Arc::clone(&state.server);
    let api = Router::new()
        .route("/graphql", get(http::graphql_get).post(http::graphql_post))
        .with_state(state.clone())
        .merge(server::health_routes(Readiness::new(
            state.authenticator.clone(),
            state.upstreams.clone(),
        )));
    server::with_common_layers(api, &server_config)
}

/// Serves the web BFF on `listener` until `shutdown` completes.
pub async fn serve(
    config: &WebConfig,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
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
