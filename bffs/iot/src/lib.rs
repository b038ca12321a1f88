//! The IoT BFF: CBOR over HTTP for warehouse devices.
//!
//! Devices post stock readings (`POST /v1/readings`) as compact CBOR maps with integer keys
//! (`schema/iot.cddl`) and get a CBOR ack telling them what was applied, what is low, and
//! when to report again. The decoder ([`message`]) is strict and bounded; the handler
//! ([`readings`]) gives each message exactly-once effect upstream. Auth, the inventory
//! client, deadlines, breakers and retries come from `switchyard-core`.

pub mod config;
pub mod errors;
pub mod message;
pub mod readings;
pub mod samples;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use switchyard_core::ErrorCode;
use switchyard_core::auth::{self, AuthState, Authenticator};
use switchyard_core::config::{ConfigError, ServerConfig};
use switchyard_core::server::{self, Readiness};
use switchyard_core::upstream::Upstreams;
use tokio::net::TcpListener;

pub use crate::config::{DevicesConfig, IotConfig};
use crate::errors::{CborErrorResponder, DeviceError};
use crate::message::{Limits, Settings};
use crate::readings::{AckBook, Acks};

/// Everything a request handler needs, built once per process. Handlers and middleware
/// take it by value (axum clones the state for every request), so it is one shared
/// allocation: a clone is one reference-count increment, not one per part.
pub type AppState = Arc<AppStateInner>;

/// The parts of [`AppState`].
pub struct AppStateInner {
    upstreams: Upstreams,
    authenticator: Authenticator,
    devices: Arc<DevicesConfig>,
    limits: Limits,
    settings: Settings,
    acks: Acks,
    server: Arc<ServerConfig>,
}

impl AppStateInner {
    /// Loads the signing keys now rather than on the first request.
    pub async fn prime(&self) {
        self.authenticator.prime_or_warn().await;
    }
}

/// Wires auth and the device API for `config`, using the given upstream clients.
pub fn build_state_with(config: &IotConfig, upstreams: Upstreams) -> Result<AppState, ConfigError> {
    let devices = &config.devices;
    Ok(Arc::new(AppStateInner {
        upstreams,
        authenticator: Authenticator::new(&config.auth)?,
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
        acks: Arc::new(AckBook::new(
            devices.ack_cache_entries,
            Duration::from_secs(devices.ack_retention_secs),
        )),
        devices: Arc::new(devices.clone()),
        server: Arc::new(config.server.clone()),
    }))
}

/// Wires the HTTP upstream clients, auth and the device API for `config`.
pub fn build_state(config: &IotConfig) -> Result<AppState, ConfigError> {
    build_state_with(config, Upstreams::from_config(&config.upstreams)?)
}

/// The IoT BFF's routes and middleware. Layers, outermost first: the common ones (request
/// id, access log, body limit) → per route: auth (CBOR errors) → the message body limit →
/// handler.
pub fn router(state: AppState) -> Router {
    let authenticate = from_fn_with_state(
        AuthState::new(state.authenticator.clone(), CborErrorResponder),
        auth::middleware::<CborErrorResponder>,
    );
    let app = Router::new()
        .route(
            "/v1/readings",
            post(readings::post_readings)
                .layer(DefaultBodyLimit::max(state.devices.max_body_bytes as usize)),
        )
        .route("/v1/config", get(readings::get_config))
        .route_layer(authenticate)
        .fallback(|| async {
            DeviceError::new(ErrorCode::NotFound, "no such endpoint").into_response()
        })
        .with_state(state.clone())
        .merge(server::health_routes(Readiness::new(
            state.authenticator.clone(),
            state.upstreams.clone(),
        )));
    server::with_common_layers(app, &state.server)
}

/// Serves the IoT BFF on `listener` until `shutdown` completes.
pub async fn serve(
    config: &IotConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
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
