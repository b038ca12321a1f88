//! The web BFF's configuration: the shared core sections plus GraphQL limits.

use serde::{Deserialize, Serialize};
use switchyard_core::config::{ConfigError, Profile, Validate};

/// Default listen port of the web BFF.
pub const DEFAULT_PORT: u16 = 8081;

switchyard_core::bff_config! {
    /// Everything the web BFF reads at start-up (`--config` file + `SWITCHYARD_` env).
    pub struct WebConfig, default port DEFAULT_PORT, {
        /// GraphQL limits and features.
        pub graphql: GraphqlConfig,
        /// Where order events come from (`Subscription.orderUpdated`).
        pub events: switchyard_core::streaming::EventsConfig,
        /// Limits of subscriptions (over WebSocket and SSE).
        pub streams: switchyard_core::streaming::StreamsConfig,
    }
}

/// Limits that keep one query from costing more than a page of the dashboard should.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphqlConfig {
    /// Deepest selection nesting accepted.
    pub max_depth: usize,
    /// Highest complexity accepted: every field costs 1, and a connection multiplies the
    /// cost of its nodes by its page size (`first`).
    pub max_complexity: usize,
    /// Most aliases in one document.
    pub max_aliases: usize,
    /// Most operations in one batched request.
    pub max_batch: usize,
    /// Most lexical tokens in a query, counted before it is parsed.
    pub max_tokens: usize,
    /// Deepest nesting of brackets in a query, checked before it is parsed (the parser
    /// recurses on nesting).
    pub max_nesting: usize,
    /// Most fields in one operation once its fragments are expanded (`__typename` and
    /// introspection fields included).
    pub max_fields: usize,
    /// Most directives on one field.
    pub max_directives: usize,
    /// Largest page (`first`) a connection accepts; larger values are rejected, not clamped.
    pub max_page_size: u32,
    /// Whether `__schema`/`__type` introspection is answered (unset: on in development,
    /// off in production).
    pub introspection: Option<bool>,
    /// Whether validation errors suggest similar field names ("did you mean …"; unset: on
    /// in development, off in production).
    pub suggestions: Option<bool>,
    /// Whether a browser's `GET /graphql` gets GraphiQL (unset: on in development, off in
    /// production).
    pub graphiql: Option<bool>,
    /// Parsed documents kept, keyed by query text (only documents that validated).
    pub document_cache_entries: usize,
    /// About how much memory parsed documents may take, estimated from their text.
    pub document_cache_bytes: usize,
    /// Time budget of one GraphQL request across all its upstream calls; no upstream call
    /// starts after it, and each call's timeout is cut to what remains.
    pub deadline_ms: u64,
    /// Complexity per usage-plan unit: an operation costs
    /// `max(1, ceil(complexity / cost_per_unit))` units.
    pub cost_per_unit: usize,
    /// Persisted queries: `off`, `apq` (Apollo's automatic persisted queries, shared
    /// through Redis when `redis.url` is set) or `trusted` (only the operations of
    /// `trusted_manifest`).
    pub persisted_queries: PersistedQueryMode,
    /// The manifest `trusted` mode accepts (Apollo's persisted-query manifest format;
    /// `web-bff --print-manifest <dir>` writes it from a folder of `.graphql` files).
    pub trusted_manifest: Option<std::path::PathBuf>,
    /// Whether queries the prepared-operation executor covers run on it (planned once,
    /// written straight to bytes) rather than on async-graphql's executor.
    pub prepared_executor: bool,
    /// APQ queries this replica keeps in memory (all of them without Redis; the ones it
    /// served recently with it), each for 24 h.
    pub persisted_query_entries: u64,
}

/// `graphql.persisted_queries`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PersistedQueryMode {
    /// `extensions.persistedQuery` is refused (`PERSISTED_QUERY_NOT_SUPPORTED` message).
    Off,
    /// A client may send a query's SHA-256 instead of its text once it has been sent
    /// with it.
    #[default]
    Apq,
    /// Only operations of the manifest run, by hash or by their exact text.
    Trusted,
}

impl Default for GraphqlConfig {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_complexity: 1_000,
            max_aliases: 30,
            max_batch: 10,
            max_tokens: 15_000,
            max_nesting: 64,
            max_fields: 300,
            max_directives: 10,
            max_page_size: 100,
            introspection: None,
            suggestions: None,
            graphiql: None,
            document_cache_entries: 1_000,
            document_cache_bytes: 8 * 1024 * 1024,
            deadline_ms: 800,
            cost_per_unit: 100,
            persisted_queries: PersistedQueryMode::default(),
            trusted_manifest: None,
            persisted_query_entries: 10_000,
            prepared_executor: true,
        }
    }
}

/// A development aid: on unless the profile is production or the key says otherwise.
fn development_aid(explicit: Option<bool>, profile: Profile) -> bool {
    explicit.unwrap_or(!profile.is_production())
}

impl GraphqlConfig {
    /// Whether introspection is answered under `profile`.
    pub fn introspection_on(&self, profile: Profile) -> bool {
        development_aid(self.introspection, profile)
    }

    /// Whether validation errors suggest field names under `profile`.
    pub fn suggestions_on(&self, profile: Profile) -> bool {
        development_aid(self.suggestions, profile)
    }

    /// Whether GraphiQL is served under `profile`.
    pub fn graphiql_on(&self, profile: Profile) -> bool {
        development_aid(self.graphiql, profile)
    }
}

impl Validate for GraphqlConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("graphql.max_depth", self.max_depth),
            ("graphql.max_complexity", self.max_complexity),
            ("graphql.max_batch", self.max_batch),
            ("graphql.max_tokens", self.max_tokens),
            ("graphql.max_nesting", self.max_nesting),
            ("graphql.max_fields", self.max_fields),
            ("graphql.max_page_size", self.max_page_size as usize),
            ("graphql.deadline_ms", self.deadline_ms as usize),
            ("graphql.cost_per_unit", self.cost_per_unit),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::invalid(key, "expected a value greater than 0"));
            }
        }
        if self.persisted_queries == PersistedQueryMode::Trusted && self.trusted_manifest.is_none()
        {
            return Err(ConfigError::invalid(
                "graphql.trusted_manifest",
                "trusted persisted queries need the manifest's path",
            ));
        }
        if self.max_page_size > 100 {
            return Err(ConfigError::invalid(
                "graphql.max_page_size",
                "expected at most 100, the largest page the orders service serves",
            ));
        }
        Ok(())
    }
}
