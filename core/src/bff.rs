//! The BFF skeleton: everything a BFF binary does that is not specific to its client.
//!
//! A BFF declares three things and core does the rest:
//! - its configuration, with [`bff_config!`](crate::bff_config): the shared sections
//!   (`listen`, `upstreams`, `auth`, `server`, `log`) plus its own;
//! - its state, built once per process from its config and the [`Core`] parts;
//! - its router: its routes and its own layers.
//!
//! Those go into an implementation of [`Bff`]. [`App`] then wires the process (upstream
//! clients, authenticator, state), adds `/healthz` and `/readyz` and the common layers,
//! and serves with graceful shutdown; [`main`] and [`run`] add argument parsing, config
//! loading, logging and binding. Tests, the sandbox launcher and the benchmark use [`App`]
//! in-process.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use axum::Router;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tower::layer::util::Stack;

use crate::auth::{AuthConfig, AuthLayer, Authenticator};
use crate::config::{
    self, ConfigError, LogConfig, MetricsConfig, Profile, ServerConfig, TelemetryConfig, Validate,
};
use crate::metrics::Metrics;
use crate::ratelimit::{Limiter, RateLimitConfig, UsagePlanLayer};
use crate::response::ErrorResponder;
use crate::server::{self, ConnectionLimits, Readiness};
use crate::shared_state::{RedisClient, RedisConfig};
use crate::shutdown::{Shutdown, ShutdownTrigger};
use crate::telemetry;
use crate::trace_export::SpanSink;
use crate::upstream::{Upstreams, UpstreamsConfig};

/// The top-level configuration of a BFF: the shared sections, as the skeleton needs them.
/// Implemented by [`bff_config!`](crate::bff_config); not by hand.
pub trait BffConfig:
    DeserializeOwned + Serialize + Default + Validate + Clone + Send + Sync + 'static
{
    /// What the deployment is for (key `profile`).
    fn profile(&self) -> Profile;
    /// Address to listen on (key `listen`).
    fn listen(&self) -> SocketAddr;
    /// The upstream services (section `upstreams`).
    fn upstreams(&self) -> &UpstreamsConfig;
    /// Token verification (section `auth`).
    fn auth(&self) -> &AuthConfig;
    /// Server plumbing (section `server`).
    fn server(&self) -> &ServerConfig;
    /// Logging (section `log`).
    fn log(&self) -> &LogConfig;
    /// Usage plans (section `ratelimit`).
    fn ratelimit(&self) -> &RateLimitConfig;
    /// Shared state across replicas (section `redis`).
    fn redis(&self) -> &RedisConfig;
    /// Prometheus metrics (section `metrics`).
    fn metrics(&self) -> &MetricsConfig;
    /// Span export (section `telemetry`).
    fn telemetry(&self) -> &TelemetryConfig;
    /// Sets the listen address (the sandbox launcher and tests choose their own).
    fn set_listen(&mut self, listen: SocketAddr);
    /// The upstream services, to point them elsewhere (the sandbox launcher and tests).
    fn upstreams_mut(&mut self) -> &mut UpstreamsConfig;
    /// Token verification, to trust another issuer (the sandbox launcher and tests).
    fn auth_mut(&mut self) -> &mut AuthConfig;
    /// Shared state, to point replicas at one Redis (the sandbox launcher and tests).
    fn redis_mut(&mut self) -> &mut RedisConfig;
}

/// Declares a BFF's top-level config struct: the shared sections every BFF has, with the
/// keys documented in the README (`listen`, `upstreams`, `auth`, `server`, `log`), followed
/// by the BFF's own sections. The shared sections also include `ratelimit`, `redis` and
/// `metrics`.
/// Each own section's type implements `Default`, serde's traits
/// and [`Validate`]; the BFF crate depends on `serde`.
///
/// ```ignore
/// switchyard_core::bff_config! {
///     /// Everything the web BFF reads at start-up.
///     pub struct WebConfig, default port 8081 {
///         /// GraphQL limits and features.
///         pub graphql: GraphqlConfig,
///     }
/// }
/// ```
///
/// A macro rather than a shared struct with `#[serde(flatten)]`, because serde's `flatten`
/// does not combine with `deny_unknown_fields`, and unknown keys must stay errors.
#[macro_export]
macro_rules! bff_config {
    (
        $(#[$meta:meta])*
        pub struct $name:ident, default port $port:expr, {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            /// `development` (the default) or `production` (`SWITCHYARD_PROFILE`).
            pub profile: $crate::config::Profile,
            /// Listen address (`SWITCHYARD_LISTEN`).
            pub listen: ::std::net::SocketAddr,
            /// Upstream services.
            pub upstreams: $crate::upstream::UpstreamsConfig,
            /// Token verification.
            pub auth: $crate::auth::AuthConfig,
            /// Shared server plumbing.
            pub server: $crate::config::ServerConfig,
            /// Logging.
            pub log: $crate::config::LogConfig,
            /// Usage plans: rate limits and quotas per consumer tier.
            pub ratelimit: $crate::ratelimit::RateLimitConfig,
            /// Shared state across replicas (unset: in-process).
            pub redis: $crate::shared_state::RedisConfig,
            /// Prometheus metrics.
            pub metrics: $crate::config::MetricsConfig,
            /// Span export over OTLP.
            pub telemetry: $crate::config::TelemetryConfig,
            $( $(#[$field_meta])* pub $field: $ty, )*
        }

        impl ::std::default::Default for $name {
            fn default() -> Self {
                Self {
                    profile: ::std::default::Default::default(),
                    listen: $crate::config::default_listen($port),
                    upstreams: ::std::default::Default::default(),
                    auth: ::std::default::Default::default(),
                    server: ::std::default::Default::default(),
                    log: ::std::default::Default::default(),
                    ratelimit: ::std::default::Default::default(),
                    redis: ::std::default::Default::default(),
                    metrics: ::std::default::Default::default(),
                    telemetry: ::std::default::Default::default(),
                    $( $field: ::std::default::Default::default(), )*
                }
            }
        }

        impl $crate::config::Validate for $name {
            fn validate(&self) -> ::std::result::Result<(), $crate::config::ConfigError> {
                $crate::config::Validate::validate(&self.upstreams)?;
                $crate::config::Validate::validate(&self.auth)?;
                self.auth.validate_for(self.profile)?;
                $crate::config::Validate::validate(&self.server)?;
                $crate::config::Validate::validate(&self.ratelimit)?;
                $crate::config::Validate::validate(&self.redis)?;
                $crate::config::Validate::validate(&self.metrics)?;
                $crate::config::Validate::validate(&self.telemetry)?;
                $( $crate::config::Validate::validate(&self.$field)?; )*
                Ok(())
            }
        }

        impl $crate::bff::BffConfig for $name {
            fn profile(&self) -> $crate::config::Profile {
                self.profile
            }
            fn listen(&self) -> ::std::net::SocketAddr {
                self.listen
            }
            fn upstreams(&self) -> &$crate::upstream::UpstreamsConfig {
                &self.upstreams
            }
            fn auth(&self) -> &$crate::auth::AuthConfig {
                &self.auth
            }
            fn server(&self) -> &$crate::config::ServerConfig {
                &self.server
            }
            fn log(&self) -> &$crate::config::LogConfig {
                &self.log
            }
            fn ratelimit(&self) -> &$crate::ratelimit::RateLimitConfig {
                &self.ratelimit
            }
            fn redis(&self) -> &$crate::shared_state::RedisConfig {
                &self.redis
            }
            fn metrics(&self) -> &$crate::config::MetricsConfig {
                &self.metrics
            }
            fn telemetry(&self) -> &$crate::config::TelemetryConfig {
                &self.telemetry
            }
            fn set_listen(&mut self, listen: ::std::net::SocketAddr) {
                self.listen = listen;
            }
            fn upstreams_mut(&mut self) -> &mut $crate::upstream::UpstreamsConfig {
                &mut self.upstreams
            }
            fn auth_mut(&mut self) -> &mut $crate::auth::AuthConfig {
                &mut self.auth
            }
            fn redis_mut(&mut self) -> &mut $crate::shared_state::RedisConfig {
                &mut self.redis
            }
        }
    };
}

/// What core builds for every BFF from the shared sections, handed to [`Bff::state`].
#[derive(Clone)]
pub struct Core {
    /// The upstream clients (cache → HTTP client → guard, per service).
    pub upstreams: Upstreams,
    /// Verifies bearer tokens and API keys.
    pub authenticator: Authenticator,
    /// Usage plans (`None` when `ratelimit.enabled` is false).
    pub limiter: Option<Limiter>,
    /// This BFF's Prometheus metrics, exported at `/metrics`.
    pub metrics: Metrics,
    /// The fleet's Redis (`None` when `redis.url` is unset: state stays in the process).
    pub redis: Option<RedisClient>,
    /// The process's shutdown, for long-lived work (streams) to watch.
    pub shutdown: Shutdown,
}

/// What every BFF's API routes wear, as one `route_layer`: authentication (a 401 in the
/// responder's format, before anything else runs), then the usage plan's charge (a 429).
///
/// One stack rather than a `route_layer` call for each, because each call boxes every
/// route again: one more future moved into a fresh allocation for every request.
pub fn api_route_layer<R: ErrorResponder>(
    authenticator: Authenticator,
    limiter: Option<Limiter>,
    responder: R,
) -> ApiRouteLayer<R> {
    Stack::new(
        UsagePlanLayer::new(limiter, responder.clone()),
        crate::auth::layer(authenticator, responder),
    )
}

/// See [`api_route_layer`]: auth outside, the usage plan inside.
pub type ApiRouteLayer<R> = Stack<UsagePlanLayer<R>, AuthLayer<R>>;

/// A BFF: its name, its config, its state and its router. Everything else is core's.
pub trait Bff: 'static {
    /// The binary's name, as messages and logs name it (`web-bff`).
    const NAME: &'static str;
    /// One line saying what it serves, for `--help`.
    const ABOUT: &'static str;
    /// Its configuration, declared with [`bff_config!`](crate::bff_config).
    type Config: BffConfig;
    /// What its handlers need, built once per process. axum clones it for every request,
    /// so make it one `Arc`.
    type State: Clone + Send + Sync + 'static;
    /// Renders errors in its client's format, for the common layers that answer before the
    /// BFF's own (admission control, the limit per address).
    type Responder: ErrorResponder + Default;
    /// Whether its binary serves connections on the connection workers when
    /// `server.pin_connections` is unset ([`install_workers`]).
    const PIN_CONNECTIONS: bool = true;

    /// Builds the state for `config` from the parts core built.
    fn state(config: &Self::Config, core: &Core) -> Result<Self::State, ConfigError>;

    /// The BFF's routes with its own layers. Core serves `/healthz` and `/readyz` beside
    /// them and wraps both in the common layers (request id, access log, body limit).
    fn router(state: Self::State) -> Router;
}

/// One BFF wired for its config: the parts core built, and the BFF's state.
pub struct App<B: Bff> {
    core: Core,
    shutdown: ShutdownTrigger,
    state: B::State,
    server: ServerConfig,
    profile: Profile,
    access_log: bool,
    spans: Option<SpanSink>,
    sample_ratio: f64,
}

impl<B: Bff> App<B> {
    /// Wires HTTP upstream clients, the authenticator and the BFF's state for `config`.
    pub fn new(config: &B::Config) -> Result<Self, ConfigError> {
        let (shutdown, shutdown_handle) = crate::shutdown::channel();
        let redis = RedisClient::new(config.redis())?;
        let core = Core {
            upstreams: Upstreams::from_config(config.upstreams())?,
            authenticator: Authenticator::for_profile(config.auth(), config.profile())?,
            limiter: Limiter::new(config.ratelimit(), redis.as_ref())?,
            redis,
            metrics: Metrics::new(B::NAME, config.metrics().max_consumers),
            shutdown: shutdown_handle,
        };
        let state = B::state(config, &core)?;
        Ok(Self {
            core,
            shutdown,
            state,
            server: config.server().clone(),
            profile: config.profile(),
            access_log: config.log().access,
            spans: SpanSink::from_config(config.telemetry(), B::NAME)?,
            sample_ratio: config.telemetry().sample_ratio,
        })
    }

    /// The BFF's state.
    pub fn state(&self) -> &B::State {
        &self.state
    }

    /// Loads the signing keys now rather than on the first request; failures are logged and
    /// retried later (readiness reports them).
    pub async fn prime(&self) {
        self.core.authenticator.prime_or_warn().await;
        self.connect_redis().await;
    }

    /// Opens the connection to Redis now, so the first requests do not spend their
    /// `redis.timeout_ms` on connecting (and fall back to local state); a Redis that is
    /// down is only logged: features fall back per their fail mode until it answers.
    async fn connect_redis(&self) {
        if let Some(redis) = &self.core.redis
            && let Err(error) = redis.connect().await
        {
            tracing::warn!(%error, "redis does not answer yet; shared state falls back until it does");
        }
    }

    /// The whole router: the BFF's routes, the health routes, and the common layers.
    pub fn router(&self) -> Router {
        let readiness = Readiness::new(
            self.core.authenticator.clone(),
            self.core.upstreams.guards().clone(),
        );
        let mut routes = B::router(self.state.clone()).merge(server::health_routes(readiness));
        if self.metrics_on_main_port() {
            routes = routes.merge(server::metrics_route(
                self.core.metrics.clone(),
                self.core.upstreams.guards().clone(),
            ));
        }
        server::with_common_layers(
            routes,
            &self.server,
            self.core.limiter.clone(),
            server::Observer {
                bff: B::NAME,
                metrics: self.core.metrics.clone(),
                access_log: self.access_log,
                spans: self.spans.clone(),
                sample_ratio: self.sample_ratio,
            },
            B::Responder::default(),
        )
    }

    /// Whether `/metrics` is served beside the API: unless `server.admin_listen` is set,
    /// and never in production, where metrics need the admin port (they say who calls
    /// what, and should not face the internet).
    fn metrics_on_main_port(&self) -> bool {
        self.server.admin_listen.is_none() && self.profile != Profile::Production
    }

    /// What `server.admin_listen` serves: `/metrics`, `/healthz` and `/readyz`, with no
    /// admission control or limits.
    pub fn admin_router(&self) -> Router {
        let readiness = Readiness::new(
            self.core.authenticator.clone(),
            self.core.upstreams.guards().clone(),
        );
        server::health_routes(readiness).merge(server::metrics_route(
            self.core.metrics.clone(),
            self.core.upstreams.guards().clone(),
        ))
    }

    /// Primes the keys, then serves on `listener` (and the admin routes on
    /// `server.admin_listen`, when set) until `shutdown` completes, giving in-flight
    /// requests `server.shutdown_grace_secs` to finish.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let trigger = std::sync::Arc::new(std::mem::replace(
            &mut self.shutdown,
            crate::shutdown::channel().0,
        ));
        let handle = trigger.handle();
        let triggered = std::sync::Arc::clone(&trigger);
        tokio::spawn(async move {
            shutdown.await;
            // Streams see it too, and tell their clients to reconnect.
            triggered.trigger();
        });
        let stopped = move || {
            let handle = handle.clone();
            async move { handle.requested().await }
        };
        if let Some(admin) = self.server.admin_listen {
            let admin_listener = TcpListener::bind(admin).await.map_err(|error| {
                std::io::Error::other(format!(
                    "cannot listen on {admin} (key `server.admin_listen`): {error}"
                ))
            })?;
            tracing::info!(%admin, "metrics and probes on the admin port");
            let admin_router = self.admin_router();
            let limits = ConnectionLimits::from(&self.server);
            let grace = self.server.shutdown_grace();
            let stop = stopped();
            tokio::spawn(async move {
                if let Err(error) =
                    server::serve(admin_listener, admin_router, limits, stop, grace).await
                {
                    tracing::error!(%error, "admin listener failed");
                }
            });
        } else if self.profile == Profile::Production {
            tracing::warn!(
                "metrics are not served: production serves them only on `server.admin_listen`"
            );
        }
        let shutdown = stopped();
        self.connect_redis().await;
        if let Err(error) = self.core.authenticator.prime().await {
            if error.is_fatal() {
                return Err(std::io::Error::other(format!("refusing to start: {error}")));
            }
            tracing::warn!(%error, "signing keys not loaded yet; /readyz reports not ready");
        }
        let router = self.router();
        let served = server::serve(
            listener,
            router,
            ConnectionLimits::from(&self.server),
            shutdown,
            self.server.shutdown_grace(),
        )
        .await;
        // Streams (upgraded out of the listener's sight) say goodbye to their clients.
        if !trigger.drained(self.server.shutdown_grace()).await {
            tracing::warn!("streams did not close within the grace period; exiting");
        }
        if let Some(spans) = &self.spans {
            // Send the spans still queued before the process goes.
            spans.shutdown();
        }
        served
    }
}

/// The command-line arguments every BFF binary takes. A BFF with more flattens it into its
/// own (`#[command(flatten)]`).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct BffArgs {
    /// TOML configuration file; `SWITCHYARD_…` environment variables override it.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// The whole `main` of a BFF binary with no flags of its own: parses [`BffArgs`], then
/// [`run`]s on a multi-threaded runtime.
pub fn main<B: Bff>() -> ExitCode {
    use clap::{Args as _, FromArgMatches as _};
    // `about` after the arguments: their derive would otherwise put its own doc there.
    let command = BffArgs::augment_args(clap::Command::new(B::NAME))
        .about(B::ABOUT)
        .version(env!("CARGO_PKG_VERSION"));
    let args = match BffArgs::from_arg_matches(&command.get_matches()) {
        Ok(args) => args,
        Err(error) => error.exit(),
    };
    block_on_run::<B>(&args)
}

/// [`run`] on a new multi-threaded runtime (for a `main` that parsed its own arguments).
pub fn block_on_run<B: Bff>(args: &BffArgs) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run::<B>(args.config.as_deref())),
        Err(error) => {
            eprintln!("{}: cannot start the async runtime: {error}", B::NAME);
            ExitCode::FAILURE
        }
    }
}

/// Starts the process's connection workers ([`server::Workers`]) if `server.pin_connections`
/// says so, or when unset if `B` does ([`Bff::PIN_CONNECTIONS`]). Call it before
/// [`App::new`], whose upstream clients are made one per worker; [`run`] does.
pub fn install_workers<B: Bff>(server: &ServerConfig) -> std::io::Result<()> {
    if server.pin_connections.unwrap_or(B::PIN_CONNECTIONS) {
        server::Workers::install(server.worker_threads)?;
    }
    Ok(())
}

/// Loads the config (defaults, the optional `--config` file, `SWITCHYARD_…` variables),
/// installs logging, binds `listen` and serves until SIGTERM or ctrl-c. Configuration and
/// bind errors name the key at fault and exit with status 2; a failure while serving exits
/// with 1.
pub async fn run<B: Bff>(config_file: Option<&Path>) -> ExitCode {
    let name = B::NAME;
    let config: B::Config = match config::load(config_file) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{name}: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log());
    // Before the app: its upstream clients are made one per worker.
    if let Err(error) = install_workers::<B>(config.server()) {
        eprintln!("{name}: cannot start the connection workers: {error}");
        return ExitCode::FAILURE;
    }
    let app = match App::<B>::new(&config) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("{name}: {error}");
            return ExitCode::from(2);
        }
    };
    let listen = config.listen();
    let listener = match TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("{name}: cannot listen on {listen} (key `listen`): {error}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(%listen, "{name} serving");
    match app.serve(listener, server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error:#}");
            ExitCode::FAILURE
        }
    }
}
