//! [`SharedTable`]: values remembered under a key for a while, first writer wins.
//!
//! The shape persisted queries (`sha256 → query text`) and IoT acks (`(device, seq) →
//! digest + ack bytes`) both have: written once, read by whichever replica is asked,
//! forgotten after a retention. [`LocalTable`] keeps them in the process (the embedded
//! default, and what one replica needs); [`RedisTable`] keeps them in Redis, so every
//! replica sees them, using `SET … NX GET PX` (Redis 7 or Valkey), one command on one key,
//! so it also runs on Redis Cluster.

use std::time::Duration;

use axum::body::Bytes;
use redis::Value;

use super::breaker::StoreBreaker;
use super::redis::{RedisClient, StoreError};

/// A table of values, each kept for the table's retention; a key is written once.
#[async_trait::async_trait]
pub trait SharedTable: Send + Sync + 'static {
    /// The value under `key`, if there is one.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;

    /// Writes `value` under `key` unless the key holds a value already; returns what the
    /// key holds afterwards (`value`, or the one written first).
    async fn insert_if_absent(&self, key: &str, value: Bytes) -> Result<Bytes, StoreError>;

    /// Whether other replicas see the same table.
    fn is_shared(&self) -> bool;
}

/// A [`SharedTable`] in this process.
pub struct LocalTable {
    values: moka::sync::Cache<String, Bytes>,
}

impl LocalTable {
    /// A table keeping each value for `retention`, at most `entries` of them.
    pub fn new(retention: Duration, entries: u64) -> Self {
        Self {
            values: moka::sync::Cache::builder()
                .max_capacity(entries.max(1))
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .time_to_live(retention)
                .build(),
        }
    }
}

#[async_trait::async_trait]
impl SharedTable for LocalTable {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self.values.get(key))
    }

    async fn insert_if_absent(&self, key: &str, value: Bytes) -> Result<Bytes, StoreError> {
        Ok(self.values.entry_by_ref(key).or_insert(value).into_value())
    }

    fn is_shared(&self) -> bool {
        false
    }
}

/// A [`SharedTable`] in Redis, under keys `sy:<name>:<key>`. A failure opens its
/// breaker: for a growing pause calls fail at once with [`StoreError::Paused`].
pub struct RedisTable {
    client: RedisClient,
    prefix: String,
    retention_ms: u64,
    breaker: StoreBreaker,
}

impl RedisTable {
    /// The table `name` over `client`, each value kept for `retention`.
    pub fn new(
        client: RedisClient,
        name: &'static str,
        retention: Duration,
        meanwhile: &'static str,
    ) -> Self {
        Self {
            client,
            prefix: format!("sy:{name}:"),
            retention_ms: u64::try_from(retention.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            breaker: StoreBreaker::new(name, meanwhile),
        }
    }

    async fn guarded(&self, command: redis::Cmd) -> Result<Option<Bytes>, StoreError> {
        if !self.breaker.permits() {
            return Err(StoreError::Paused);
        }
        let reply = self
            .client
            .query(&command)
            .await
            .and_then(|reply| match reply {
                Value::Nil => Ok(None),
                Value::BulkString(bytes) => Ok(Some(Bytes::from(bytes))),
                _ => Err(StoreError::Reply),
            });
        match &reply {
            Ok(_) => self.breaker.succeeded(),
            Err(error) => self.breaker.failed(error),
        }
        reply
    }
}

#[async_trait::async_trait]
impl SharedTable for RedisTable {
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let mut command = redis::cmd("GET");
        command.arg(format!("{}{key}", self.prefix));
        self.guarded(command).await
    }

    async fn insert_if_absent(&self, key: &str, value: Bytes) -> Result<Bytes, StoreError> {
        let mut command = redis::cmd("SET");
        command
            .arg(format!("{}{key}", self.prefix))
            .arg(value.as_ref())
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(self.retention_ms);
        // nil: the key was free and holds `value` now; else the value written first.
        Ok(self.guarded(command).await?.unwrap_or(value))
    }

    fn is_shared(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_value_written_under_a_key_wins() {
        let table = LocalTable::new(Duration::from_secs(60), 10);
        assert_eq!(table.get("k").await.expect("in process"), None);
        let first = table
            .insert_if_absent("k", Bytes::from_static(b"one"))
            .await
            .expect("in process");
        let second = table
            .insert_if_absent("k", Bytes::from_static(b"two"))
            .await
            .expect("in process");
        assert_eq!(
            (first.as_ref(), second.as_ref()),
            (&b"one"[..], &b"one"[..])
        );
        assert_eq!(
            table.get("k").await.expect("in process").as_deref(),
            Some(&b"one"[..])
        );
        assert!(!table.is_shared());
    }
}
