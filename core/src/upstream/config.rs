//! The configuration section of the upstream call path (`upstreams.*`): where each service
//! is, its timeouts and pool, and the policies of its guard and entity cache.

use serde::{Deserialize, Serialize};

use crate::config::{
    ConfigError, SANDBOX_CUSTOMERS_ADDR, SANDBOX_INVENTORY_ADDR, SANDBOX_ORDERS_ADDR, Validate,
    require_positive, validate_http_url,
};

/// One upstream service: where it is and how long to wait for it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// Base URL, e.g. `http://127.0.0.1:7102`.
    pub url: String,
    /// Per-call timeout, connect to last byte.
    pub timeout_ms: u64,
    /// TCP connect timeout.
    pub connect_timeout_ms: u64,
    /// Idle pooled connections kept per host, in each connection worker's pool.
    pub pool_max_idle_per_host: usize,
    /// Calls in flight at most (bulkhead); further calls fail at once.
    pub max_in_flight: usize,
    /// Circuit breaker policy.
    pub breaker: BreakerConfig,
    /// Retry policy.
    pub retry: RetryConfig,
    /// Entity cache (fresh TTL and stale-if-error window).
    pub cache: CacheConfig,
}

impl UpstreamConfig {
    fn with_addr_and_cache(addr: &str, ttl_ms: u64, stale_for_ms: u64) -> Self {
        let mut config = Self::with_addr(addr);
        config.cache.ttl_ms = ttl_ms;
        config.cache.stale_for_ms = stale_for_ms;
        config
    }

    fn with_addr(addr: &str) -> Self {
        Self {
            url: format!("http://{addr}"),
            timeout_ms: 2_000,
            connect_timeout_ms: 500,
            pool_max_idle_per_host: 64,
            max_in_flight: 256,
            breaker: BreakerConfig::default(),
            retry: RetryConfig::default(),
            cache: CacheConfig::default(),
        }
    }

    fn validate_as(&self, key: &str) -> Result<(), ConfigError> {
        validate_http_url(&format!("{key}.url"), &self.url)?;
        require_positive(&format!("{key}.timeout_ms"), self.timeout_ms)?;
        require_positive(
            &format!("{key}.connect_timeout_ms"),
            self.connect_timeout_ms,
        )?;
        validate_policies(key, &self.breaker, &self.retry, self.max_in_flight)
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self::with_addr(SANDBOX_ORDERS_ADDR)
    }
}

/// The three upstream services.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamsConfig {
    /// The customers service.
    pub customers: UpstreamConfig,
    /// The orders service.
    pub orders: UpstreamConfig,
    /// The inventory service.
    pub inventory: UpstreamConfig,
}

impl Default for UpstreamsConfig {
    /// Customer profiles change rarely: fresh for 30 s, stale-usable for 10 min. Orders and
    /// stock are always fetched; their entries only back up a failing upstream (5 min, 1 min).
    fn default() -> Self {
        Self {
            customers: UpstreamConfig::with_addr_and_cache(SANDBOX_CUSTOMERS_ADDR, 30_000, 600_000),
            orders: UpstreamConfig::with_addr_and_cache(SANDBOX_ORDERS_ADDR, 0, 300_000),
            inventory: UpstreamConfig::with_addr_and_cache(SANDBOX_INVENTORY_ADDR, 0, 60_000),
        }
    }
}

impl Validate for UpstreamsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.customers.validate_as("upstreams.customers")?;
        self.orders.validate_as("upstreams.orders")?;
        self.inventory.validate_as("upstreams.inventory")
    }
}

/// Circuit-breaker policy of one upstream.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub consecutive_failures: u32,
    /// Success rate below which the breaker opens (0–1), once `min_requests` were seen
    /// within `window_secs`.
    pub required_success_rate: f64,
    /// Calls needed in the window before the success rate is judged.
    pub min_requests: u32,
    /// Length of the success-rate window.
    pub window_secs: u64,
    /// First open period; doubles on each re-open up to `backoff_max_ms`.
    pub backoff_initial_ms: u64,
    /// Longest open period.
    pub backoff_max_ms: u64,
    /// Randomise each open period between half and all of its nominal length, so that
    /// replicas do not probe in lockstep.
    pub jitter: bool,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            required_success_rate: 0.5,
            min_requests: 20,
            window_secs: 30,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 30_000,
            jitter: true,
        }
    }
}

/// Retry policy of one upstream.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Whether failed idempotent reads are retried (once) at all.
    pub enabled: bool,
    /// Retries allowed as a fraction of calls (0.2 = at most one retry per five calls).
    pub budget_ratio: f64,
    /// Retries per second always allowed, so a quiet service can still be retried.
    pub min_per_sec: f64,
    /// Pause before a retry when the upstream gave no `Retry-After`.
    pub backoff_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            budget_ratio: 0.2,
            min_per_sec: 5.0,
            backoff_ms: 10,
        }
    }
}

/// Checks a breaker and retry policy, naming keys under `prefix`.
fn validate_policies(
    prefix: &str,
    breaker: &BreakerConfig,
    retry: &RetryConfig,
    max_in_flight: usize,
) -> Result<(), ConfigError> {
    let key = |name: &str| format!("{prefix}.{name}");
    if breaker.consecutive_failures == 0 {
        return Err(ConfigError::invalid(
            key("breaker.consecutive_failures"),
            "expected at least 1",
        ));
    }
    if !(0.0..=1.0).contains(&breaker.required_success_rate) {
        return Err(ConfigError::invalid(
            key("breaker.required_success_rate"),
            "expected a value within 0..=1",
        ));
    }
    if breaker.window_secs == 0 {
        return Err(ConfigError::invalid(
            key("breaker.window_secs"),
            "expected at least 1",
        ));
    }
    if breaker.backoff_initial_ms == 0 || breaker.backoff_max_ms < breaker.backoff_initial_ms {
        return Err(ConfigError::invalid(
            key("breaker.backoff_max_ms"),
            "expected 0 < backoff_initial_ms <= backoff_max_ms",
        ));
    }
    if !(0.0..=1.0).contains(&retry.budget_ratio) || retry.min_per_sec < 0.0 {
        return Err(ConfigError::invalid(
            key("retry.budget_ratio"),
            "expected budget_ratio within 0..=1 and min_per_sec >= 0",
        ));
    }
    if max_in_flight == 0 {
        return Err(ConfigError::invalid(
            key("max_in_flight"),
            "expected at least 1",
        ));
    }
    Ok(())
}

/// Cache policy of one entity type.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// How long a fetched entity is served without asking upstream (0: always ask, and keep
    /// entries only as a fallback).
    pub ttl_ms: u64,
    /// How long past `ttl_ms` an entity may still be served when the upstream fails.
    pub stale_for_ms: u64,
    /// Most entities kept.
    pub max_entries: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl_ms: 0,
            stale_for_ms: 300_000,
            max_entries: 100_000,
        }
    }
}
