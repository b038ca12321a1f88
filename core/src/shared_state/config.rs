//! The `redis` section: where the fleet's shared state is.
//!
//! `redis://host:port` is one server (or a Valkey); `redis+cluster://h1:p1,h2:p2` is a
//! Redis Cluster, whose nodes are given as a comma-separated list.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Validate, require_positive};

/// The `redis` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://…` or `redis+cluster://h1:p1,h2:p2`; unset: in-process state.
    pub url: Option<String>,
    /// Time one Redis command may take before the caller gives up on it.
    pub timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            timeout_ms: 20,
        }
    }
}

impl RedisConfig {
    /// The per-command timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Where Redis is, if it is configured.
    pub fn target(&self) -> Option<Result<RedisTarget, ConfigError>> {
        self.url.as_deref().map(RedisTarget::parse)
    }
}

/// A parsed `redis.url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTarget {
    /// One server.
    Single(String),
    /// The seed nodes of a Redis Cluster, each as a `redis://` URL.
    Cluster(Vec<String>),
}

impl RedisTarget {
    pub(super) fn parse(url: &str) -> Result<Self, ConfigError> {
        let invalid = |message: &str| ConfigError::invalid("redis.url", message.to_owned());
        if let Some(nodes) = url.strip_prefix("redis+cluster://") {
            let nodes: Vec<String> = nodes
                .split(',')
                .map(str::trim)
                .filter(|node| !node.is_empty())
                .map(|node| format!("redis://{node}"))
                .collect();
            if nodes.is_empty() {
                return Err(invalid("expected redis+cluster://host:port[,host:port…]"));
            }
            return Ok(Self::Cluster(nodes));
        }
        if url.starts_with("redis://") || url.starts_with("rediss://") {
            Ok(Self::Single(url.to_owned()))
        } else {
            Err(invalid(
                "expected redis://host:port or redis+cluster://host:port,host:port",
            ))
        }
    }
}

impl Validate for RedisConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        require_positive("redis.timeout_ms", self.timeout_ms)?;
        match self.target() {
            Some(Err(error)) => Err(error),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_one_server_or_the_nodes_of_a_cluster() {
        let parse = |url: &str| RedisTarget::parse(url).ok();
        assert_eq!(
            parse("redis://127.0.0.1:6379"),
            Some(RedisTarget::Single("redis://127.0.0.1:6379".into()))
        );
        assert_eq!(
            parse("redis+cluster://a:1, b:2"),
            Some(RedisTarget::Cluster(vec![
                "redis://a:1".into(),
                "redis://b:2".into()
            ]))
        );
        assert_eq!(parse("http://a:1"), None);
        assert_eq!(parse("redis+cluster://"), None);
    }
}
