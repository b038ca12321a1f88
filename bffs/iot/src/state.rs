//! The IoT BFF's process-wide state: built once, shared by every request.

use std::sync::Arc;
use std::time::Duration;

use switchyard_core::auth::Authenticator;
use switchyard_core::bff::Core;
use switchyard_core::config::ConfigError;
use switchyard_core::ratelimit::Limiter;
use switchyard_core::upstream::Upstreams;

use crate::acks::AckLedger;
use crate::config::{DevicesConfig, IotConfig};
use crate::message::{Limits, Settings};

/// Everything a request handler needs, built once per process. Handlers and middleware
/// take it by value (axum clones the state for every request), so it is one shared
/// allocation: a clone is one reference-count increment, not one per part.
pub type AppState = Arc<AppStateInner>;

/// The parts of [`AppState`].
pub struct AppStateInner {
    pub(crate) upstreams: Upstreams,
    pub(crate) authenticator: Authenticator,
    pub(crate) limiter: Option<Limiter>,
    pub(crate) devices: DevicesConfig,
    pub(crate) limits: Limits,
    pub(crate) settings: Settings,
    pub(crate) acks: AckLedger,
}

/// Wires the device API for `config` over core's clients and authenticator.
pub(crate) fn build(config: &IotConfig, core: &Core) -> Result<AppState, ConfigError> {
    let devices = &config.devices;
    Ok(Arc::new(AppStateInner {
        upstreams: core.upstreams.clone(),
        authenticator: core.authenticator.clone(),
        limiter: core.limiter.clone(),
        limits: Limits {
            max_readings: devices.max_readings as usize,
            ..Limits::default()
        },
        settings: Settings {
            poll_interval_secs: devices.poll_interval_secs,
            low_stock_below: devices.low_stock_below,
            max_readings: devices.max_readings,
            max_body_bytes: devices.max_body_bytes,
        },
        acks: AckLedger::new(
            devices.ack_cache_entries,
            devices.acks_per_device,
            Duration::from_secs(devices.ack_retention_secs),
            core.redis.as_ref(),
        ),
        devices: devices.clone(),
    }))
}
