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
//! Connections are opened lazily, so a BFF starts while Redis is down; each call has the
//! `redis.timeout_ms` budget; failures are returned to the limiter, which decides per
//! `on_store_error` and stops asking Redis for a while (see `super::StoreBreaker`).

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Script, Value};
use tokio::sync::OnceCell;

use super::policy::{Counters, Decision, Plan, evaluate, window};
use crate::config::ConfigError;
use crate::shared_state::{RedisConfig, RedisTarget};

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

enum Connection {
    Single(ConnectionManager),
    Cluster(Box<LazyCluster>),
}

/// A cluster client and its connection, opened on first use (and again after a failure
/// to open it).
struct LazyCluster {
    client: ClusterClient,
    connection: OnceCell<ClusterConnection>,
}

/// Why the store could not decide.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis answered with an error, or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No answer within `redis.timeout_ms`.
    #[error("redis did not answer within the timeout")]
    Timeout,
    /// The script answered something else than its reply.
    #[error("redis: unexpected reply from the decision script")]
    Reply,
}

/// Usage-plan counters in Redis.
pub(super) struct RedisStore {
    connection: Connection,
    script: Script,
    timeout: std::time::Duration,
}

impl RedisStore {
    /// A store for `config` (which must name a target); nothing is connected yet.
    pub(super) fn new(config: &RedisConfig, target: RedisTarget) -> Result<Self, ConfigError> {
        let invalid = |e: redis::RedisError| {
            ConfigError::invalid("redis.url", format!("cannot use this Redis: {e}"))
        };
        let timeout = config.timeout();
        let connection = match target {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(invalid)?;
                let settings = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(
                        timeout.max(std::time::Duration::from_millis(200)),
                    ))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1);
                Connection::Single(
                    ConnectionManager::new_lazy_with_config(client, settings).map_err(invalid)?,
                )
            }
            RedisTarget::Cluster(nodes) => {
                let client = ClusterClient::builder(nodes)
                    .connection_timeout(timeout.max(std::time::Duration::from_millis(200)))
                    .response_timeout(timeout)
                    .retries(1)
                    .build()
                    .map_err(invalid)?;
                Connection::Cluster(Box::new(LazyCluster {
                    client,
                    connection: OnceCell::new(),
                }))
            }
        };
        Ok(Self {
            connection,
            script: Script::new(DECIDE),
            timeout,
        })
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
        let call = async {
            match &self.connection {
                Connection::Single(manager) => {
                    let mut manager = manager.clone();
                    invocation.invoke_async::<Value>(&mut manager).await
                }
                Connection::Cluster(cluster) => {
                    let connection = cluster
                        .connection
                        .get_or_try_init(|| cluster.client.get_async_connection())
                        .await?;
                    let mut connection = connection.clone();
                    invocation.invoke_async::<Value>(&mut connection).await
                }
            }
        };
        let reply = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| StoreError::Timeout)??;
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
