//! The mobile BFF's process-wide state: built once, shared by every request.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use switchyard_core::auth::Authenticator;
use switchyard_core::bff::Core;
use switchyard_core::config::ConfigError;
use switchyard_core::metrics::Metrics;
use switchyard_core::openapi::{OpenApiDocument, set_parameter_schema};
use switchyard_core::problem::ProblemResponder;
use switchyard_core::ratelimit::Limiter;
use switchyard_core::streaming::OrderFeed;
use switchyard_core::upstream::{Freshness, Upstreams, within_budget};
use switchyard_core::versioning::Retirement;

use crate::config::{ApiConfig, MobileConfig};

/// The checked-in OpenAPI document, served at `/openapi.json`.
pub const OPENAPI_YAML: &str = include_str!("../../../schema/mobile.openapi.yaml");

/// Everything a request handler needs, built once per process. Handlers and middleware
/// take it by value (axum clones the state for every request), so it is one shared
/// allocation: a clone is one reference-count increment, not one per part.
pub type AppState = Arc<AppStateInner>;

/// The parts of [`AppState`].
pub struct AppStateInner {
    pub(crate) upstreams: Upstreams,
    pub(crate) authenticator: Authenticator,
    pub(crate) limiter: Option<Limiter>,
    pub(crate) api: ApiConfig,
    pub(crate) retirement: Retirement<ProblemResponder>,
    pub(crate) openapi: OpenApiDocument,
    pub(crate) feed: OrderFeed,
    pub(crate) metrics: Metrics,
}

impl AppStateInner {
    /// Runs one request's upstream work under the configured deadline, reporting whether
    /// stale cached data was served.
    pub(crate) fn within_budget<F: Future>(
        &self,
        work: F,
    ) -> impl Future<Output = (F::Output, Freshness)> + use<F> {
        within_budget(Duration::from_millis(self.api.deadline_ms), work)
    }
}

/// `/v1/<rest>` is succeeded by `/v2/<rest>`.
fn successor_of(path: &str) -> Option<String> {
    path.strip_prefix("/v1/").map(|rest| format!("/v2/{rest}"))
}

/// The OpenAPI document as this BFF serves it: the page-size bounds are the configured
/// ones, so that clients and fuzzers generating from it send what is accepted.
fn served_document(api: &ApiConfig) -> Result<OpenApiDocument, ConfigError> {
    OpenApiDocument::from_yaml_adjusted("schema/mobile.openapi.yaml", OPENAPI_YAML, |document| {
        let bounds = [
            ("/v2/orders", "limit", "maximum", api.max_page_size),
            ("/v2/orders", "limit", "default", api.default_page_size),
            ("/v1/orders", "per_page", "maximum", api.max_page_size),
            ("/v1/orders", "per_page", "default", api.default_page_size),
            (
                "/v1/orders",
                "page",
                "maximum",
                crate::v1::last_page(api.max_page_size),
            ),
        ];
        for (path, parameter, keyword, value) in bounds {
            set_parameter_schema(document, path, "get", parameter, keyword, value.into());
        }
    })
}

/// Wires the API for `config` over core's clients and authenticator.
pub(crate) fn build(config: &MobileConfig, core: &Core) -> Result<AppState, ConfigError> {
    Ok(Arc::new(AppStateInner {
        upstreams: core.upstreams.clone(),
        authenticator: core.authenticator.clone(),
        limiter: core.limiter.clone(),
        api: config.api.clone(),
        retirement: Retirement::new(&config.v1, successor_of, ProblemResponder),
        openapi: served_document(&config.api)?,
        feed: OrderFeed::from_config(
            &config.events,
            &config.streams,
            &config.upstreams,
            core.shutdown.clone(),
        )?,
        metrics: core.metrics.clone(),
    }))
}
