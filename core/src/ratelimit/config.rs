//! The `ratelimit` section: usage plans per tier, per-consumer overrides, what to do when
//! the shared store fails, and the pre-authentication limit per client address.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Validate};
use crate::domain::Tier;

/// The `ratelimit` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Whether usage plans and the pre-authentication limit apply at all.
    pub enabled: bool,
    /// What identifies a consumer: its token's `sub`, or its OAuth client.
    pub key: ConsumerKey,
    /// What to do when the shared store (Redis) fails or is too slow.
    pub on_store_error: OnStoreError,
    /// The plan of each tier. A consumer whose tier has no plan gets the lowest
    /// configured tier's.
    pub tiers: BTreeMap<Tier, TierPlan>,
    /// Per-consumer overrides of the token's tier, by consumer id.
    pub consumers: BTreeMap<String, ConsumerOverride>,
    /// The limit per client address applied before authentication.
    pub anonymous: AnonymousConfig,
}

/// What identifies a consumer (`ratelimit.key`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsumerKey {
    /// The token's subject (an API key's id).
    Subject,
    /// The token's `client_id`/`azp` claim, else its subject.
    Client,
}

/// What a decision is when the shared store cannot be asked (`ratelimit.on_store_error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnStoreError {
    /// Decide with this process's own counters (each replica then allows the full plan).
    Local,
    /// Admit the request unlimited.
    Allow,
    /// Refuse the request with 429.
    Deny,
}

/// The plan of one tier: a rate with a burst, and any number of calendar quotas.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierPlan {
    /// Sustained units per second.
    pub rate_per_sec: f64,
    /// Units that may be spent at once (the bucket's size).
    pub burst: u32,
    /// Fixed-window quotas over UTC calendar periods.
    #[serde(default)]
    pub quotas: Vec<Quota>,
}

/// At most `limit` units per calendar `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Units allowed in one period.
    pub limit: u64,
    /// The period, in UTC.
    pub period: Period,
}

/// A UTC calendar period of a quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// A clock minute.
    Minute,
    /// A clock hour.
    Hour,
    /// A UTC day.
    Day,
    /// A calendar month.
    Month,
}

impl Period {
    /// The policy name in `RateLimit-Policy` (`"month"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Month => "month",
        }
    }
}

/// A consumer's own tier, overriding its token's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerOverride {
    /// The tier whose plan the consumer gets.
    pub tier: Tier,
}

/// The limit per client address before authentication (`ratelimit.anonymous`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnonymousConfig {
    /// Sustained requests per second per address.
    pub rate_per_sec: f64,
    /// Requests per address at once.
    pub burst: u32,
    /// `X-Forwarded-For` entries to trust, counted from the right (0: use the peer
    /// address and ignore the header).
    pub trusted_proxy_hops: u32,
}

impl Default for AnonymousConfig {
    fn default() -> Self {
        Self {
            rate_per_sec: 50.0,
            burst: 100,
            trusted_proxy_hops: 0,
        }
    }
}

impl Default for RateLimitConfig {
    /// DESIGN.md's seed plans: free 5/s (burst 10, 10,000 a month), pro 100/s (burst 500,
    /// 1,000,000 a month), enterprise 1,000/s (burst 2,000).
    fn default() -> Self {
        let plan = |rate_per_sec, burst, month: Option<u64>| TierPlan {
            rate_per_sec,
            burst,
            quotas: month
                .map(|limit| {
                    vec![Quota {
                        limit,
                        period: Period::Month,
                    }]
                })
                .unwrap_or_default(),
        };
        Self {
            enabled: true,
            key: ConsumerKey::Subject,
            on_store_error: OnStoreError::Local,
            tiers: BTreeMap::from([
                (Tier::Free, plan(5.0, 10, Some(10_000))),
                (Tier::Pro, plan(100.0, 500, Some(1_000_000))),
                (Tier::Enterprise, plan(1_000.0, 2_000, None)),
            ]),
            consumers: BTreeMap::new(),
            anonymous: AnonymousConfig::default(),
        }
    }
}

fn validate_rate(key: &str, rate_per_sec: f64, burst: u32) -> Result<(), ConfigError> {
    if !(rate_per_sec.is_finite() && rate_per_sec > 0.0) {
        return Err(ConfigError::invalid(
            format!("{key}.rate_per_sec"),
            "expected a number greater than 0",
        ));
    }
    if burst == 0 {
        return Err(ConfigError::invalid(
            format!("{key}.burst"),
            "expected at least 1",
        ));
    }
    Ok(())
}

impl Validate for RateLimitConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.tiers.is_empty() {
            return Err(ConfigError::invalid(
                "ratelimit.tiers",
                "expected the plan of at least one tier",
            ));
        }
        for (tier, plan) in &self.tiers {
            let key = format!("ratelimit.tiers.{}", tier.as_str());
            validate_rate(&key, plan.rate_per_sec, plan.burst)?;
            let mut periods = BTreeSet::new();
            for quota in &plan.quotas {
                if quota.limit == 0 {
                    return Err(ConfigError::invalid(
                        format!("{key}.quotas"),
                        "expected every quota's limit to be at least 1",
                    ));
                }
                if !periods.insert(quota.period) {
                    return Err(ConfigError::invalid(
                        format!("{key}.quotas"),
                        format!("more than one quota per {}", quota.period.as_str()),
                    ));
                }
            }
        }
        validate_rate(
            "ratelimit.anonymous",
            self.anonymous.rate_per_sec,
            self.anonymous.burst,
        )
    }
}
