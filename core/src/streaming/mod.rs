//! Live order updates (DESIGN.md "Streaming order updates"): one subscription per BFF
//! process to an event source, fanned out in process to the clients entitled to each
//! event, resumable by cursor, bounded per client, per consumer and per BFF.
//!
//! Files, bottom up: `config.rs` (the `events` and `streams` sections), `event.rs`
//! (`OrderEvent`, `FeedEvent`, `Cursor`), `source.rs` (the `EventSource` seam),
//! `upstream_feed.rs` (the orders service's SSE feed, the embedded default), `nats.rs`
//! (JetStream), `kafka.rs` (a Kafka-protocol broker),
//! `subscription.rs` (one client's stream and how it ends), `feed.rs` (`OrderFeed`: the
//! ring, the fan-out, the pump), [`sse`] (server-sent events as both BFFs send them).
//! The WebSocket protocols and the wire shapes of events are the BFFs': they turn each
//! [`StreamItem`] into their format.

mod config;
mod event;
mod feed;
mod kafka;
mod nats;
mod source;
pub mod sse;
mod subscription;
mod upstream_feed;

use std::sync::Arc;
use std::time::Duration;

pub use config::{EventsConfig, SourceKind, StreamsConfig};
pub use event::{BadCursor, Cursor, FeedEvent, OrderEvent};
pub use feed::{Filter, OrderFeed, Refusal};
pub use kafka::KafkaSource;
pub use nats::{JetStreamSource, SUBJECT_PREFIX as NATS_SUBJECT_PREFIX};
pub use source::{EventSource, SourceError, SourceItem, SourceStream};
pub use subscription::{StreamEnd, StreamItem, Subscription};
pub use upstream_feed::UpstreamFeed;

use crate::config::{ConfigError, validate_http_url};
use crate::shutdown::Shutdown;
use crate::upstream::UpstreamsConfig;

impl OrderFeed {
    /// The feed `events` configures: the orders service's feed (at `upstreams.orders.url`),
    /// JetStream or Kafka.
    pub fn from_config(
        events: &EventsConfig,
        streams: &StreamsConfig,
        upstreams: &UpstreamsConfig,
        shutdown: Shutdown,
    ) -> Result<Self, ConfigError> {
        let source: Arc<dyn EventSource> = match events.source {
            SourceKind::Upstream => {
                let url = validate_http_url("upstreams.orders.url", &upstreams.orders.url)?;
                let feed = UpstreamFeed::new(
                    &url,
                    Duration::from_millis(upstreams.orders.connect_timeout_ms),
                    Duration::from_secs(events.source_idle_timeout_secs),
                )
                .map_err(|e| ConfigError::invalid("upstreams.orders.url", e.to_string()))?;
                Arc::new(feed)
            }
            SourceKind::Nats => Arc::new(JetStreamSource::new(
                &events.nats_url,
                &events.nats_stream,
                Duration::from_millis(upstreams.orders.connect_timeout_ms),
            )),
            SourceKind::Kafka => Arc::new(KafkaSource::new(
                &events.kafka_brokers,
                &events.kafka_topic,
                Duration::from_millis(upstreams.orders.connect_timeout_ms),
            )),
        };
        Ok(Self::new(source, events, streams, shutdown))
    }
}
