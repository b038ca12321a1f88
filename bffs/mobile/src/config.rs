//! The mobile BFF's configuration: the shared core sections plus API limits, stock-level
//! thresholds and the retirement dates of API v1.

use serde::{Deserialize, Serialize};
use switchyard_core::config::{ConfigError, Validate};
use switchyard_core::versioning::RetirementConfig;

/// Default listen port of the mobile BFF.
pub const DEFAULT_PORT: u16 = 8082;

switchyard_core::bff_config! {
    /// Everything the mobile BFF reads at start-up (`--config` file + `SWITCHYARD_` env).
    pub struct MobileConfig, default port DEFAULT_PORT, {
        /// Page sizes, time budget and stock thresholds of the v2 API.
        pub api: ApiConfig,
        /// Retirement of API v1.
        pub v1: LegacyConfig,
        /// Where order events come from (`/v2/orders/stream`).
        pub events: switchyard_core::streaming::EventsConfig,
        /// Limits of `/v2/orders/stream`.
        pub streams: switchyard_core::streaming::StreamsConfig,
    }
}

/// Limits and thresholds of the v2 API.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Time budget of one request across all its upstream calls.
    pub deadline_ms: u64,
    /// Page size of `/v2/orders` when `limit` is omitted.
    pub default_page_size: u32,
    /// Largest `limit` accepted; larger values are rejected, not clamped.
    pub max_page_size: u32,
    /// Recent orders shown on the dashboard.
    pub dashboard_orders: u32,
    /// An item with fewer units available than this is `low` (and `out` at zero).
    pub low_stock_below: i64,
    /// Bodies smaller than this many bytes are sent uncompressed whatever the client
    /// accepts: a body that fits in one packet arrives no sooner compressed, while every
    /// compressed response costs a fresh compressor (hundreds of kilobytes of state).
    pub compress_min_bytes: u16,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            deadline_ms: 800,
            default_page_size: 20,
            max_page_size: 50,
            dashboard_orders: 5,
            low_stock_below: 10,
            compress_min_bytes: 1024,
        }
    }
}

impl Validate for ApiConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.deadline_ms == 0 {
            return Err(ConfigError::invalid(
                "api.deadline_ms",
                "expected a value greater than 0",
            ));
        }
        if !(1..=100).contains(&self.max_page_size) {
            return Err(ConfigError::invalid(
                "api.max_page_size",
                "expected 1 to 100 (the orders service serves at most 100 per page)",
            ));
        }
        if !(1..=self.max_page_size).contains(&self.default_page_size) {
            return Err(ConfigError::invalid(
                "api.default_page_size",
                format!("expected 1 to api.max_page_size ({})", self.max_page_size),
            ));
        }
        if !(1..=20).contains(&self.dashboard_orders) {
            return Err(ConfigError::invalid(
                "api.dashboard_orders",
                "expected 1 to 20",
            ));
        }
        if self.low_stock_below < 1 {
            return Err(ConfigError::invalid(
                "api.low_stock_below",
                "expected at least 1",
            ));
        }
        Ok(())
    }
}

/// When API v1 was deprecated and when it goes away (`v1.deprecated_on`, `v1.sunset_on`,
/// `YYYY-MM-DD`, UTC midnight). From the sunset on, v1 answers 410 Gone.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LegacyConfig(pub RetirementConfig);

impl Default for LegacyConfig {
    fn default() -> Self {
        Self(RetirementConfig {
            deprecated_on: time::macros::date!(2026 - 09 - 01),
            sunset_on: time::macros::date!(2027 - 06 - 30),
        })
    }
}

impl std::ops::Deref for LegacyConfig {
    type Target = RetirementConfig;

    fn deref(&self) -> &RetirementConfig {
        &self.0
    }
}

impl std::ops::DerefMut for LegacyConfig {
    fn deref_mut(&mut self) -> &mut RetirementConfig {
        &mut self.0
    }
}

impl Validate for LegacyConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.0.validate_as("v1")
    }
}
