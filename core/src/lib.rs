//! Shared core of every Switchyard BFF.
//!
//! Everything two BFFs would otherwise both write lives here. The modules form a one-way
//! stack; each imports only modules on the rows below it:
//!
//! | row | modules |
//! |---|---|
//! | 7 | [`params`]: REST query parameters, refused as problems |
//! | 6 | [`bff`]: the BFF skeleton (config macro, wiring, serving, `main`); [`problem`]: problem+json errors |
//! | 5 | [`server`]: health and readiness, the common layers (admission control among them), serving with graceful shutdown |
//! | 4 | [`ratelimit`]: usage plans (GCRA and quotas, in-process or in Redis) and the pre-auth limit per address; [`streaming`]: live order updates (event sources, the fan-out feed, resumable subscriptions) |
//! | 3 | [`auth`]: JWTs, API keys, principals; [`versioning`]: retiring old API versions |
//! | 2 | [`upstream`]: the upstream call path; [`response`]: the `ErrorResponder` seam; [`shared_state`]: the fleet's Redis client, its breaker and `SharedTable`; [`openapi`]; [`telemetry`]; [`access_log`]: one JSON line per request; [`trace_export`]: spans over OTLP |
//! | 1 | [`shutdown`]: the process's shutdown as long-lived work watches it; [`error`]: `ErrorCode`; [`domain`]: entities from upstream JSON; [`config`]: loader, errors, validation, `server`/`log` sections; [`conditional`]: ETags; [`cursor`]; [`metrics`]: the Prometheus registry and the record of the request being served; [`trace_context`]: W3C Trace Context |
//!
//! Core knows HTTP, tower and serde, but no client protocol: no GraphQL, no CBOR. BFFs
//! convert the domain structs into their wire types and render errors through
//! [`response::ErrorResponder`].

pub mod access_log;
pub mod auth;
pub mod bff;
pub mod conditional;
pub mod config;
pub mod cursor;
pub mod domain;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod params;
pub mod problem;
pub mod ratelimit;
pub mod response;
pub mod server;
pub mod shared_state;
pub mod shutdown;
pub mod signal;
pub mod streaming;
pub mod telemetry;
pub mod trace_context;
pub mod trace_export;
pub mod upstream;
pub mod versioning;

pub use error::ErrorCode;

/// With the `mimalloc` feature (on by default), the allocator of every program built on
/// core. The request path allocates many small, short-lived objects (futures, JSON values,
/// strings), and glibc's malloc was a fifth to a quarter of every BFF's CPU time; with
/// mimalloc a request costs 20–39% less CPU (BENCHMARKS.md has the figures). It is built
/// without its transparent-huge-page advice (`no_thp`): a huge page makes 2 MiB of an arena
/// resident at once, which cost the web BFF 10 MB of peak RSS for no measurable CPU.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
