//! The state a fleet of replicas shares: usage-plan counters, persisted queries, IoT acks.
//!
//! Unset (the default), `redis.url` leaves every such feature with its state in the
//! process: right for one replica, and it needs nothing installed. With `redis.url` set,
//! one [`RedisClient`] per process carries all of them, so a consumer's limit, a
//! registered query or a device's ack is the same whichever replica a request lands on.
//!
//! Features use it through two seams: the rate limiter runs its own script over the
//! [`RedisClient`]; everything that only needs "remember this value under this key for a
//! while, first writer wins" uses a [`SharedTable`] ([`LocalTable`] in process,
//! [`RedisTable`] in Redis). Either way a failing Redis is put behind a [`StoreBreaker`],
//! so a dead Redis costs one timeout now and then, not one per request, and each feature
//! decides what a failure means for it.
//!
//! Files, bottom up: `config.rs` (the section), `redis.rs` (the client and its errors),
//! `breaker.rs`, `table.rs`.

mod breaker;
mod config;
mod redis;
mod table;

pub use self::breaker::StoreBreaker;
pub use self::config::{RedisConfig, RedisTarget};
pub use self::redis::{RedisClient, StoreError};
pub use self::table::{LocalTable, RedisTable, SharedTable};
