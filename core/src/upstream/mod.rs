//! The upstream call path, as a one-way stack: each file imports only files on rows below
//! its own.
//!
//! | layer | file | what it holds |
//! |---|---|---|
//! | 1 | [`api`] | `Service`, `UpstreamError`, the service traits (`CustomersApi`, …) |
//! | 1 | [`config`] | the `upstreams.*` configuration section |
//! | 1 | `entries` | the entity caches' store: sharded maps, bounded, no housekeeping |
//! | 2 | [`scope`] | the request scope: task-local `Deadline` and `Freshness` |
//! | 3 | [`guard`] | deadline, circuit breaker, bulkhead and budgeted retry per service |
//! | 3 | [`cache`] | entity caches implementing the service traits in front of any client |
//! | 4 | [`http`] | the reqwest clients; every attempt runs inside the guard |
//! | 5 | [`stack`] | `Upstreams::from_config`, which stacks cache → client → guard |
//!
//! BFFs import from here (`switchyard_core::upstream::…`); the names below are the public
//! surface of the stack.

pub mod api;
pub mod cache;
pub mod config;
mod entries;
pub mod guard;
pub mod http;
pub mod scope;
pub mod stack;

pub use self::api::{
    CustomersApi, InventoryApi, Keyed, OrdersApi, OrdersQuery, Service, UpstreamError,
    UpstreamResult,
};
pub use self::cache::{CachedCustomers, CachedInventory, CachedOrders, EntityCache};
pub use self::config::{BreakerConfig, CacheConfig, RetryConfig, UpstreamConfig, UpstreamsConfig};
pub use self::guard::{AttemptResult, Backoff, BreakerState, Guard, RetryBudget};
pub use self::http::{
    HttpCustomers, HttpInventory, HttpOrders, IDEMPOTENCY_KEY_HEADER, MAX_IDS_PER_CALL,
};
pub use self::scope::{
    DEADLINE_HEADER, Deadline, Freshness, current_deadline, track_freshness, with_deadline,
    within_budget,
};
pub use self::stack::{Guards, Upstreams, UpstreamsHealth};
