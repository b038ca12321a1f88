//! The [`Limiter`]: which consumer a principal is, which plan applies, and which store
//! decides (Redis, or this process, with the breaker and `on_store_error` in between).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::time::Instant;

use super::config::{ConsumerKey, OnStoreError, RateLimitConfig, TierPlan};
use super::local::LocalStore;
use super::policy::{Decision, Plan};
use super::redis::RedisStore;
use crate::auth::Principal;
use crate::config::ConfigError;
use crate::domain::Tier;
use crate::metrics::RequestRecord;
use crate::shared_state::{RedisClient, StoreBreaker};

/// Wall-clock milliseconds that advance with tokio's clock: anchored to the system clock
/// once, so calendar windows are real, and paused with tokio's clock in tests.
#[derive(Clone, Copy, Debug)]
struct Clock {
    anchor_unix_ms: i64,
    anchor: Instant,
}

impl Clock {
    fn new() -> Self {
        let anchor_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Self {
            anchor_unix_ms,
            anchor: Instant::now(),
        }
    }

    fn now_ms(&self) -> i64 {
        self.anchor_unix_ms + self.anchor.elapsed().as_millis() as i64
    }
}

/// Who is limited: the consumer id and the plan that applies.
#[derive(Clone, Debug)]
pub struct Consumer<'a> {
    /// The consumer id counters are kept under.
    pub id: &'a str,
    /// Its plan.
    pub plan: &'a Plan,
}

struct LimiterInner {
    key: ConsumerKey,
    on_store_error: OnStoreError,
    plans: BTreeMap<Tier, Plan>,
    lowest: Tier,
    overrides: BTreeMap<String, Tier>,
    local: LocalStore,
    shared: Option<RedisStore>,
    breaker: StoreBreaker,
    clock: Clock,
    anonymous: Plan,
    anonymous_counters: LocalStore,
    trusted_proxy_hops: u32,
}

/// Decides usage plans; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Limiter(Arc<LimiterInner>);

impl Limiter {
    /// The limiter `config` describes, over Redis when `redis` names one; `None` when
    /// `ratelimit.enabled` is false.
    pub fn new(
        config: &RateLimitConfig,
        redis: Option<&RedisClient>,
    ) -> Result<Option<Self>, ConfigError> {
        if !config.enabled {
            return Ok(None);
        }
        let plans: BTreeMap<Tier, Plan> = config
            .tiers
            .iter()
            .map(|(tier, plan)| (*tier, Plan::new(*tier, plan)))
            .collect();
        let lowest = *plans
            .keys()
            .next()
            .ok_or_else(|| ConfigError::invalid("ratelimit.tiers", "expected at least one tier"))?;
        let shared = redis.map(|client| RedisStore::new(client.clone()));
        let anonymous = Plan::new(
            Tier::Free,
            &TierPlan {
                rate_per_sec: config.anonymous.rate_per_sec,
                burst: config.anonymous.burst,
                quotas: Vec::new(),
            },
        );
        Ok(Some(Self(Arc::new(LimiterInner {
            key: config.key,
            on_store_error: config.on_store_error,
            plans,
            lowest,
            overrides: config
                .consumers
                .iter()
                .map(|(id, o)| (id.clone(), o.tier))
                .collect(),
            local: LocalStore::default(),
            shared,
            breaker: StoreBreaker::new(
                "rate-limit store",
                match config.on_store_error {
                    OnStoreError::Local => "deciding with this replica's own counters",
                    OnStoreError::Allow => "admitting every request",
                    OnStoreError::Deny => "refusing every request with 429",
                },
            ),
            clock: Clock::new(),
            anonymous,
            anonymous_counters: LocalStore::default(),
            trusted_proxy_hops: config.anonymous.trusted_proxy_hops,
        }))))
    }

    /// The consumer `principal` counts as, and its plan.
    pub fn consumer<'a>(&'a self, principal: &'a Principal) -> Consumer<'a> {
        let inner = &self.0;
        let id = match inner.key {
            ConsumerKey::Subject => principal.subject.as_str(),
            ConsumerKey::Client => principal
                .client_id
                .as_deref()
                .unwrap_or(principal.subject.as_str()),
        };
        let tier = inner.overrides.get(id).copied().unwrap_or(principal.tier);
        let plan = inner
            .plans
            .get(&tier)
            .or_else(|| inner.plans.get(&inner.lowest))
            .expect("the lowest tier has a plan");
        Consumer { id, plan }
    }

    /// Decides `cost` units for `principal`, and charges them if the request is admitted.
    /// The decision is noted on the request's record (metrics, access log).
    pub async fn charge(&self, principal: &Principal, cost: u32) -> Decision {
        if let Some(decision) = self.charge_now(principal, cost) {
            return decision;
        }
        let (decision, store_failed) = self.decide(principal, cost).await;
        Self::noted(principal, decision, store_failed)
    }

    /// [`Limiter::charge`] at once, when the plans are kept in this process. `None` when
    /// they are shared through Redis, which is to be asked.
    pub fn charge_now(&self, principal: &Principal, cost: u32) -> Option<Decision> {
        let inner = &self.0;
        if inner.shared.is_some() {
            return None;
        }
        let consumer = self.consumer(principal);
        let decision = inner
            .local
            .decide(consumer.id, consumer.plan, cost, inner.clock.now_ms());
        Some(Self::noted(principal, decision, false))
    }

    /// `decision`, noted on the request's record.
    fn noted(principal: &Principal, decision: Decision, store_failed: bool) -> Decision {
        let binding = decision
            .policies
            .iter()
            .find(|p| p.violated)
            .or_else(|| decision.policies.iter().min_by_key(|p| p.remaining));
        let outcome = match (store_failed, decision.allowed) {
            (true, _) => "store_error",
            (false, true) => "allowed",
            (false, false) => "limited",
        };
        RequestRecord::note_decision(
            principal.tier.as_str(),
            binding.map_or("none", |p| p.name),
            outcome,
            binding.map(|p| p.remaining),
        );
        decision
    }

    /// The decision, and whether the shared store failed (or was skipped by its breaker).
    async fn decide(&self, principal: &Principal, cost: u32) -> (Decision, bool) {
        let consumer = self.consumer(principal);
        let inner = &self.0;
        let now_ms = inner.clock.now_ms();
        let Some(shared) = &inner.shared else {
            return (
                inner.local.decide(consumer.id, consumer.plan, cost, now_ms),
                false,
            );
        };
        if inner.breaker.permits() {
            match shared
                .decide(consumer.id, consumer.plan, cost, now_ms)
                .await
            {
                Ok(decision) => {
                    inner.breaker.succeeded();
                    return (decision, false);
                }
                Err(error) => inner.breaker.failed(&error),
            }
        }
        let decision = match inner.on_store_error {
            OnStoreError::Local => inner.local.decide(consumer.id, consumer.plan, cost, now_ms),
            OnStoreError::Allow => Decision::unlimited(consumer.plan),
            OnStoreError::Deny => Decision::store_unavailable(consumer.plan),
        };
        (decision, true)
    }

    /// Decides one request from `address` before authentication (always in this process:
    /// it protects this replica's token verification from floods).
    pub fn check_address(&self, address: IpAddr) -> Decision {
        let inner = &self.0;
        let mut text = AddressText::default();
        let key = text.of(address);
        inner
            .anonymous_counters
            .decide(key, &inner.anonymous, 1, inner.clock.now_ms())
    }

    /// How many `X-Forwarded-For` entries to trust.
    pub fn trusted_proxy_hops(&self) -> u32 {
        self.0.trusted_proxy_hops
    }

    /// Whether decisions are shared through Redis.
    pub fn is_shared(&self) -> bool {
        self.0.shared.is_some()
    }
}

impl Decision {
    /// Admitted without counting (`on_store_error = "allow"` while the store fails).
    fn unlimited(plan: &Plan) -> Self {
        Self {
            allowed: true,
            policies: Vec::new(),
            policy_header: plan.policy_header.clone(),
            message: None,
        }
    }

    /// Refused because the store cannot be asked (`on_store_error = "deny"`).
    fn store_unavailable(plan: &Plan) -> Self {
        Self {
            allowed: false,
            policies: Vec::new(),
            policy_header: plan.policy_header.clone(),
            message: Some("usage plans cannot be checked right now; retry shortly".to_owned()),
        }
    }
}

/// An IP address as text, written on the stack rather than in a `String` per request (the
/// longest, an IPv4-mapped IPv6 address, is 45 characters).
struct AddressText([u8; 48]);

impl Default for AddressText {
    fn default() -> Self {
        Self([0; 48])
    }
}

impl AddressText {
    /// `address` as text, kept in `self`.
    fn of(&mut self, address: IpAddr) -> &str {
        use std::io::Write as _;
        let mut cursor = std::io::Cursor::new(&mut self.0[..]);
        // 48 bytes hold every address, so the write cannot run out of room.
        let len = match write!(cursor, "{address}") {
            Ok(()) => usize::try_from(cursor.position()).unwrap_or(0),
            Err(_) => 0,
        };
        std::str::from_utf8(&self.0[..len]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::config::{ConsumerOverride, Period, Quota};
    use std::time::Duration;

    #[test]
    fn addresses_read_as_their_display() {
        for address in [
            "203.0.113.7",
            "2001:db8::1",
            "::ffff:255.255.255.255",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            let parsed: IpAddr = address.parse().expect("an address");
            assert_eq!(AddressText::default().of(parsed), parsed.to_string());
        }
    }

    fn principal(sub: &str, tier: Tier) -> Principal {
        Principal::new(
            sub.to_owned(),
            ["data:orders:read"],
            tier,
            Some(format!("app-{sub}")),
        )
    }

    fn limiter(config: RateLimitConfig) -> Limiter {
        Limiter::new(&config, None)
            .expect("valid")
            .expect("enabled")
    }

    #[tokio::test(start_paused = true)]
    async fn exactly_the_burst_passes_then_the_rate_refills_it() {
        let limiter = limiter(RateLimitConfig::default());
        let free = principal("cus_1", Tier::Free);
        for n in 0..10 {
            let decision = limiter.charge(&free, 1).await;
            assert!(decision.allowed, "request {n}");
        }
        let refused = limiter.charge(&free, 1).await;
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs(), Some(1));
        tokio::time::advance(Duration::from_millis(400)).await;
        assert!(limiter.charge(&free, 1).await.allowed);
        assert!(limiter.charge(&free, 1).await.allowed);
        assert!(
            !limiter.charge(&free, 1).await.allowed,
            "two units in 400 ms at 5/s"
        );
        // Another consumer has its own bucket.
        assert!(
            limiter
                .charge(&principal("cus_2", Tier::Free), 1)
                .await
                .allowed
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tiers_come_from_the_token_or_an_override_and_unknown_tiers_get_the_lowest() {
        let mut config = RateLimitConfig::default();
        config.consumers.insert(
            "partner-acme".into(),
            ConsumerOverride {
                tier: Tier::Enterprise,
            },
        );
        config.tiers.remove(&Tier::Enterprise);
        let limiter = limiter(config);
        let pro = principal("cus_1", Tier::Pro);
        assert_eq!(limiter.consumer(&pro).plan.tier, Tier::Pro);
        // Enterprise has no plan here: the lowest configured tier applies.
        let acme = principal("partner-acme", Tier::Free);
        assert_eq!(limiter.consumer(&acme).plan.tier, Tier::Free);
        let big = principal("cus_2", Tier::Enterprise);
        assert_eq!(limiter.consumer(&big).plan.tier, Tier::Free);
    }

    #[tokio::test(start_paused = true)]
    async fn the_consumer_is_the_client_when_configured() {
        let limiter = limiter(RateLimitConfig {
            key: ConsumerKey::Client,
            ..RateLimitConfig::default()
        });
        let first = principal("cus_1", Tier::Free);
        assert_eq!(limiter.consumer(&first).id, "app-cus_1");
    }

    #[tokio::test(start_paused = true)]
    async fn a_month_quota_refuses_the_unit_after_its_limit_and_reports_the_reset() {
        let mut config = RateLimitConfig::default();
        config.tiers.insert(
            Tier::Free,
            TierPlan {
                rate_per_sec: 1_000.0,
                burst: 1_000,
                quotas: vec![Quota {
                    limit: 25,
                    period: Period::Month,
                }],
            },
        );
        let limiter = limiter(config);
        let free = principal("cus_1", Tier::Free);
        for _ in 0..5 {
            assert!(limiter.charge(&free, 5).await.allowed);
        }
        let refused = limiter.charge(&free, 1).await;
        assert!(!refused.allowed);
        let month = refused.most_constraining().expect("a policy");
        assert_eq!((month.name, month.remaining), ("month", 0));
        assert!(month.reset_secs > 0 && month.reset_secs <= 31 * 86_400);
        assert_eq!(refused.retry_after_secs(), Some(month.reset_secs));
    }

    #[test]
    fn a_disabled_limiter_is_none() {
        let config = RateLimitConfig {
            enabled: false,
            ..RateLimitConfig::default()
        };
        assert!(Limiter::new(&config, None).expect("valid").is_none());
    }
}
