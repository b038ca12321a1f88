//! One client's stream: what the feed replays and delivers to it, ended by its token's
//! expiry, the process's shutdown or its falling behind. Transports (SSE, WebSocket, in
//! the BFFs) turn each [`StreamItem`] into their wire format.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use tokio::sync::Notify;

use crate::shutdown::ShutdownHold;

use super::event::FeedEvent;
use super::feed::FeedInner;

/// Set by the feed when a client's buffer overflowed: it is forgotten, and its transport
/// closes it.
#[derive(Debug, Default)]
pub(super) struct Lag {
    behind: AtomicBool,
    notify: Notify,
}

impl Lag {
    pub(super) fn mark(&self) {
        self.behind.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    pub(super) fn is_set(&self) -> bool {
        self.behind.load(Ordering::Acquire)
    }
}

/// What the feed puts in a client's buffer.
#[derive(Debug)]
pub(super) enum Delivery {
    Event(Arc<FeedEvent>),
    Reset,
    /// Nothing to send: look at the flags (the client fell behind).
    Wake,
}

/// The next thing a transport sends.
#[derive(Debug)]
pub enum StreamItem {
    /// An event the client may see.
    Event(Arc<FeedEvent>),
    /// Events were missed that cannot be replayed: refetch, then follow.
    Reset,
    /// Nothing happened for `streams.heartbeat_secs`.
    Heartbeat,
    /// The stream is over.
    End(StreamEnd),
}

/// Why a stream ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// The client's token expired; it resumes with a fresh one.
    TokenExpired,
    /// The BFF is shutting down; the client reconnects (to another replica).
    ShuttingDown,
    /// The client did not take its events fast enough; it resumes after `resume_after`
    /// (the last event it was sent), or from now if it was sent none.
    FellBehind {
        /// The cursor of the last event sent.
        resume_after: Option<String>,
    },
}

/// A client's open stream; dropping it releases the client's place in the limits.
pub struct Subscription {
    feed: Arc<FeedInner>,
    id: u64,
    consumer: String,
    replay: VecDeque<Delivery>,
    receiver: mpsc::Receiver<Delivery>,
    lag: Arc<Lag>,
    _hold: ShutdownHold,
    expires_at: Option<Instant>,
    heartbeat: Interval,
    last_sent: Option<String>,
    ended: bool,
}

impl Subscription {
    pub(super) fn new(
        (feed, id, consumer): (Arc<FeedInner>, u64, String),
        replay: VecDeque<Delivery>,
        receiver: mpsc::Receiver<Delivery>,
        lag: Arc<Lag>,
        hold: ShutdownHold,
    ) -> Self {
        let period = Duration::from_secs(feed.streams.heartbeat_secs);
        let mut heartbeat = tokio::time::interval_at(Instant::now() + period, period);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            feed,
            id,
            consumer,
            replay,
            receiver,
            lag,
            _hold: hold,
            expires_at: None,
            heartbeat,
            last_sent: None,
            ended: false,
        }
    }

    /// Ends the stream at `exp` (Unix seconds, a token's expiry) with
    /// [`StreamEnd::TokenExpired`].
    pub fn expire_at(&mut self, exp: Option<u64>) {
        self.expires_at = exp.map(|exp| {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let left = (exp as i64).saturating_sub(now).max(0) as u64;
            Instant::now() + Duration::from_secs(left)
        });
    }

    /// Completes when the feed gave up on this client for falling behind: a transport
    /// blocked sending to a slow client waits on this beside its send, and then closes.
    pub async fn behind(&self) {
        loop {
            if self.lag.is_set() {
                return;
            }
            self.lag.notify.notified().await;
        }
    }

    /// The end a transport reports after [`Subscription::behind`] completed.
    pub fn fell_behind_end(&self) -> StreamEnd {
        StreamEnd::FellBehind {
            resume_after: self.last_sent.clone(),
        }
    }

    /// The cursor of the last event this stream handed out.
    pub fn last_sent(&self) -> Option<&str> {
        self.last_sent.as_deref()
    }

    fn fell_behind(&self) -> StreamItem {
        StreamItem::End(self.fell_behind_end())
    }

    fn item(&mut self, delivery: Delivery) -> Option<StreamItem> {
        match delivery {
            Delivery::Event(event) => {
                self.last_sent = Some(event.cursor.clone());
                self.heartbeat.reset();
                Some(StreamItem::Event(event))
            }
            Delivery::Reset => {
                self.heartbeat.reset();
                Some(StreamItem::Reset)
            }
            Delivery::Wake => None,
        }
    }

    /// The next item; after an [`StreamItem::End`] it returns the same end again.
    pub async fn next(&mut self) -> StreamItem {
        loop {
            if self.ended || self.lag.is_set() {
                self.ended = true;
                return self.fell_behind();
            }
            if let Some(delivery) = self.replay.pop_front() {
                if let Some(item) = self.item(delivery) {
                    return item;
                }
                continue;
            }
            let expiry = async {
                match self.expires_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let shutdown = self.feed.shutdown.clone();
            tokio::select! {
                biased;
                () = shutdown.requested() => return StreamItem::End(StreamEnd::ShuttingDown),
                () = expiry => return StreamItem::End(StreamEnd::TokenExpired),
                delivery = self.receiver.recv() => match delivery {
                    Some(delivery) => {
                        if let Some(item) = self.item(delivery) {
                            return item;
                        }
                    }
                    // The feed forgot this client: only when it fell behind.
                    None => self.lag.mark(),
                },
                _ = self.heartbeat.tick() => return StreamItem::Heartbeat,
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.feed.release(self.id, &self.consumer);
    }
}
