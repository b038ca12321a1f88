//! The Kafka source: topic `events.kafka_topic` (default `orders.events`), records keyed
//! by `customer_id` with an `OrderEvent` as JSON, read from partition 0 of a one-partition
//! topic (a single partition is what keeps every customer's events, and so every cursor,
//! in one order). The feed keeps the offset itself, so no consumer group is involved: a
//! record at offset `o` is at position `o + 1`.
//!
//! A producer retry can write a record twice; a record whose `event_id` is not after the
//! one before it is such a copy and is skipped.

use std::time::Duration;

use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use tokio::sync::Mutex;

use super::config::SourceKind;
use super::event::{FeedEvent, OrderEvent};
use super::source::{EventSource, SourceError, SourceItem, SourceStream};

/// Bytes asked for per fetch (a fetch returns at least one record if any is there).
const FETCH_BYTES: std::ops::Range<i32> = 1..1_048_576;
/// How long a fetch waits for new records before returning none.
const FETCH_WAIT_MS: i32 = 250;

/// Order events from a Kafka-protocol broker.
pub struct KafkaSource {
    brokers: Vec<String>,
    topic: String,
    client: Mutex<Option<std::sync::Arc<Client>>>,
    connect_timeout: Duration,
}

impl KafkaSource {
    /// The source reading `topic` from the bootstrap `brokers` (`host:port,…`).
    pub fn new(brokers: &str, topic: &str, connect_timeout: Duration) -> Self {
        Self {
            brokers: brokers.split(',').map(|b| b.trim().to_owned()).collect(),
            topic: topic.to_owned(),
            client: Mutex::new(None),
            connect_timeout,
        }
    }

    fn error(message: impl Into<String>) -> SourceError {
        SourceError::new(SourceKind::Kafka, message)
    }

    async fn partition(&self) -> Result<PartitionClient, SourceError> {
        let client = {
            let mut cached = self.client.lock().await;
            match &*cached {
                Some(client) => std::sync::Arc::clone(client),
                None => {
                    let built = tokio::time::timeout(
                        self.connect_timeout,
                        ClientBuilder::new(self.brokers.clone()).build(),
                    )
                    .await
                    .map_err(|_| Self::error(format!("no answer from {:?}", self.brokers)))?
                    .map_err(|e| {
                        Self::error(format!("cannot connect to {:?}: {e}", self.brokers))
                    })?;
                    let built = std::sync::Arc::new(built);
                    *cached = Some(std::sync::Arc::clone(&built));
                    built
                }
            }
        };
        let partition = client
            .partition_client(self.topic.clone(), 0, UnknownTopicHandling::Error)
            .await;
        if partition.is_err() {
            // The connection may be what failed: make a new one next time.
            *self.client.lock().await = None;
        }
        partition.map_err(|e| Self::error(format!("topic {:?}: {e}", self.topic)))
    }
}

struct Reading {
    partition: PartitionClient,
    /// The next offset to fetch.
    offset: i64,
    /// Deliver `CaughtUp` after this offset (the last one there at opening).
    caught_up_after: Option<i64>,
    last_event_id: Option<u64>,
    pending: std::collections::VecDeque<Result<SourceItem, SourceError>>,
    failed: bool,
}

#[async_trait::async_trait]
impl EventSource for KafkaSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Kafka
    }

    async fn open(&self, after: Option<u64>, recent: usize) -> Result<SourceStream, SourceError> {
        let partition = self.partition().await?;
        let offset_of = |at| {
            let partition = &partition;
            async move {
                partition
                    .get_offset(at)
                    .await
                    .map_err(|e| Self::error(format!("cannot read offsets: {e}")))
            }
        };
        let earliest = offset_of(OffsetAt::Earliest).await?;
        // The offset the next record will get.
        let next = offset_of(OffsetAt::Latest).await?;
        let wanted = match after {
            Some(position) => i64::try_from(position).unwrap_or(i64::MAX),
            None => next.saturating_sub(recent as i64).max(0),
        };
        let start = wanted.max(earliest);
        let lost = match after {
            Some(_) => wanted < earliest,
            None => start > 0,
        };
        let mut pending = std::collections::VecDeque::new();
        if lost {
            pending.push_back(Ok(SourceItem::Gap));
        }
        let caught_up_after = (next > start).then_some(next - 1);
        if caught_up_after.is_none() {
            pending.push_back(Ok(SourceItem::CaughtUp));
        }
        let reading = Reading {
            partition,
            offset: start,
            caught_up_after,
            last_event_id: None,
            pending,
            failed: false,
        };
        let stream =
            futures_util::stream::unfold(reading, |mut reading| async move {
                loop {
                    if let Some(item) = reading.pending.pop_front() {
                        return Some((item, reading));
                    }
                    if reading.failed {
                        return None;
                    }
                    let fetched = reading
                        .partition
                        .fetch_records(reading.offset, FETCH_BYTES, FETCH_WAIT_MS)
                        .await;
                    let records = match fetched {
                        Ok((records, _high_watermark)) => records,
                        Err(e) => {
                            reading.failed = true;
                            return Some((
                                Err(KafkaSource::error(format!("fetch failed: {e}"))),
                                reading,
                            ));
                        }
                    };
                    for record in records {
                        if record.offset < reading.offset {
                            continue;
                        }
                        reading.offset = record.offset + 1;
                        let position = (record.offset + 1) as u64;
                        let value = record.record.value.unwrap_or_default();
                        match serde_json::from_slice::<OrderEvent>(&value) {
                            Ok(event) => {
                                let copy = reading
                                    .last_event_id
                                    .is_some_and(|last| event.event_id <= last);
                                if !copy {
                                    reading.last_event_id = Some(event.event_id);
                                    reading.pending.push_back(Ok(SourceItem::Event(
                                        FeedEvent::new(SourceKind::Kafka, position, event),
                                    )));
                                }
                            }
                            Err(e) => reading.pending.push_back(Err(KafkaSource::error(format!(
                                "record at offset {} is not an OrderEvent: {e}",
                                record.offset
                            )))),
                        }
                        if reading.caught_up_after == Some(record.offset) {
                            reading.pending.push_back(Ok(SourceItem::CaughtUp));
                        }
                    }
                }
            });
        Ok(Box::pin(stream))
    }
}
