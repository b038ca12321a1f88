//! Usage plans: per-consumer rate limits and quotas, and the limit per client address
//! before authentication.
//!
//! The [`Limiter`] counts *units*: a REST request costs 1 (or its route's weight), an IoT
//! message 1, a GraphQL operation `max(1, ceil(complexity / graphql.cost_per_unit))`. The
//! consumer is the principal's subject or client id (`ratelimit.key`), its plan that of its
//! tier (the token's `tier` claim, unless `ratelimit.consumers` overrides it). Decisions are
//! made by the Redis store when `redis.url` is set, so every replica and every BFF sharing
//! it draws on one budget, and by the in-process store otherwise.
//!
//! A Redis failure never becomes a client 5xx: the decision follows `on_store_error`
//! (`local`: this process's own counters; `allow`; `deny`: 429), the change is logged once,
//! and Redis is not asked again for a growing pause (250 ms doubling to 30 s); the first
//! answer after it closes the breaker and shared limits resume.
//!
//! Files, bottom up: `config.rs` (the `ratelimit` section), `policy.rs` (GCRA, windows, the
//! decision and its headers), `local.rs` and `redis.rs` (the stores), `limiter.rs` (the
//! `Limiter`, which picks the consumer, its plan and the store), `layer.rs` (the tower
//! layers of REST BFFs and of the pre-authentication limit).

mod config;
mod layer;
mod limiter;
mod local;
mod policy;
mod redis;

pub use self::config::{
    AnonymousConfig, ConsumerKey, ConsumerOverride, OnStoreError, Period, Quota, RateLimitConfig,
    TierPlan,
};
pub use self::layer::{AddressLimit, UsagePlanLayer, client_address};
pub use self::limiter::{Consumer, Limiter};
pub use self::policy::{Decision, Plan, PolicyState, RATELIMIT, RATELIMIT_POLICY};
pub use crate::shared_state::StoreError;
