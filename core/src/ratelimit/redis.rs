//! The Redis store: one atomic Lua script per decision, so every replica (and every BFF)
//! sharing the Redis draws on one budget per consumer.
//!
//! The script reads the consumer's GCRA TAT and its quota counters, decides with Redis's own
//! clock (`TIME`, so replicas with skewed clocks agree on the rate), and, if the request is
//! admitted, writes them back with TTLs: the TAT expires when the bucket is full again, a
//! counter a minute after its window ends. Every key of a consumer carries the hash tag
//! `{sy:rl:<consumer>}`, so they sit in one slot and the script runs on Redis Cluster.
//! Quota windows are named by the BFF's clock (their start in Unix seconds).
//!
//! The process's [`RedisClient`] carries it (lazily connected, `redis.timeout_ms` per
//! call); failures are returned to the limiter, which decides per `on_store_error` and
//! stops asking Redis for a while (`shared_state::StoreBreaker`).

use redis::{Script, Value};

use super::policy::{Counters, Decision, Plan, evaluate, window};
use crate::shared_state::{RedisClient, StoreError};

/// The decision script. KEYS[1] is the consumer's TAT, KEYS[2..] its quota counters;
/// ARGV is interval (ms), capacity (ms), cost, then each quota's limit, then each window's
/// end (Unix ms). Returns `{allowed, now_ms, tat_before or "", used_1, …}`.
const DECIDE: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local quotas = #KEYS - 1
local tat = tonumber(redis.call('GET', KEYS[1]))
local base = now
if tat and tat > now then base = tat end
local new_tat = base + cost * interval
local allowed = (new_tat - now) <= capacity + 0.000001
local used = {}
for i = 1, quotas do
  local u = tonumber(redis.call('GET', KEYS[i + 1])) or 0
  used[i] = u
  if u + cost > tonumber(ARGV[3 + i]) then allowed = false end
end
if allowed then
  redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
  for i = 1, quotas do
    redis.call('INCRBY', KEYS[i + 1], cost)
    redis.call('PEXPIREAT', KEYS[i + 1], tonumber(ARGV[3 + quotas + i]) + 60000)
  end
end
local reply = {allowed and 1 or 0, now, tat and string.format('%.3f', tat) or ''}
for i = 1, quotas do reply[#reply + 1] = used[i] end
return reply
";

/// Usage-plan counters in Redis.
pub(super) struct RedisStore {
    client: RedisClient,
    script: Script,
}

impl RedisStore {
    /// A store over `client`.
    pub(super) fn new(client: RedisClient) -> Self {
        Self {
            client,
            script: Script::new(DECIDE),
        }
    }

    /// Decides `cost` units of `plan` for `consumer`, atomically in Redis.
    pub(super) async fn decide(
        &self,
        consumer: &str,
        plan: &Plan,
        cost: u32,
        local_now_ms: i64,
    ) -> Result<Decision, StoreError> {
        let tag = format!("{{sy:rl:{consumer}}}");
        let windows: Vec<_> = plan
            .quotas
            .iter()
            .map(|quota| window(quota.period, local_now_ms))
            .collect();
        let mut invocation = self.script.key(format!("{tag}:tat"));
        for w in &windows {
            invocation.key(format!(
                "{tag}:q:{}:{}",
                w.period.as_str(),
                w.start_ms / 1_000
            ));
        }
        invocation
            .arg(plan.interval_ms)
            .arg(plan.capacity_ms())
            .arg(cost);
        for quota in &plan.quotas {
            invocation.arg(quota.limit);
        }
        for w in &windows {
            invocation.arg(w.end_ms);
        }
        let reply = self.client.invoke(&invocation).await?;
        let (allowed, now_ms, counters) = parse_reply(&reply, plan.quotas.len())?;
        let (mut decision, _) = evaluate(plan, now_ms, &counters, cost);
        // Redis decided atomically; the local arithmetic only describes the decision.
        decision.allowed = allowed;
        Ok(decision)
    }
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok()?.parse().ok(),
        _ => None,
    }
}

fn parse_reply(reply: &Value, quotas: usize) -> Result<(bool, i64, Counters), StoreError> {
    let Value::Array(items) = reply else {
        return Err(StoreError::Reply);
    };
    if items.len() != 3 + quotas {
        return Err(StoreError::Reply);
    }
    let allowed = integer(&items[0]).ok_or(StoreError::Reply)? == 1;
    let now_ms = integer(&items[1]).ok_or(StoreError::Reply)?;
    let tat_ms = match &items[2] {
        Value::BulkString(bytes) if bytes.is_empty() => None,
        Value::BulkString(bytes) => Some(
            std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| text.parse::<f64>().ok())
                .ok_or(StoreError::Reply)?,
        ),
        _ => return Err(StoreError::Reply),
    };
    let used = items[3..]
        .iter()
        .map(|item| integer(item).and_then(|n| u64::try_from(n).ok()))
        .collect::<Option<Vec<u64>>>()
        .ok_or(StoreError::Reply)?;
    Ok((allowed, now_ms, Counters { tat_ms, used }))
}
