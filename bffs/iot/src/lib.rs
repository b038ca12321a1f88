//! The IoT BFF: CBOR over HTTP for warehouse devices.
//!
//! Devices post stock readings (`POST /v1/readings`) as compact CBOR maps with integer keys
//! (`schema/iot.cddl`) and get a CBOR ack telling them what was applied, what is low, and
//! when to report again. The decoder ([`message`]) is strict and bounded; the handler
//! ([`readings`]) gives each message exactly-once effect upstream. Auth, the inventory
//! client, deadlines, breakers and retries come from `switchyard-core`; [`IotBff`] is what
//! its BFF skeleton runs.

mod acks;
pub mod config;
pub mod errors;
pub mod message;
pub mod readings;
pub mod samples;
mod state;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use switchyard_core::ErrorCode;
use switchyard_core::bff::{Bff, Core, api_route_layer};
use switchyard_core::config::ConfigError;

pub use crate::config::{DevicesConfig, IotConfig};
use crate::errors::{CborErrorResponder, DeviceError};
pub use crate::state::{AppState, AppStateInner};

/// The IoT BFF, as core's skeleton runs it.
pub struct IotBff;

impl Bff for IotBff {
    const NAME: &'static str = "iot-bff";
    const ABOUT: &'static str = "Serves the Switchyard IoT BFF (CBOR over HTTP).";
    type Config = IotConfig;
    type State = AppState;
    type Responder = CborErrorResponder;
    // Measured: a 20-reading message took 1.31 times its floor's CPU on the connection
    // workers and 1.04 times on the shared runtime (three runs each, BENCHMARKS.md).
    const PIN_CONNECTIONS: bool = false;

    fn state(config: &IotConfig, core: &Core) -> Result<AppState, ConfigError> {
        state::build(config, core)
    }

    /// Layers, outermost first (inside core's request id → access log → body limit): per
    /// route, auth (CBOR errors) → usage plan (1 unit a message) → the message body limit →
    /// handler.
    fn router(state: AppState) -> Router {
        let api = api_route_layer(
            state.authenticator.clone(),
            state.limiter.clone(),
            CborErrorResponder,
        );
        let max_body_bytes = state.devices.max_body_bytes as usize;
        Router::new()
            .route(
                "/v1/readings",
                post(readings::post_readings).layer(DefaultBodyLimit::max(max_body_bytes)),
            )
            .route("/v1/config", get(readings::get_config))
            .route_layer(api)
            .fallback(|| async {
                DeviceError::new(ErrorCode::NotFound, "no such endpoint").into_response()
            })
            .with_state(state)
    }
}
