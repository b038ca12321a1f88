//! Shared core of every Switchyard BFF.
//!
//! Everything two BFFs would otherwise both write lives here: typed configuration
//! ([`config`]), the domain model ([`domain`]), upstream service clients ([`upstream`]),
//! bearer-token auth ([`auth`]), conditional GETs ([`conditional`]), the shared error vocabulary ([`error`]) and server
//! plumbing ([`server`], [`telemetry`]).
//!
//! Core knows HTTP, tower and serde, but no client protocol: no GraphQL, no CBOR. BFFs
//! convert the domain structs into their wire types and render errors through
//! [`response::ErrorResponder`].

pub mod auth;
pub mod cache;
pub mod conditional;
pub mod config;
pub mod domain;
pub mod error;
pub mod resilience;
pub mod response;
pub mod server;
pub mod telemetry;
pub mod upstream;

pub use error::ErrorCode;

/// With the `mimalloc` feature (on by default), the allocator of every program built on
/// core. The request path allocates many small, short-lived objects (futures, JSON values,
/// strings), and glibc's malloc was a fifth to a quarter of every BFF's CPU time; with
/// mimalloc a request costs 20–39% less CPU, for up to 22 MB more peak memory (BENCHMARKS.md
/// has the figures).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
