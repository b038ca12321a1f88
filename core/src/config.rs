//! Loading typed configuration: the layering, the errors, validation, and the two sections
//! that belong to no feature (`server`, `log`).
//!
//! Each feature owns its own section beside its code (`auth.*` in [`crate::auth`],
//! `upstreams.*` in [`crate::upstream`]); a BFF's top-level config struct is declared with
//! [`crate::bff_config!`]. A BFF's settings come from its defaults (which point at the sandbox), overlaid by an
//! optional TOML file (`--config PATH`), overlaid by `SWITCHYARD_…` environment variables
//! (`__` separates nesting levels: `SWITCHYARD_UPSTREAMS__ORDERS__URL`). This is the only
//! module that reads environment variables. Unknown keys are rejected, and every error
//! names the key it is about, so a typo fails at start-up instead of being ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Prefix of every environment variable the configuration reads.
pub const ENV_PREFIX: &str = "SWITCHYARD_";

/// Address of the sandbox token issuer, the default JWKS source.
pub const SANDBOX_ISSUER_ADDR: &str = "127.0.0.1:7100";
/// Address of the sandbox customers service.
pub const SANDBOX_CUSTOMERS_ADDR: &str = "127.0.0.1:7101";
/// Address of the sandbox orders service.
pub const SANDBOX_ORDERS_ADDR: &str = "127.0.0.1:7102";
/// Address of the sandbox inventory service.
pub const SANDBOX_INVENTORY_ADDR: &str = "127.0.0.1:7103";
/// `iss` claim of tokens minted by the sandbox, and the default accepted issuer.
pub const SANDBOX_ISSUER: &str = "switchyard-sandbox";
/// `aud` claim every Switchyard BFF expects by default.
pub const DEFAULT_AUDIENCE: &str = "switchyard";

/// A configuration that could not be loaded or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value has the wrong type or form, or a key is unknown.
    #[error("invalid configuration: {0}")]
    Malformed(String),
    /// A value is well-formed but not acceptable.
    #[error("invalid configuration: key `{key}`: {message}")]
    Invalid {
        /// Dotted key path, e.g. `upstreams.orders.url`.
        key: String,
        /// What was expected.
        message: String,
    },
    /// The `--config` file does not exist.
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
}

impl ConfigError {
    /// An invalid-value error for `key`.
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Semantic checks that serde cannot express (URL syntax, non-zero limits, …).
pub trait Validate {
    /// Checks the values; the error names the offending key.
    fn validate(&self) -> Result<(), ConfigError>;
}

/// Loads `T` from its defaults, the optional TOML `file` and the `SWITCHYARD_` variables of
/// the process environment, then validates it.
pub fn load<T>(file: Option<&Path>) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default + Validate,
{
    load_from_sources(file, std::env::vars())
}

/// Like [`load`], with the environment given explicitly (tests pass their own).
///
/// Variables without the `SWITCHYARD_` prefix are ignored; `__` in a name separates
/// nesting levels and names are case-insensitive. Values are parsed like TOML scalars
/// (`8080`, `true`, `[RS256, ES256]`), falling back to a plain string.
pub fn load_from_sources<T>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Serialize + Default + Validate,
{
    let mut base = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError::MissingFile(path.to_owned()));
        }
        base = base.merge(Toml::file_exact(path));
    }
    let mut env_keys = Vec::new();
    for (name, value) in env {
        let Some(key) = strip_prefix_ignore_case(&name, ENV_PREFIX) else {
            continue;
        };
        let path = key.to_ascii_lowercase().replace("__", ".");
        env_keys.push((path, name, parse_env_value(&value)));
    }
    // An unknown key from a file is an error; from the environment it is only a warning:
    // platforms set `SWITCHYARD_…` variables of their own (Kubernetes sets
    // `SWITCHYARD_PORT=tcp://…` for a Service named `switchyard`).
    let config: T = loop {
        let mut figment = base.clone();
        for (path, _, value) in &env_keys {
            figment = figment.merge(Serialized::default(path, value.clone()));
        }
        let error = match figment.extract() {
            Ok(config) => break config,
            Err(error) => error,
        };
        let unknown_from_env = error.clone().into_iter().find_map(|e| {
            let figment::error::Kind::UnknownField(field, _) = &e.kind else {
                return None;
            };
            let mut key = e.path.clone();
            if key.last() != Some(field) {
                key.push(field.clone());
            }
            let key = key.join(".");
            env_keys
                .iter()
                .position(|(path, _, _)| *path == key || path.starts_with(&format!("{key}.")))
        });
        match unknown_from_env {
            Some(index) => {
                let (_, name, _) = env_keys.remove(index);
                eprintln!(
                    "warning: ignoring environment variable {name}: no such configuration key"
                );
            }
            None => {
                let keys: Vec<(String, String)> = env_keys
                    .iter()
                    .map(|(path, name, _)| (path.clone(), name.clone()))
                    .collect();
                return Err(describe(error, &keys));
            }
        }
    };
    config.validate()?;
    Ok(config)
}

fn strip_prefix_ignore_case<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let head = name.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &name[prefix.len()..])
        .filter(|rest| !rest.is_empty())
}

fn parse_env_value(raw: &str) -> figment::value::Value {
    raw.parse::<figment::value::Value>()
        .unwrap_or_else(|_| figment::value::Value::from(raw.to_owned()))
}

/// Renders a figment error as "key `a.b`: what was wrong (set by X)", one clause per error.
fn describe(error: figment::Error, env_keys: &[(String, String)]) -> ConfigError {
    let lines: Vec<String> = error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let origin = env_keys
                .iter()
                .find(|(path, _)| *path == key)
                .map(|(_, var)| format!(" (set by environment variable {var})"))
                .or_else(|| {
                    e.metadata
                        .as_ref()
                        .and_then(|m| m.source.as_ref())
                        .map(|source| format!(" (set in {source})"))
                })
                .unwrap_or_default();
            if key.is_empty() {
                format!("{}{origin}", e.kind)
            } else {
                format!("key `{key}`: {}{origin}", e.kind)
            }
        })
        .collect();
    ConfigError::Malformed(lines.join("; "))
}

/// Checks that `value` is an absolute http(s) URL; `key` names it in the error.
pub fn validate_http_url(key: &str, value: &str) -> Result<reqwest::Url, ConfigError> {
    let url = reqwest::Url::parse(value).map_err(|e| {
        ConfigError::invalid(key, format!("expected an http(s) URL, got {value:?}: {e}"))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::invalid(
            key,
            format!("expected an http(s) URL, got scheme {:?}", url.scheme()),
        ));
    }
    Ok(url)
}

/// Checks that `value` is not 0; `key` names it in the error.
pub fn require_positive(key: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::invalid(key, "expected a value greater than 0"));
    }
    Ok(())
}

/// Plumbing every BFF server shares.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// Time given to in-flight requests after SIGTERM/ctrl-c before the process exits.
    pub shutdown_grace_secs: u64,
    /// Requests processed at once (admission control); beyond it a request is answered
    /// 503 `OVERLOADED` with `Retry-After: 1` at once instead of queueing.
    pub max_in_flight: usize,
    /// Time a request head may take to arrive, from the connection opening or the head's
    /// first byte; then the connection is dropped.
    pub header_read_timeout_ms: u64,
    /// Time a request body may take to arrive after its head; then the request fails
    /// `BAD_REQUEST`.
    pub body_read_timeout_ms: u64,
    /// Time a keep-alive connection with no request in flight stays open. Keep it above
    /// the idle timeout of any load balancer in front (AWS ALB: 60 s; raise both together).
    pub idle_timeout_secs: u64,
    /// Open connections at once; further ones wait in the accept backlog.
    pub max_connections: usize,
    /// Time a response write may stay blocked on a client that does not read; then the
    /// connection is dropped (slow readers, stuck event streams).
    pub write_timeout_secs: u64,
    /// A second address serving only `/metrics`, `/healthz` and `/readyz`, to keep metrics
    /// off the internet-facing port. Unset: `/metrics` is on the main port, except in
    /// production, which serves metrics only here.
    pub admin_listen: Option<std::net::SocketAddr>,
    /// Request headers dropped at the edge besides `x-consumer-id`, `x-switchyard-*` and
    /// `x-internal-*` (which always are), e.g. headers your proxy adds that no handler
    /// should trust. Case-insensitive.
    pub strip_request_headers: Vec<String>,
    /// Serve each connection, start to finish, on one worker thread with a runtime of its
    /// own (the BFF binaries; see `server::Workers`). Off: connections run on the process's
    /// shared work-stealing runtime. Unset: the BFF's own choice (on for web and mobile,
    /// off for IoT, whose small requests measured slower pinned).
    pub pin_connections: Option<bool>,
    /// Worker threads serving connections when `pin_connections` is on; 0: one per CPU.
    pub worker_threads: usize,
}

impl ServerConfig {
    /// Time in-flight requests get after a shutdown signal.
    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_grace_secs)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 64 * 1024,
            shutdown_grace_secs: 10,
            max_in_flight: 1024,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            idle_timeout_secs: 60,
            max_connections: 10_000,
            write_timeout_secs: 30,
            admin_listen: None,
            strip_request_headers: Vec::new(),
            pin_connections: None,
            worker_threads: 0,
        }
    }
}

impl Validate for ServerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        require_positive("server.body_limit_bytes", self.body_limit_bytes as u64)?;
        require_positive("server.max_in_flight", self.max_in_flight as u64)?;
        require_positive("server.header_read_timeout_ms", self.header_read_timeout_ms)?;
        require_positive("server.body_read_timeout_ms", self.body_read_timeout_ms)?;
        require_positive("server.idle_timeout_secs", self.idle_timeout_secs)?;
        require_positive("server.max_connections", self.max_connections as u64)?;
        require_positive("server.write_timeout_secs", self.write_timeout_secs)?;
        for name in &self.strip_request_headers {
            if http::HeaderName::try_from(name.as_str()).is_err() {
                return Err(ConfigError::invalid(
                    "server.strip_request_headers",
                    format!("{name:?} is not a header name"),
                ));
            }
        }
        Ok(())
    }
}

/// Span export (section `telemetry`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP/HTTP collector base URL, e.g. `http://127.0.0.1:4318` (spans go to
    /// `<url>/v1/traces`). Unset: nothing is exported.
    pub otlp_endpoint: Option<String>,
    /// Fraction of new traces exported (0–1); a continued trace follows its caller's
    /// sampled flag.
    pub sample_ratio: f64,
    /// Longest a finished span waits before its batch is sent.
    pub export_interval_ms: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            sample_ratio: 1.0,
            export_interval_ms: 5000,
        }
    }
}

impl Validate for TelemetryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(ConfigError::invalid(
                "telemetry.sample_ratio",
                "expected a fraction from 0 to 1",
            ));
        }
        if let Some(url) = &self.otlp_endpoint {
            validate_http_url("telemetry.otlp_endpoint", url)?;
        }
        require_positive("telemetry.export_interval_ms", self.export_interval_ms)
    }
}

/// Prometheus metrics (section `metrics`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Consumers counted by name in `switchyard_consumer_requests_total`; the rest are
    /// `consumer="other"`, so a flood of new consumers cannot grow the series without bound.
    pub max_consumers: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            max_consumers: 1000,
        }
    }
}

impl Validate for MetricsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// What a deployment is for (top-level key `profile`).
///
/// `production` turns off what only helps while developing (GraphQL introspection, field
/// suggestions, GraphiQL) and refuses what only the sandbox should ever use: its
/// checked-in signing key, and a JWKS on loopback. Any single key can still be set
/// explicitly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// The default, and the sandbox's.
    #[default]
    Development,
    /// A real deployment.
    Production,
}

impl Profile {
    /// Whether this is `production`.
    pub fn is_production(self) -> bool {
        self == Self::Production
    }
}

impl Validate for Profile {
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// Log output.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `json` (one object per line, for production) or `pretty` (for people).
    pub format: LogFormat,
    /// `tracing` filter directives, e.g. `info,web_bff=debug`; `RUST_LOG` wins when set.
    pub filter: String,
    /// One JSON line per request on standard output (the access log).
    pub access: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            filter: "info".into(),
            access: true,
        }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

/// The loopback address on `port`, every BFF's default listen address.
pub fn default_listen(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
