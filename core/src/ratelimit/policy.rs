//! The arithmetic of a usage plan, shared by both stores: GCRA for the rate and burst,
//! fixed UTC calendar windows for quotas, and the decision with its headers.
//!
//! GCRA keeps one number per consumer, the theoretical arrival time (TAT): the instant at
//! which the bucket would be full again. A request of `cost` units moves it to
//! `max(TAT, now) + cost × interval` and is admitted if that is no more than
//! `burst × interval` ahead of now. Quotas count units per window. A request is admitted
//! only if every policy admits it, and then charged to all of them; a refused request
//! charges nothing.
//!
//! The headers follow draft-ietf-httpapi-ratelimit-headers (structured fields):
//! `RateLimit-Policy: "burst";q=10;w=2, "month";q=10000;w=2592000` lists the plan and
//! `RateLimit: "burst";r=7;t=1` the state of the most constraining policy, `r` units
//! remaining and `t` seconds until it resets. For the burst policy `t` is the time until
//! the bucket is full, or, when it cannot take the request, until it can.

use http::{HeaderMap, HeaderName, HeaderValue};
use time::{Date, Month, OffsetDateTime, Time, UtcOffset};

use super::config::{Period, Quota, TierPlan};
use crate::domain::Tier;

/// `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers).
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit` (draft-ietf-httpapi-ratelimit-headers).
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Slack for floating-point rounding when comparing instants in milliseconds.
const EPSILON_MS: f64 = 1e-6;

/// A plan as the stores apply it, with its `RateLimit-Policy` formatted once.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The tier whose plan this is.
    pub tier: Tier,
    /// Milliseconds between two units at the sustained rate.
    pub interval_ms: f64,
    /// Units that may be spent at once.
    pub burst: u32,
    /// The quotas, in configuration order.
    pub quotas: Vec<Quota>,
    /// The `RateLimit-Policy` header value.
    pub policy_header: HeaderValue,
}

impl Plan {
    /// The plan of `tier` as configured.
    pub fn new(tier: Tier, config: &TierPlan) -> Self {
        let interval_ms = 1_000.0 / config.rate_per_sec;
        let burst_window = (f64::from(config.burst) * interval_ms / 1_000.0).ceil() as u64;
        let mut policies = vec![format!(
            "\"burst\";q={};w={}",
            config.burst,
            burst_window.max(1)
        )];
        for quota in &config.quotas {
            policies.push(format!(
                "\"{}\";q={};w={}",
                quota.period.as_str(),
                quota.limit,
                nominal_seconds(quota.period)
            ));
        }
        Self {
            tier,
            interval_ms,
            burst: config.burst,
            quotas: config.quotas.clone(),
            policy_header: HeaderValue::from_str(&policies.join(", "))
                .expect("policy names and numbers are valid header text"),
        }
    }

    /// The GCRA capacity in milliseconds.
    pub fn capacity_ms(&self) -> f64 {
        f64::from(self.burst) * self.interval_ms
    }
}

/// The nominal length of a period, as `w` in `RateLimit-Policy` (a month counts 30 days).
fn nominal_seconds(period: Period) -> u64 {
    match period {
        Period::Minute => 60,
        Period::Hour => 3_600,
        Period::Day => 86_400,
        Period::Month => 30 * 86_400,
    }
}

/// One window of a quota: `[start_ms, end_ms)` in Unix milliseconds, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Window {
    /// The quota's period.
    pub period: Period,
    /// First millisecond of the window.
    pub start_ms: i64,
    /// First millisecond after it.
    pub end_ms: i64,
}

fn midnight(date: Date) -> i64 {
    date.with_time(Time::MIDNIGHT)
        .assume_offset(UtcOffset::UTC)
        .unix_timestamp()
        * 1_000
}

/// The window of `period` that contains `now_ms`.
pub(super) fn window(period: Period, now_ms: i64) -> Window {
    let fixed = |len_ms: i64| {
        let start_ms = now_ms.div_euclid(len_ms) * len_ms;
        Window {
            period,
            start_ms,
            end_ms: start_ms + len_ms,
        }
    };
    match period {
        Period::Minute => fixed(60_000),
        Period::Hour => fixed(3_600_000),
        Period::Day => fixed(86_400_000),
        Period::Month => {
            let now = OffsetDateTime::from_unix_timestamp(now_ms.div_euclid(1_000))
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            let (year, month) = (now.year(), now.month());
            let first = Date::from_calendar_date(year, month, 1).unwrap_or(now.date());
            let (next_year, next_month) = match month {
                Month::December => (year + 1, Month::January),
                other => (year, other.next()),
            };
            let next = Date::from_calendar_date(next_year, next_month, 1).unwrap_or(first);
            Window {
                period,
                start_ms: midnight(first),
                end_ms: midnight(next),
            }
        }
    }
}

/// What a store holds for a consumer before a decision: the TAT (if any) and the units
/// used in each quota's current window, in the plan's order.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Counters {
    /// Theoretical arrival time in Unix milliseconds; `None` for a new consumer.
    pub tat_ms: Option<f64>,
    /// Units used in the current window of each quota.
    pub used: Vec<u64>,
}

/// The state of one policy after a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyState {
    /// `burst` or the quota's period.
    pub name: &'static str,
    /// The policy's size (`q`).
    pub limit: u64,
    /// Units left (`r`).
    pub remaining: u64,
    /// Seconds until it resets (`t`).
    pub reset_secs: u64,
    /// Whether this policy refused the request.
    pub violated: bool,
}

/// A usage-plan decision: admitted or not, and the state of every policy.
#[derive(Clone, Debug)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Every policy of the plan, burst first.
    pub policies: Vec<PolicyState>,
    /// The plan's `RateLimit-Policy` header.
    pub policy_header: HeaderValue,
    /// Why the request was refused, for the client.
    pub message: Option<String>,
}

/// The outcome of applying `cost` units of `plan` at `now_ms` to `counters`: the decision
/// and, when it is admitted, the new TAT to store.
pub(super) fn evaluate(
    plan: &Plan,
    now_ms: i64,
    counters: &Counters,
    cost: u32,
) -> (Decision, f64) {
    let now = now_ms as f64;
    let cost_ms = f64::from(cost) * plan.interval_ms;
    let base = counters.tat_ms.map_or(now, |tat| tat.max(now));
    let new_tat = base + cost_ms;
    let capacity = plan.capacity_ms();
    let burst_ok = new_tat - now <= capacity + EPSILON_MS;
    let windows: Vec<Window> = plan
        .quotas
        .iter()
        .map(|quota| window(quota.period, now_ms))
        .collect();
    let quotas_ok = plan
        .quotas
        .iter()
        .zip(&counters.used)
        .all(|(quota, used)| used + u64::from(cost) <= quota.limit);
    let allowed = burst_ok && quotas_ok;

    let ahead = if allowed { new_tat - now } else { base - now };
    let units_left = ((capacity - ahead + EPSILON_MS) / plan.interval_ms).floor();
    let burst_reset = if burst_ok {
        ahead
    } else {
        new_tat - now - capacity
    };
    let mut policies = vec![PolicyState {
        name: "burst",
        limit: u64::from(plan.burst),
        remaining: units_left.max(0.0) as u64,
        reset_secs: secs_ceil(burst_reset),
        violated: !burst_ok,
    }];
    let mut message = (!burst_ok).then(|| {
        if cost > plan.burst {
            format!(
                "this request costs {cost} units, more than the plan's burst of {}",
                plan.burst
            )
        } else {
            "rate limit exceeded; slow down".to_owned()
        }
    });
    for ((quota, used), window) in plan.quotas.iter().zip(&counters.used).zip(&windows) {
        let violated = used + u64::from(cost) > quota.limit;
        let used_after = if allowed {
            used + u64::from(cost)
        } else {
            *used
        };
        if violated && message.is_none() {
            let resets = OffsetDateTime::from_unix_timestamp(window.end_ms / 1_000)
                .ok()
                .and_then(|at| {
                    at.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default();
            message = Some(format!(
                "{} quota of {} units exhausted; it resets at {resets}",
                quota.period.as_str(),
                quota.limit
            ));
        }
        policies.push(PolicyState {
            name: quota.period.as_str(),
            limit: quota.limit,
            remaining: quota.limit.saturating_sub(used_after),
            reset_secs: secs_ceil((window.end_ms - now_ms) as f64),
            violated,
        });
    }
    let decision = Decision {
        allowed,
        policies,
        policy_header: plan.policy_header.clone(),
        message,
    };
    (decision, new_tat)
}

fn secs_ceil(ms: f64) -> u64 {
    (ms.max(0.0) / 1_000.0).ceil() as u64
}

impl Decision {
    /// The policy the `RateLimit` header reports: the violated one that takes longest to
    /// reset, or else the one with the fewest units left.
    pub fn most_constraining(&self) -> Option<&PolicyState> {
        let violated = self
            .policies
            .iter()
            .filter(|p| p.violated)
            .max_by_key(|p| p.reset_secs);
        violated.or_else(|| {
            self.policies
                .iter()
                .min_by_key(|p| (p.remaining, u64::MAX - p.reset_secs))
        })
    }

    /// `Retry-After` for a refused request, in seconds: never earlier than the reset of any
    /// policy that refused it, and at least 1.
    pub fn retry_after_secs(&self) -> Option<u64> {
        (!self.allowed).then(|| {
            self.policies
                .iter()
                .filter(|p| p.violated)
                .map(|p| p.reset_secs)
                .max()
                .unwrap_or(1)
                .max(1)
        })
    }

    /// Adds `RateLimit-Policy` and `RateLimit` (and `Retry-After` when refused).
    pub fn apply_headers(&self, headers: &mut HeaderMap) {
        headers.insert(RATELIMIT_POLICY, self.policy_header.clone());
        if let Some(policy) = self.most_constraining() {
            let value = format!(
                "\"{}\";r={};t={}",
                policy.name, policy.remaining, policy.reset_secs
            );
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(RATELIMIT, value);
            }
        }
        if let Some(secs) = self.retry_after_secs() {
            headers.insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::config::Quota;

    fn free() -> Plan {
        Plan::new(
            Tier::Free,
            &TierPlan {
                rate_per_sec: 5.0,
                burst: 10,
                quotas: vec![Quota {
                    limit: 10_000,
                    period: Period::Month,
                }],
            },
        )
    }

    #[test]
    fn the_policy_header_lists_the_burst_and_every_quota() {
        assert_eq!(
            free().policy_header,
            "\"burst\";q=10;w=2, \"month\";q=10000;w=2592000"
        );
    }

    #[test]
    fn a_burst_passes_at_once_then_the_rate_refills_it() {
        let plan = free();
        let mut counters = Counters {
            tat_ms: None,
            used: vec![0],
        };
        let now = 1_800_000_000_000;
        for n in 0..10 {
            let (decision, tat) = evaluate(&plan, now, &counters, 1);
            assert!(decision.allowed, "request {n}");
            assert_eq!(decision.policies[0].remaining, 9 - n);
            counters.tat_ms = Some(tat);
            counters.used[0] += 1;
        }
        let (refused, _) = evaluate(&plan, now, &counters, 1);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs(), Some(1), "one unit every 200 ms");
        let shown = refused.most_constraining().expect("a policy");
        assert_eq!(
            (shown.name, shown.remaining, shown.reset_secs),
            ("burst", 0, 1)
        );
        // 200 ms later one unit has come back.
        let (later, _) = evaluate(&plan, now + 200, &counters, 1);
        assert!(later.allowed);
        assert_eq!(later.policies[0].remaining, 0);
    }

    #[test]
    fn an_exhausted_quota_refuses_and_says_when_it_resets() {
        let plan = free();
        let counters = Counters {
            tat_ms: None,
            used: vec![10_000],
        };
        let now = 1_800_000_000_000;
        let (decision, _) = evaluate(&plan, now, &counters, 1);
        assert!(!decision.allowed);
        let month = &decision.policies[1];
        assert!(month.violated);
        assert_eq!(month.remaining, 0);
        let end = window(Period::Month, now).end_ms;
        assert_eq!(month.reset_secs, ((end - now) as u64).div_ceil(1_000));
        assert_eq!(decision.retry_after_secs(), Some(month.reset_secs));
        assert!(
            decision
                .message
                .as_deref()
                .is_some_and(|m| m.contains("month quota of 10000 units exhausted")),
            "{:?}",
            decision.message
        );
        // Nothing was charged to the burst.
        assert_eq!(decision.policies[0].remaining, 10);
    }

    #[test]
    fn windows_are_utc_calendar_periods() {
        // 2026-12-31T23:59:59.500Z
        let now = 1_798_761_599_500;
        let month = window(Period::Month, now);
        assert_eq!(month.start_ms, 1_796_083_200_000, "2026-12-01");
        assert_eq!(month.end_ms, 1_798_761_600_000, "2027-01-01");
        let day = window(Period::Day, now);
        assert_eq!(day.end_ms, 1_798_761_600_000);
        assert_eq!(window(Period::Minute, now).start_ms, 1_798_761_540_000);
        assert_eq!(window(Period::Hour, now).start_ms, 1_798_758_000_000);
    }

    #[test]
    fn a_request_costing_more_than_the_burst_is_refused_with_a_reason() {
        let (decision, _) = evaluate(
            &free(),
            0,
            &Counters {
                tat_ms: None,
                used: vec![0],
            },
            11,
        );
        assert!(!decision.allowed);
        assert!(
            decision
                .message
                .as_deref()
                .is_some_and(|m| m.contains("more than the plan's burst"))
        );
    }
}
