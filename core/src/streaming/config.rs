//! The `events` section (where order events come from) and the `streams` section (what a
//! BFF lets its clients hold open).

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Validate, require_positive};

/// Where order events come from (key `events.source`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The orders service's server-sent events, `GET /orders/events` (the embedded default:
    /// needs nothing installed).
    #[default]
    Upstream,
    /// NATS JetStream (`events.nats_url`), stream `ORDERS`.
    Nats,
    /// A Kafka-protocol broker (`events.kafka_brokers`), topic `orders.events`.
    Kafka,
}

impl SourceKind {
    /// The spelling in config, logs and cursors.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upstream => "upstream",
            Self::Nats => "nats",
            Self::Kafka => "kafka",
        }
    }
}

/// Section `events`: the one subscription a BFF process holds to order events.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// `upstream` (the default), `nats` or `kafka`.
    pub source: SourceKind,
    /// NATS server for `source = "nats"`.
    pub nats_url: String,
    /// JetStream stream holding the events (subjects `orders.events.<customer_id>`).
    pub nats_stream: String,
    /// Kafka bootstrap brokers (`host:port`, comma-separated) for `source = "kafka"`.
    pub kafka_brokers: String,
    /// Kafka topic (one partition; see ARCHITECTURE.md).
    pub kafka_topic: String,
    /// Recent events kept in process, so that a client resuming within them is served
    /// without asking the source again. A cursor older than these gets one `reset`.
    pub replay_events: usize,
    /// Seconds the subscription to the source stays open after the last client leaves
    /// (an idle BFF costs its source nothing; a client reconnecting soon finds it warm).
    pub linger_secs: u64,
    /// First wait before reconnecting to a failed source; it doubles up to
    /// `reconnect_max_ms`.
    pub reconnect_initial_ms: u64,
    /// Longest wait between reconnection attempts.
    pub reconnect_max_ms: u64,
    /// Time a client asking for live events waits for the source to answer when the feed
    /// is (re)connecting; then 503.
    pub ready_timeout_ms: u64,
    /// Silence from the source after which the connection is treated as dead and
    /// reopened (the upstream feed sends a keep-alive comment every 15 s).
    pub source_idle_timeout_secs: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            source: SourceKind::Upstream,
            nats_url: "nats://127.0.0.1:4222".to_owned(),
            nats_stream: "ORDERS".to_owned(),
            kafka_brokers: "127.0.0.1:9092".to_owned(),
            kafka_topic: "orders.events".to_owned(),
            replay_events: 10_000,
            linger_secs: 60,
            reconnect_initial_ms: 100,
            reconnect_max_ms: 10_000,
            ready_timeout_ms: 5_000,
            source_idle_timeout_secs: 45,
        }
    }
}

impl Validate for EventsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        require_positive("events.replay_events", self.replay_events as u64)?;
        require_positive("events.reconnect_initial_ms", self.reconnect_initial_ms)?;
        require_positive("events.ready_timeout_ms", self.ready_timeout_ms)?;
        require_positive(
            "events.source_idle_timeout_secs",
            self.source_idle_timeout_secs,
        )?;
        if self.reconnect_max_ms < self.reconnect_initial_ms {
            return Err(ConfigError::invalid(
                "events.reconnect_max_ms",
                "must be at least events.reconnect_initial_ms",
            ));
        }
        match self.source {
            SourceKind::Upstream => {}
            SourceKind::Nats => {
                if !self.nats_url.starts_with("nats://") && !self.nats_url.starts_with("tls://") {
                    return Err(ConfigError::invalid(
                        "events.nats_url",
                        format!("expected nats://host:port, got {:?}", self.nats_url),
                    ));
                }
                if self.nats_stream.is_empty() {
                    return Err(ConfigError::invalid(
                        "events.nats_stream",
                        "must not be empty",
                    ));
                }
            }
            SourceKind::Kafka => {
                if self
                    .kafka_brokers
                    .split(',')
                    .any(|b| !b.trim().contains(':'))
                {
                    return Err(ConfigError::invalid(
                        "events.kafka_brokers",
                        format!(
                            "expected host:port[,host:port…], got {:?}",
                            self.kafka_brokers
                        ),
                    ));
                }
                if self.kafka_topic.is_empty() {
                    return Err(ConfigError::invalid(
                        "events.kafka_topic",
                        "must not be empty",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Section `streams`: what one BFF lets its clients hold open.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamsConfig {
    /// Streams one consumer (token subject) may hold open at once; the next is refused
    /// with 429 (WebSocket close 4429).
    pub max_per_consumer: usize,
    /// Streams this BFF holds open at once; the next is refused with 503 `OVERLOADED`.
    pub max_connections: usize,
    /// Events queued for one client that has not taken them yet. A client that falls this
    /// far behind is closed with its resume cursor instead of being buffered without limit.
    pub client_buffer: usize,
    /// Seconds between heartbeats on an idle stream (SSE `: ping`, WebSocket ping).
    pub heartbeat_secs: u64,
    /// Seconds a WebSocket client has to send `connection_init` (graphql-transport-ws;
    /// then close 4408).
    pub init_timeout_secs: u64,
    /// SSE `retry:` (milliseconds) sent when the BFF shuts down: when to reconnect.
    pub reconnect_after_ms: u64,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        Self {
            max_per_consumer: 5,
            max_connections: 10_000,
            client_buffer: 256,
            heartbeat_secs: 15,
            init_timeout_secs: 10,
            reconnect_after_ms: 1_000,
        }
    }
}

impl Validate for StreamsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        require_positive("streams.max_per_consumer", self.max_per_consumer as u64)?;
        require_positive("streams.max_connections", self.max_connections as u64)?;
        require_positive("streams.client_buffer", self.client_buffer as u64)?;
        require_positive("streams.heartbeat_secs", self.heartbeat_secs)?;
        require_positive("streams.init_timeout_secs", self.init_timeout_secs)?;
        Ok(())
    }
}
