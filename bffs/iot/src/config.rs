//! The IoT BFF's configuration: the shared core sections plus device settings and limits.

use serde::{Deserialize, Serialize};
use switchyard_core::config::{ConfigError, Validate};

/// Default listen port of the IoT BFF.
pub const DEFAULT_PORT: u16 = 8083;

switchyard_core::bff_config! {
    /// Everything the IoT BFF reads at start-up (`--config` file + `SWITCHYARD_` env). Of
    /// the upstreams, only inventory is called.
    pub struct IotConfig, default port DEFAULT_PORT, {
        /// What devices are told and what a message may hold.
        pub devices: DevicesConfig,
    }
}

/// Device-facing settings and message limits.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DevicesConfig {
    /// Seconds a device waits between reports (ack key 4, settings key 1).
    pub poll_interval_secs: u32,
    /// A count below this is reported back as low stock (ack key 3).
    pub low_stock_below: u32,
    /// Largest count accepted in one reading; larger ones are rejected per reading.
    pub max_quantity: i64,
    /// Most readings in one message.
    pub max_readings: u32,
    /// Largest message body; larger is 413.
    pub max_body_bytes: u32,
    /// Seconds a device is told to wait (`Retry-After`) when inventory is unavailable.
    pub retry_after_secs: u32,
    /// Time budget of one message's upstream call, retries included.
    pub deadline_ms: u64,
    /// How long an ack is remembered for replays of the same `(device, seq)`.
    pub ack_retention_secs: u64,
    /// Most acks remembered, in all.
    pub ack_cache_entries: u64,
    /// Most acks remembered per device (its most recent messages).
    pub acks_per_device: u32,
}

impl Default for DevicesConfig {
    fn default() -> Self {
        Self {
            poll_interval_secs: 60,
            low_stock_below: 10,
            max_quantity: 1_000_000,
            max_readings: 100,
            max_body_bytes: 16 * 1024,
            retry_after_secs: 5,
            deadline_ms: 2_000,
            ack_retention_secs: 24 * 3600,
            ack_cache_entries: 100_000,
            acks_per_device: 64,
        }
    }
}

impl Validate for DevicesConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            (
                "devices.poll_interval_secs",
                u64::from(self.poll_interval_secs),
            ),
            ("devices.max_readings", u64::from(self.max_readings)),
            ("devices.max_body_bytes", u64::from(self.max_body_bytes)),
            ("devices.retry_after_secs", u64::from(self.retry_after_secs)),
            ("devices.deadline_ms", self.deadline_ms),
            ("devices.ack_retention_secs", self.ack_retention_secs),
            ("devices.acks_per_device", u64::from(self.acks_per_device)),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::invalid(key, "expected a value greater than 0"));
            }
        }
        if self.max_readings > 100 {
            return Err(ConfigError::invalid(
                "devices.max_readings",
                "expected at most 100, the largest batch the inventory service accepts",
            ));
        }
        if self.max_quantity < 0 {
            return Err(ConfigError::invalid(
                "devices.max_quantity",
                "expected a value of at least 0",
            ));
        }
        Ok(())
    }
}
