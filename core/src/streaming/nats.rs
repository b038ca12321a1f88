//! The JetStream source: stream `events.nats_stream` (default `ORDERS`), subjects
//! `orders.events.<customer_id>`, an `OrderEvent` as JSON per message, positioned by the
//! stream sequence. Each open is an ordered consumer (ephemeral, no acks, recreated by the
//! client on a sequence mismatch) starting right after the feed's last position; a
//! position the stream no longer holds is reported as a gap.

use std::time::Duration;

use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use futures_util::StreamExt as _;
use std::sync::Arc;

use tokio::sync::{Mutex, watch};

use super::config::SourceKind;
use super::event::{FeedEvent, OrderEvent};
use super::source::{EventSource, SourceError, SourceItem, SourceStream};

/// The subjects order events are published on: `orders.events.<customer_id>`.
pub const SUBJECT_PREFIX: &str = "orders.events";

/// Order events from NATS JetStream.
pub struct JetStreamSource {
    url: String,
    stream: String,
    connect_timeout: Duration,
    /// One connection, made on the first open and reused (the client reconnects by itself).
    client: Mutex<Option<async_nats::Client>>,
    /// Counts the client's reconnections. An open consumer ends when it changes: the
    /// feed reopens after its last position at once, rather than when the consumer would
    /// notice missed heartbeats (15 s and more).
    reconnections: Arc<watch::Sender<u64>>,
}

impl JetStreamSource {
    /// The source reading `stream` on the server at `url`.
    pub fn new(url: &str, stream: &str, connect_timeout: Duration) -> Self {
        Self {
            url: url.to_owned(),
            stream: stream.to_owned(),
            connect_timeout,
            client: Mutex::new(None),
            reconnections: Arc::new(watch::channel(0).0),
        }
    }

    fn error(message: impl Into<String>) -> SourceError {
        SourceError::new(SourceKind::Nats, message)
    }

    async fn client(&self) -> Result<async_nats::Client, SourceError> {
        let mut client = self.client.lock().await;
        if let Some(client) = &*client {
            return Ok(client.clone());
        }
        let reconnections = Arc::clone(&self.reconnections);
        let connected = async_nats::ConnectOptions::new()
            .event_callback(move |event| {
                let reconnections = Arc::clone(&reconnections);
                async move {
                    if matches!(event, async_nats::Event::Connected) {
                        reconnections.send_modify(|count| *count += 1);
                    }
                }
            })
            .connection_timeout(self.connect_timeout)
            .retry_on_initial_connect()
            .connect(self.url.as_str())
            .await
            .map_err(|e| Self::error(format!("cannot connect to {}: {e}", self.url)))?;
        *client = Some(connected.clone());
        Ok(connected)
    }
}

#[async_trait::async_trait]
impl EventSource for JetStreamSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Nats
    }

    async fn open(&self, after: Option<u64>, recent: usize) -> Result<SourceStream, SourceError> {
        let jetstream = async_nats::jetstream::new(self.client().await?);
        let mut reconnected = self.reconnections.subscribe();
        reconnected.mark_unchanged();
        let mut stream = jetstream
            .get_stream(&self.stream)
            .await
            .map_err(|e| Self::error(format!("no stream {:?}: {e}", self.stream)))?;
        let state = stream
            .info()
            .await
            .map_err(|e| Self::error(format!("stream {:?}: {e}", self.stream)))?
            .state
            .clone();
        // An empty stream reports first = last + 1.
        let first = state.first_sequence.max(1);
        let last = state.last_sequence;
        let wanted = match after {
            Some(after) => after + 1,
            None => last.saturating_sub(recent as u64).saturating_add(1).max(1),
        };
        let start = wanted.max(first);
        // Resuming: the events after `after` are gone. From the recent ones: the feed does
        // not hold the stream's beginning.
        let lost = match after {
            Some(_) => wanted < first,
            None => start > 1,
        };
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: format!("{SUBJECT_PREFIX}.>"),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: start,
                },
                ..OrderedConfig::default()
            })
            .await
            .map_err(|e| Self::error(format!("cannot consume {:?}: {e}", self.stream)))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| Self::error(format!("cannot consume {:?}: {e}", self.stream)))?;
        let mut head: Vec<Result<SourceItem, SourceError>> = Vec::new();
        if lost {
            head.push(Ok(SourceItem::Gap));
        }
        // Everything up to `last` was there at opening; nothing to wait for if none is.
        let caught_up_at = (last >= start).then_some(last);
        if caught_up_at.is_none() {
            head.push(Ok(SourceItem::CaughtUp));
        }
        let items = messages.flat_map(move |message| {
            let mut items: Vec<Result<SourceItem, SourceError>> = Vec::with_capacity(2);
            match message {
                Ok(message) => match message.info() {
                    Ok(info) => {
                        let position = info.stream_sequence;
                        items.push(
                            serde_json::from_slice::<OrderEvent>(&message.payload)
                                .map(|event| {
                                    SourceItem::Event(FeedEvent::new(
                                        SourceKind::Nats,
                                        position,
                                        event,
                                    ))
                                })
                                .map_err(|e| {
                                    Self::error(format!(
                                        "message {position} is not an OrderEvent: {e}"
                                    ))
                                }),
                        );
                        if caught_up_at == Some(position) {
                            items.push(Ok(SourceItem::CaughtUp));
                        }
                    }
                    Err(e) => {
                        items.push(Err(Self::error(format!("a message without metadata: {e}"))))
                    }
                },
                Err(e) => items.push(Err(Self::error(format!("consumer failed: {e}")))),
            }
            futures_util::stream::iter(items)
        });
        let reconnected = async move {
            let _ = reconnected.changed().await;
        };
        let ended = futures_util::stream::once(async {
            Err(Self::error(
                "the connection to the server was lost and made again",
            ))
        });
        Ok(futures_util::stream::iter(head)
            .chain(items)
            .take_until(reconnected)
            .chain(ended)
            .boxed())
    }
}
