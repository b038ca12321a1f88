//! The partner BFF's configuration: the shared core sections plus page sizes and the time
//! budget of the partner API.

use serde::{Deserialize, Serialize};
use switchyard_core::config::{ConfigError, Validate};

/// Default listen port of the partner BFF.
pub const DEFAULT_PORT: u16 = 8084;

switchyard_core::bff_config! {
    /// Everything the partner BFF reads at start-up (`--config` file + `SWITCHYARD_` env).
    pub struct PartnerConfig, default port DEFAULT_PORT, {
        /// Page sizes and time budget of the partner API.
        pub partner: PartnerApiConfig,
    }
}

/// Limits of the partner API (section `partner`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PartnerApiConfig {
    /// Time budget of one request across all its upstream calls.
    pub deadline_ms: u64,
    /// Page size of `/partner/v1/orders` when `limit` is omitted.
    pub default_page_size: u32,
    /// Largest `limit` accepted; larger values are rejected, not clamped.
    pub max_page_size: u32,
}

impl Default for PartnerApiConfig {
    fn default() -> Self {
        Self {
            deadline_ms: 2_000,
            default_page_size: 50,
            max_page_size: 100,
        }
    }
}

impl Validate for PartnerApiConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        switchyard_core::config::require_positive("partner.deadline_ms", self.deadline_ms)?;
        if !(1..=100).contains(&self.max_page_size) {
            return Err(ConfigError::invalid(
                "partner.max_page_size",
                "expected 1 to 100 (the orders service serves at most 100 per page)",
            ));
        }
        if !(1..=self.max_page_size).contains(&self.default_page_size) {
            return Err(ConfigError::invalid(
                "partner.default_page_size",
                format!(
                    "expected 1 to partner.max_page_size ({})",
                    self.max_page_size
                ),
            ));
        }
        Ok(())
    }
}
