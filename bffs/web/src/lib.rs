//! The web BFF: GraphQL over HTTP for web dashboards.
//!
//! [`WebBff`] is what core's BFF skeleton runs: [`state`] wires the process-wide parts
//! (schema, document cache) over core's upstream clients and authenticator, and the router
//! serves `/graphql`. Tests, the sandbox launcher and benchmarks run it in-process through
//! `switchyard_core::bff::App`; `main.rs` only adds `--print-schema` and `--print-manifest`.

pub mod config;
mod cost;
mod document;
pub mod errors;
mod fetchers;
mod graphiql;
mod http;
pub mod loader;
pub mod manifest;
mod passes;
mod persisted;
mod prepared;
pub mod schema;
mod sse;
mod state;
pub mod subscription;
mod usage;
mod ws;

use async_graphql::{EmptyMutation, Schema};
use axum::Router;
use axum::routing::get;
use switchyard_core::bff::{Bff, Core};
use switchyard_core::config::{ConfigError, Profile};
use switchyard_core::upstream::Upstreams;

pub use crate::config::{GraphqlConfig, WebConfig};
use crate::errors::GraphqlErrorResponder;
use crate::schema::{PageLimits, QueryRoot, WebSchema};
pub use crate::state::{AppState, AppStateInner};
use crate::subscription::SubscriptionRoot;
use switchyard_core::streaming::OrderFeed;

/// The web BFF, as core's skeleton runs it.
pub struct WebBff;

impl Bff for WebBff {
    const NAME: &'static str = "web-bff";
    const ABOUT: &'static str = "Serves the Switchyard web BFF (GraphQL over HTTP).";
    type Config = WebConfig;
    type State = AppState;
    type Responder = GraphqlErrorResponder;

    fn state(config: &WebConfig, core: &Core) -> Result<AppState, ConfigError> {
        state::build(config, core)
    }

    /// `/graphql` authenticates inside its handler (a browser without a token must still
    /// get GraphiQL), so the web BFF adds no layers of its own to core's.
    fn router(state: AppState) -> Router {
        Router::new()
            .route("/graphql", get(http::graphql_get).post(http::graphql_post))
            .route("/graphql/ws", get(ws::upgrade))
            .route("/graphql/stream", axum::routing::post(sse::stream))
            .with_state(state)
    }
}

/// Builds the schema with the configured limits (also used to print `schema/web.graphql`).
pub fn build_schema(
    limits: &GraphqlConfig,
    profile: Profile,
    upstreams: Option<Upstreams>,
    feed: Option<OrderFeed>,
) -> WebSchema {
    let mut builder = Schema::build(QueryRoot, EmptyMutation, SubscriptionRoot)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_directives(limits.max_directives)
        .extension(usage::UsagePlan)
        .data(PageLimits {
            max_page_size: limits.max_page_size,
        });
    if let Some(upstreams) = upstreams {
        builder = builder.data(upstreams);
    }
    if let Some(feed) = feed {
        builder = builder.data(feed);
    }
    if !limits.introspection_on(profile) {
        builder = builder.disable_introspection();
    }
    if !limits.suggestions_on(profile) {
        builder = builder.disable_suggestions();
    }
    builder.finish()
}

/// The schema in SDL, exactly as checked in at `schema/web.graphql`.
pub fn sdl() -> String {
    build_schema(&GraphqlConfig::default(), Profile::Development, None, None).sdl()
}
