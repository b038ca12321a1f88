//! Shared core of every Switchyard BFF.
//!
//! Everything two BFFs would otherwise both write lives here. The modules form a one-way
//! stack; each imports only modules on the rows below it:
//!
//! | row | modules |
//! |---|---|
//! | 5 | [`bff`]: the BFF skeleton (config macro, wiring, serving, `main`) |
//! | 4 | [`server`] (health, common layers, serving), [`problem`] (problem+json), [`versioning`] (retiring old API versions), [`params`] (REST query parameters) |
//! | 3 | [`auth`] (JWTs, API keys, principals), [`upstream`] (the upstream call path) |
//! | 2 | [`config`] (loader, errors, validation, `server`/`log` sections), [`response`], [`conditional`], [`openapi`], [`cursor`], [`telemetry`] |
//! | 1 | [`error`] (`ErrorCode`), [`domain`] (entities from upstream JSON) |
//!
//! Core knows HTTP, tower and serde, but no client protocol: no GraphQL, no CBOR. BFFs
//! convert the domain structs into their wire types and render errors through
//! [`response::ErrorResponder`].

pub mod auth;
pub mod bff;
pub mod conditional;
pub mod config;
pub mod cursor;
pub mod domain;
pub mod error;
pub mod openapi;
pub mod params;
pub mod problem;
pub mod response;
pub mod server;
pub mod telemetry;
pub mod upstream;
pub mod versioning;

pub use error::ErrorCode;

/// With the `mimalloc` feature (on by default), the allocator of every program built on
/// core. The request path allocates many small, short-lived objects (futures, JSON values,
/// strings), and glibc's malloc was a fifth to a quarter of every BFF's CPU time; with
/// mimalloc a request costs 20–39% less CPU, for up to 22 MB more peak memory (BENCHMARKS.md
/// has the figures).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
