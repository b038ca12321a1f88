//! `switchyard-bench limiter`: the cost of one usage-plan decision on its own, in the
//! process and against a real Redis on loopback (`redis-server` must be installed), as
//! wall time per decision on one task and as decisions per second from 64 tasks at once.

use std::time::{Duration, Instant};

use switchyard_core::auth::Principal;
use switchyard_core::domain::Tier;
use switchyard_core::ratelimit::{Limiter, Period, Quota, RateLimitConfig, TierPlan};
use switchyard_core::shared_state::RedisConfig;

/// One line of the report.
pub struct LimiterFigures {
    /// `in-process` or `redis`.
    pub store: &'static str,
    /// Mean wall time of one decision, one after the other, µs.
    pub sequential_us: f64,
    /// Decisions per second with 64 concurrent callers.
    pub concurrent_per_sec: f64,
}

fn limiter(redis: &RedisConfig) -> anyhow::Result<Limiter> {
    let plan = TierPlan {
        rate_per_sec: 1e9,
        burst: u32::MAX,
        quotas: vec![Quota {
            limit: u64::MAX / 2,
            period: Period::Month,
        }],
    };
    let config = RateLimitConfig {
        tiers: [(Tier::Pro, plan)].into(),
        ..RateLimitConfig::default()
    };
    let client = switchyard_core::shared_state::RedisClient::new(redis)?;
    Limiter::new(&config, client.as_ref())?.ok_or_else(|| anyhow::anyhow!("usage plans are off"))
}

async fn measure(store: &'static str, limiter: Limiter, decisions: u64) -> LimiterFigures {
    let principals: Vec<Principal> = (0..256)
        .map(|n| Principal::new(format!("cus_{n:05}"), ["data:orders:read"], Tier::Pro, None))
        .collect();
    for principal in &principals {
        let _ = limiter.charge(principal, 1).await;
    }
    let started = Instant::now();
    for n in 0..decisions {
        let decision = limiter.charge(&principals[(n % 256) as usize], 1).await;
        debug_assert!(decision.allowed);
    }
    let sequential_us = started.elapsed().as_secs_f64() * 1e6 / decisions as f64;
    let tasks = 64u64;
    let started = Instant::now();
    let per_task = decisions / tasks;
    let workers = (0..tasks).map(|t| {
        let (limiter, principals) = (limiter.clone(), principals.clone());
        tokio::spawn(async move {
            for n in 0..per_task {
                let _ = limiter
                    .charge(&principals[((t + n) % 256) as usize], 1)
                    .await;
            }
        })
    });
    futures_util::future::join_all(workers).await;
    let concurrent_per_sec = (per_task * tasks) as f64 / started.elapsed().as_secs_f64();
    LimiterFigures {
        store,
        sequential_us,
        concurrent_per_sec,
    }
}

/// Measures `decisions` decisions per store.
pub async fn run(decisions: u64) -> anyhow::Result<Vec<LimiterFigures>> {
    let mut figures =
        vec![measure("in-process", limiter(&RedisConfig::default())?, decisions).await];
    let redis = switchyard_sandbox::redis::RedisServer::start("switchyard-bench limiter")
        .ok_or_else(|| anyhow::anyhow!("the Redis figure needs redis-server installed"))?;
    let config = RedisConfig {
        url: Some(redis.url()),
        timeout_ms: 1_000,
    };
    let shared = limiter(&config)?;
    anyhow::ensure!(shared.is_shared(), "the limiter does not use Redis");
    figures.push(measure("redis", shared, decisions / 10).await);
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(figures)
}
