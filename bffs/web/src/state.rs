//! The web BFF's process-wide state: built once, shared by every request.

use std::sync::Arc;

use switchyard_core::auth::Authenticator;
use switchyard_core::bff::Core;
use switchyard_core::config::ConfigError;
use switchyard_core::metrics::Metrics;
use switchyard_core::ratelimit::Limiter;
use switchyard_core::streaming::OrderFeed;
use switchyard_core::upstream::Upstreams;

use crate::build_schema;
use crate::config::{GraphqlConfig, WebConfig};
use crate::document::DocumentCache;
use crate::persisted::PersistedQueries;
use crate::schema::WebSchema;

/// Everything a request handler needs, built once per process. Handlers and middleware
/// take it by value (axum clones the state for every request), so it is one shared
/// allocation: a clone is one reference-count increment, not one per part.
pub type AppState = Arc<AppStateInner>;

/// The parts of [`AppState`].
pub struct AppStateInner {
    pub(crate) schema: WebSchema,
    pub(crate) upstreams: Upstreams,
    pub(crate) authenticator: Authenticator,
    pub(crate) limiter: Option<Limiter>,
    pub(crate) documents: DocumentCache,
    pub(crate) limits: GraphqlConfig,
    /// Whether browsers get GraphiQL (off in production unless `graphql.graphiql`).
    pub(crate) graphiql: bool,
    /// Order events for subscriptions.
    pub(crate) feed: OrderFeed,
    pub(crate) metrics: Metrics,
    /// Persisted queries (APQ or the trusted manifest).
    pub(crate) persisted: PersistedQueries,
    /// Operations run on the prepared path so far.
    pub(crate) prepared_runs: std::sync::atomic::AtomicU64,
}

impl AppStateInner {
    /// How many operations ran on the prepared-operation path (the rest ran on
    /// async-graphql).
    pub fn prepared_runs(&self) -> u64 {
        self.prepared_runs
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Wires the schema and the document cache for `config` over core's clients.
pub(crate) fn build(config: &WebConfig, core: &Core) -> Result<AppState, ConfigError> {
    let feed = OrderFeed::from_config(
        &config.events,
        &config.streams,
        &config.upstreams,
        core.shutdown.clone(),
    )?;
    Ok(Arc::new(AppStateInner {
        schema: build_schema(
            &config.graphql,
            config.profile,
            Some(core.upstreams.clone()),
            Some(feed.clone()),
        ),
        feed,
        metrics: core.metrics.clone(),
        upstreams: core.upstreams.clone(),
        authenticator: core.authenticator.clone(),
        limiter: core.limiter.clone(),
        documents: DocumentCache::new(
            config.graphql.document_cache_entries,
            config.graphql.document_cache_bytes,
        ),
        persisted: PersistedQueries::from_config(&config.graphql, core.redis.as_ref())?,
        prepared_runs: std::sync::atomic::AtomicU64::new(0),
        limits: config.graphql.clone(),
        graphiql: config.graphql.graphiql_on(config.profile),
    }))
}
