//! [`RedisClient`]: the process's one connection to the fleet's Redis (a server or a
//! cluster), with the `redis.timeout_ms` budget on every command.
//!
//! Connections are opened lazily, so a BFF starts while Redis is down.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ScriptInvocation, Value};
use tokio::sync::OnceCell;

use super::config::{RedisConfig, RedisTarget};
use crate::config::ConfigError;

/// Time the first connection may take at start.
const CONNECT_BUDGET: Duration = Duration::from_secs(2);

/// Why a shared store did not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Redis answered with an error, or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No answer within `redis.timeout_ms`.
    #[error("redis did not answer within the timeout")]
    Timeout,
    /// Redis answered something the caller cannot read.
    #[error("redis: unexpected reply")]
    Reply,
    /// The store's breaker is open after recent failures; Redis was not asked.
    #[error("redis failed recently; not asked again yet")]
    Paused,
}

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

struct Inner {
    connection: Connection,
    timeout: Duration,
}

/// A connection to Redis shared by every feature of the process; cheap to clone.
#[derive(Clone)]
pub struct RedisClient(Arc<Inner>);

/// What to send.
enum Command<'a> {
    Script(&'a ScriptInvocation<'a>),
    Plain(&'a Cmd),
}

impl Command<'_> {
    async fn run(&self, connection: &mut impl ConnectionLike) -> redis::RedisResult<Value> {
        match self {
            Self::Script(invocation) => invocation.invoke_async(connection).await,
            Self::Plain(command) => command.query_async(connection).await,
        }
    }
}

impl RedisClient {
    /// The client for `config`, or `None` when `redis.url` is unset; nothing is connected
    /// yet.
    pub fn new(config: &RedisConfig) -> Result<Option<Self>, ConfigError> {
        let Some(target) = config.target() else {
            return Ok(None);
        };
        let invalid = |e: redis::RedisError| {
            ConfigError::invalid("redis.url", format!("cannot use this Redis: {e}"))
        };
        let timeout = config.timeout();
        let connect_timeout = timeout.max(Duration::from_millis(200)).min(CONNECT_BUDGET);
        let connection = match target? {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(invalid)?;
                let settings = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(connect_timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1);
                Connection::Single(
                    ConnectionManager::new_lazy_with_config(client, settings).map_err(invalid)?,
                )
            }
            RedisTarget::Cluster(nodes) => {
                let client = ClusterClient::builder(nodes)
                    .connection_timeout(connect_timeout)
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
        Ok(Some(Self(Arc::new(Inner {
            connection,
            timeout,
        }))))
    }

    /// Connects now (one `PING`, with up to 2 s to connect), so requests do not spend
    /// their budget on it; a BFF calls it at start.
    pub async fn connect(&self) -> Result<(), StoreError> {
        let ping = redis::cmd("PING");
        self.send_within(Command::Plain(&ping), CONNECT_BUDGET)
            .await
            .map(drop)
    }

    /// Runs a Lua script (its keys must share one hash slot on a cluster).
    pub async fn invoke(&self, invocation: &ScriptInvocation<'_>) -> Result<Value, StoreError> {
        self.send(Command::Script(invocation)).await
    }

    /// Runs one command.
    pub async fn query(&self, command: &Cmd) -> Result<Value, StoreError> {
        self.send(Command::Plain(command)).await
    }

    async fn send(&self, command: Command<'_>) -> Result<Value, StoreError> {
        self.send_within(command, self.0.timeout).await
    }

    async fn send_within(
        &self,
        command: Command<'_>,
        budget: Duration,
    ) -> Result<Value, StoreError> {
        let call = async {
            match &self.0.connection {
                Connection::Single(manager) => command.run(&mut manager.clone()).await,
                Connection::Cluster(cluster) => {
                    let connection = cluster
                        .connection
                        .get_or_try_init(|| cluster.client.get_async_connection())
                        .await?;
                    command.run(&mut connection.clone()).await
                }
            }
        };
        let reply = tokio::time::timeout(budget, call)
            .await
            .map_err(|_| StoreError::Timeout)??;
        Ok(reply)
    }
}
