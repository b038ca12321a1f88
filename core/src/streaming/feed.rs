//! [`OrderFeed`]: one subscription to the event source per BFF process, fanned out to
//! every client entitled to each event.
//!
//! The feed keeps the last `events.replay_events` events in a ring. The ring, plus what
//! the source has yet to deliver, holds every event after `complete_after`; a client
//! resuming from a cursor at or after it is replayed what it missed from the ring and then
//! follows live, under the same lock the pump dispatches under, so nothing falls between
//! the two and nothing comes twice. A cursor before it (or from another kind of source)
//! gets one reset. When the source reports a gap (it no longer retains events the feed
//! had not seen), every client that had not seen them gets a reset too.
//!
//! The subscription is opened when the first client arrives and closed
//! `events.linger_secs` after the last one leaves; it reopens after the last position it
//! saw, so the ring stays valid across the pause and across source failures (reconnected
//! with backoff).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::{Notify, mpsc};

use crate::auth::{Principal, Scope};
use crate::shutdown::Shutdown;

use super::config::{EventsConfig, SourceKind, StreamsConfig};
use super::event::{Cursor, FeedEvent};
use super::source::{EventSource, SourceItem};
use super::subscription::{Delivery, Lag, Subscription};

/// Which events one client gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// Only this customer's (`None`: every customer's, for `data:admin`).
    pub customer: Option<String>,
    /// Only this order's.
    pub order: Option<String>,
}

impl Filter {
    /// What `principal` may follow: its own orders, or every customer's with `data:admin`;
    /// narrowed to `order` when given.
    pub fn for_principal(principal: &Principal, order: Option<String>) -> Self {
        Self {
            customer: (!principal.has(Scope::Admin)).then(|| principal.subject.clone()),
            order,
        }
    }

    fn admits(&self, event: &FeedEvent) -> bool {
        self.customer
            .as_deref()
            .is_none_or(|c| c == event.event.customer_id)
            && self
                .order
                .as_deref()
                .is_none_or(|o| o == event.event.order_id)
    }
}

/// Why a stream was not opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    /// The consumer already holds `streams.max_per_consumer` streams.
    #[error("{0} streams are open for this consumer, the most allowed; close one first")]
    TooManyForConsumer(usize),
    /// The BFF holds `streams.max_connections` streams.
    #[error("this service holds {0} streams, the most it serves; retry shortly")]
    AtCapacity(usize),
    /// Live events cannot be followed: the source has not answered within
    /// `events.ready_timeout_ms`.
    #[error("order events are unavailable right now; retry shortly")]
    SourceUnavailable,
}

struct Client {
    filter: Filter,
    /// Events at or before this position are not sent again.
    after: u64,
    sender: mpsc::Sender<Delivery>,
    lag: Arc<Lag>,
}

#[derive(Default)]
struct FeedState {
    ring: VecDeque<Arc<FeedEvent>>,
    /// The ring, and what the source is still to deliver, hold every event after this
    /// position; `None` while a gap is being resolved.
    complete_after: Option<u64>,
    /// The last position the source delivered.
    last_position: Option<u64>,
    clients: HashMap<u64, Client>,
    next_client: u64,
    by_customer: HashMap<String, Vec<u64>>,
    every_customer: Vec<u64>,
    /// Open streams per consumer, and in all (released when a [`Subscription`] drops).
    per_consumer: HashMap<String, usize>,
    open: usize,
    pump_running: bool,
    /// The source has delivered what it held when last opened.
    caught_up: bool,
}

impl FeedState {
    fn remove_client(&mut self, id: u64) {
        let Some(client) = self.clients.remove(&id) else {
            return;
        };
        let list = match &client.filter.customer {
            Some(customer) => self.by_customer.get_mut(customer),
            None => Some(&mut self.every_customer),
        };
        if let Some(list) = list {
            list.retain(|other| *other != id);
            if list.is_empty()
                && let Some(customer) = &client.filter.customer
            {
                self.by_customer.remove(customer);
            }
        }
    }

    fn last(&self) -> u64 {
        self.last_position.unwrap_or(0)
    }
}

pub(super) struct FeedInner {
    source: Arc<dyn EventSource>,
    events: EventsConfig,
    pub(super) streams: StreamsConfig,
    state: Mutex<FeedState>,
    /// Wakes the pump when the last client leaves (to start lingering).
    clients_changed: Notify,
    /// Wakes clients waiting for the feed to catch up.
    caught_up: Notify,
    pub(super) shutdown: Shutdown,
}

/// The order events of one BFF process. Cloning is cheap; every clone is the same feed.
#[derive(Clone)]
pub struct OrderFeed {
    inner: Arc<FeedInner>,
}

impl OrderFeed {
    /// A feed over `source`, opened on the first subscription.
    pub fn new(
        source: Arc<dyn EventSource>,
        events: &EventsConfig,
        streams: &StreamsConfig,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            inner: Arc::new(FeedInner {
                source,
                events: events.clone(),
                streams: streams.clone(),
                state: Mutex::new(FeedState {
                    complete_after: Some(0),
                    ..FeedState::default()
                }),
                clients_changed: Notify::new(),
                caught_up: Notify::new(),
                shutdown,
            }),
        }
    }

    /// Which kind of source feeds it.
    pub fn source_kind(&self) -> SourceKind {
        self.inner.source.kind()
    }

    /// The stream limits it enforces.
    pub fn limits(&self) -> &StreamsConfig {
        &self.inner.streams
    }

    /// The process's shutdown, which ends every stream.
    pub fn shutdown(&self) -> &Shutdown {
        &self.inner.shutdown
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.inner.lock().open
    }

    /// Opens a stream for `principal`'s `filter`: everything after `after` (a decoded
    /// cursor), then live events. Without a cursor it is live events only: it waits (at
    /// most `events.ready_timeout_ms`) until the feed has caught up with its source, so
    /// that "live" starts at the source's head.
    pub async fn subscribe(
        &self,
        principal: &Principal,
        filter: Filter,
        after: Option<Cursor>,
    ) -> Result<Subscription, Refusal> {
        let inner = &self.inner;
        let reservation = self.reserve(&principal.subject)?;
        if after.is_none() {
            let deadline =
                tokio::time::Instant::now() + Duration::from_millis(inner.events.ready_timeout_ms);
            loop {
                let caught_up = inner.caught_up.notified();
                if inner.lock().caught_up {
                    break;
                }
                if tokio::time::timeout_at(deadline, caught_up).await.is_err() {
                    // `reservation` drops: the place is given back.
                    return Err(Refusal::SourceUnavailable);
                }
            }
        }
        let (sender, receiver) = mpsc::channel(inner.streams.client_buffer);
        let lag = Arc::new(Lag::default());
        let mut state = inner.lock();
        let mut replay = VecDeque::new();
        let last = state.last();
        let after_position = match after {
            None => last,
            Some(cursor) if cursor.source != inner.source.kind() => {
                replay.push_back(Delivery::Reset);
                last
            }
            Some(cursor) => match state.complete_after {
                Some(complete) if cursor.position >= complete => {
                    replay.extend(
                        state
                            .ring
                            .iter()
                            .filter(|e| e.position > cursor.position && filter.admits(e))
                            .map(|e| Delivery::Event(Arc::clone(e))),
                    );
                    cursor.position.max(last)
                }
                Some(_) => {
                    replay.push_back(Delivery::Reset);
                    last
                }
                // A gap is being resolved: the first event after it decides.
                None => cursor.position,
            },
        };
        let id = reservation.id;
        match &filter.customer {
            Some(customer) => state
                .by_customer
                .entry(customer.clone())
                .or_default()
                .push(id),
            None => state.every_customer.push(id),
        }
        state.clients.insert(
            id,
            Client {
                filter,
                after: after_position,
                sender,
                lag: Arc::clone(&lag),
            },
        );
        drop(state);
        Ok(Subscription::new(
            reservation.into_parts(),
            replay,
            receiver,
            lag,
            inner.shutdown.hold(),
        ))
    }

    /// Takes a place for `consumer` within the limits, and starts the pump if it is not
    /// running.
    fn reserve(&self, consumer: &str) -> Result<Reservation, Refusal> {
        let inner = &self.inner;
        let mut state = inner.lock();
        let held = state.per_consumer.get(consumer).copied().unwrap_or(0);
        if held >= inner.streams.max_per_consumer {
            return Err(Refusal::TooManyForConsumer(inner.streams.max_per_consumer));
        }
        if state.open >= inner.streams.max_connections {
            return Err(Refusal::AtCapacity(inner.streams.max_connections));
        }
        *state.per_consumer.entry(consumer.to_owned()).or_default() += 1;
        state.open += 1;
        let id = state.next_client;
        state.next_client += 1;
        let first = state.open == 1;
        let start_pump = !state.pump_running;
        state.pump_running = true;
        drop(state);
        if start_pump {
            tokio::spawn(pump(Arc::clone(inner)));
        } else if first {
            // A lingering pump waits for this.
            inner.clients_changed.notify_one();
        }
        Ok(Reservation {
            feed: Some(Arc::clone(inner)),
            id,
            consumer: consumer.to_owned(),
        })
    }
}

/// A client's place within the limits, given back when dropped (by the [`Subscription`]
/// it becomes, or unused).
pub(super) struct Reservation {
    feed: Option<Arc<FeedInner>>,
    pub(super) id: u64,
    consumer: String,
}

impl Reservation {
    /// Hands the place over to a subscription, which releases it in its turn.
    fn into_parts(mut self) -> (Arc<FeedInner>, u64, String) {
        let feed = self.feed.take().expect("a reservation is handed over once");
        (feed, self.id, std::mem::take(&mut self.consumer))
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(feed) = self.feed.take() {
            feed.release(self.id, &self.consumer);
        }
    }
}

impl FeedInner {
    fn lock(&self) -> MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets client `id` and releases its consumer's stream (a [`Subscription`] dropped).
    pub(super) fn release(&self, id: u64, consumer: &str) {
        let mut state = self.lock();
        state.remove_client(id);
        if let Some(held) = state.per_consumer.get_mut(consumer) {
            *held -= 1;
            if *held == 0 {
                state.per_consumer.remove(consumer);
            }
        }
        state.open -= 1;
        let idle = state.open == 0;
        drop(state);
        if idle {
            self.clients_changed.notify_one();
        }
    }

    fn dispatch(&self, item: SourceItem) {
        let mut state = self.lock();
        let event = match item {
            SourceItem::Gap => {
                state.complete_after = None;
                return;
            }
            SourceItem::CaughtUp => {
                state.caught_up = true;
                drop(state);
                self.caught_up.notify_waiters();
                return;
            }
            SourceItem::Event(event) => event,
        };
        if state
            .last_position
            .is_some_and(|last| event.position <= last)
        {
            // Redelivered after a reconnect: every client has it already.
            return;
        }
        let event = Arc::new(event);
        let position = event.position;
        if state.complete_after.is_none() {
            // The first event after a gap: whoever had not reached it missed something.
            let complete = position.saturating_sub(1);
            state.ring.clear();
            state.complete_after = Some(complete);
            for client in state.clients.values_mut() {
                if client.after < complete {
                    client.after = complete;
                    if client.sender.try_send(Delivery::Reset).is_err() {
                        client.lag.mark();
                    }
                }
            }
        }
        state.last_position = Some(position);
        if state.ring.len() == self.events.replay_events
            && let Some(oldest) = state.ring.pop_front()
        {
            state.complete_after = Some(oldest.position);
        }
        state.ring.push_back(Arc::clone(&event));
        let state = &mut *state;
        let owners = state.by_customer.get(&event.event.customer_id);
        let mut behind = Vec::new();
        for id in owners
            .into_iter()
            .flatten()
            .chain(state.every_customer.iter())
        {
            let Some(client) = state.clients.get_mut(id) else {
                continue;
            };
            if client.lag.is_set() {
                behind.push(*id);
                continue;
            }
            if position <= client.after || !client.filter.admits(&event) {
                continue;
            }
            client.after = position;
            if client
                .sender
                .try_send(Delivery::Event(Arc::clone(&event)))
                .is_err()
            {
                // Its buffer is full (or it is gone): close it with its cursor rather
                // than buffer without limit.
                client.lag.mark();
                behind.push(*id);
            }
        }
        for id in behind {
            if let Some(client) = state.clients.get(&id) {
                // Wake its reader so that it notices.
                let _ = client.sender.try_send(Delivery::Wake);
            }
            state.remove_client(id);
        }
    }
}

/// Reads the source and dispatches its items while there are clients, reconnecting with
/// backoff; stops `linger_secs` after the last client leaves.
async fn pump(inner: Arc<FeedInner>) {
    let linger = Duration::from_secs(inner.events.linger_secs);
    let initial = Duration::from_millis(inner.events.reconnect_initial_ms);
    let max = Duration::from_millis(inner.events.reconnect_max_ms);
    let mut backoff = initial;
    let kind = inner.source.kind().as_str();
    loop {
        if stop_if_idle(&inner, linger).await {
            return;
        }
        let after = {
            let mut state = inner.lock();
            state.caught_up = false;
            state.last_position
        };
        let mut items = match inner.source.open(after, inner.events.replay_events).await {
            Ok(items) => {
                tracing::info!(source = kind, after, "order events: subscribed");
                items
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "order events: cannot subscribe");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(max);
                continue;
            }
        };
        loop {
            tokio::select! {
                item = items.next() => match item {
                    Some(Ok(item)) => {
                        backoff = initial;
                        inner.dispatch(item);
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "order events: source failed; reconnecting");
                        break;
                    }
                    None => {
                        tracing::warn!(source = kind, "order events: source ended; reconnecting");
                        break;
                    }
                },
                () = inner.clients_changed.notified() => {
                    if inner.lock().open == 0 && stop_if_idle(&inner, linger).await {
                        return;
                    }
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(max);
    }
}

/// When no client is left, waits `linger` for one to come; `true` (and the pump marked
/// stopped) if none did.
async fn stop_if_idle(inner: &FeedInner, linger: Duration) -> bool {
    if inner.lock().open > 0 {
        return false;
    }
    let deadline = tokio::time::Instant::now() + linger;
    loop {
        let woken = tokio::time::timeout_at(deadline, inner.clients_changed.notified()).await;
        let mut state = inner.lock();
        if state.open > 0 {
            return false;
        }
        if woken.is_err() {
            state.pump_running = false;
            // Whoever comes next waits for the reopened source to catch up: "live" must
            // not start at the head as it was when the pump stopped.
            state.caught_up = false;
            tracing::info!("order events: no client left; unsubscribed");
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use time::OffsetDateTime;

    use super::super::event::OrderEvent;
    use super::super::source::{SourceError, SourceStream};
    use super::super::subscription::{StreamEnd, StreamItem};
    use super::*;
    use crate::domain::{OrderStatus, Tier};

    /// A source the test feeds by hand: every `open` gets the next receiver, and records
    /// the position it was opened after.
    struct HandFed {
        feeds: StdMutex<VecDeque<mpsc::UnboundedReceiver<SourceItem>>>,
        opened_after: StdMutex<Vec<Option<u64>>>,
    }

    #[async_trait::async_trait]
    impl EventSource for HandFed {
        fn kind(&self) -> SourceKind {
            SourceKind::Upstream
        }

        async fn open(&self, after: Option<u64>, _: usize) -> Result<SourceStream, SourceError> {
            self.opened_after.lock().expect("lock").push(after);
            let next = self.feeds.lock().expect("lock").pop_front();
            match next {
                Some(mut receiver) => Ok(futures_util::stream::poll_fn(move |cx| {
                    receiver.poll_recv(cx).map(|item| item.map(Ok))
                })
                .boxed()),
                None => Err(SourceError::new(SourceKind::Upstream, "no more feeds")),
            }
        }
    }

    fn event(position: u64, customer: &str) -> SourceItem {
        SourceItem::Event(FeedEvent::new(
            SourceKind::Upstream,
            position,
            OrderEvent {
                event_id: position,
                order_id: format!("ord_{position}"),
                customer_id: customer.to_owned(),
                status: OrderStatus::Paid,
                previous_status: OrderStatus::Pending,
                occurred_at: OffsetDateTime::UNIX_EPOCH,
            },
        ))
    }

    fn customer(id: &str) -> Principal {
        Principal::new(id.to_owned(), ["data:orders:read"], Tier::Free, None)
    }

    type HandFedFeed = (
        OrderFeed,
        Vec<mpsc::UnboundedSender<SourceItem>>,
        Arc<HandFed>,
    );

    fn feed_with(feeds: usize, streams: StreamsConfig, replay_events: usize) -> HandFedFeed {
        let events = EventsConfig {
            replay_events,
            ..EventsConfig::default()
        };
        feed_of(feeds, true, streams, events)
    }

    /// A feed over `feeds` hand-fed opens, each starting with `CaughtUp` if `caught_up`.
    fn feed_of(
        feeds: usize,
        caught_up: bool,
        streams: StreamsConfig,
        events: EventsConfig,
    ) -> HandFedFeed {
        let mut senders = Vec::new();
        let mut receivers = VecDeque::new();
        for _ in 0..feeds {
            let (sender, receiver) = mpsc::unbounded_channel();
            if caught_up {
                // Nothing retained: live from the start.
                sender.send(SourceItem::CaughtUp).expect("send");
            }
            senders.push(sender);
            receivers.push_back(receiver);
        }
        let source = Arc::new(HandFed {
            feeds: StdMutex::new(receivers),
            opened_after: StdMutex::new(Vec::new()),
        });
        let events = EventsConfig {
            reconnect_initial_ms: 1,
            reconnect_max_ms: 1,
            ..events
        };
        let feed = OrderFeed::new(
            Arc::clone(&source) as Arc<dyn EventSource>,
            &events,
            &streams,
            Shutdown::never(),
        );
        (feed, senders, source)
    }

    async fn next_position(subscription: &mut Subscription) -> Option<u64> {
        match subscription.next().await {
            StreamItem::Event(event) => Some(event.position),
            StreamItem::Reset => None,
            other => panic!("expected an event or a reset, got {other:?}"),
        }
    }

    /// A stream of everything `who` may see after `after`.
    async fn open(feed: &OrderFeed, who: &Principal, after: Option<Cursor>) -> Subscription {
        feed.subscribe(who, Filter::for_principal(who, None), after)
            .await
            .expect("open")
    }

    fn cursor(position: u64) -> Option<Cursor> {
        Some(Cursor::new(SourceKind::Upstream, position))
    }

    #[tokio::test]
    async fn each_client_gets_its_own_customers_events_and_resumes_without_gap_or_repeat() {
        let (feed, senders, _) = feed_with(1, StreamsConfig::default(), 100);
        let alice = customer("cus_a");
        let mut live = open(&feed, &alice, None).await;
        for position in 1..=6 {
            let owner = if position % 2 == 0 { "cus_b" } else { "cus_a" };
            senders[0].send(event(position, owner)).expect("send");
        }
        assert_eq!(next_position(&mut live).await, Some(1));
        assert_eq!(next_position(&mut live).await, Some(3));
        assert_eq!(next_position(&mut live).await, Some(5));
        // Resuming after 1: 3 and 5 from the ring, then live ones.
        let mut resumed = open(&feed, &alice, cursor(1)).await;
        senders[0].send(event(7, "cus_a")).expect("send");
        for expected in [3, 5, 7] {
            assert_eq!(next_position(&mut resumed).await, Some(expected));
        }
        assert_eq!(next_position(&mut live).await, Some(7));
    }

    #[tokio::test]
    async fn a_cursor_older_than_the_ring_or_from_another_source_gets_one_reset() {
        let (feed, senders, _) = feed_with(1, StreamsConfig::default(), 3);
        let alice = customer("cus_a");
        let _warm = open(&feed, &alice, None).await;
        for position in 1..=6 {
            senders[0].send(event(position, "cus_a")).expect("send");
        }
        // Until the pump has dispatched them all.
        while feed.inner.lock().last_position != Some(6) {
            tokio::task::yield_now().await;
        }
        let mut old = open(&feed, &alice, cursor(1)).await;
        assert_eq!(next_position(&mut old).await, None, "a reset first");
        senders[0].send(event(7, "cus_a")).expect("send");
        assert_eq!(next_position(&mut old).await, Some(7), "then live");
        let mut foreign = feed
            .subscribe(
                &alice,
                Filter::for_principal(&alice, None),
                Some(Cursor::new(SourceKind::Nats, 5)),
            )
            .await
            .expect("open");
        assert_eq!(next_position(&mut foreign).await, None);
        // Within the ring (4..=7): exact.
        let mut recent = open(&feed, &alice, cursor(4)).await;
        for expected in [5, 6, 7] {
            assert_eq!(next_position(&mut recent).await, Some(expected));
        }
    }

    #[tokio::test]
    async fn a_source_failure_reconnects_after_the_last_position_and_skips_redeliveries() {
        let (feed, senders, source) = feed_with(2, StreamsConfig::default(), 100);
        let alice = customer("cus_a");
        let mut stream = open(&feed, &alice, None).await;
        senders[0].send(event(1, "cus_a")).expect("send");
        senders[0].send(event(2, "cus_a")).expect("send");
        assert_eq!(next_position(&mut stream).await, Some(1));
        assert_eq!(next_position(&mut stream).await, Some(2));
        let [first, second]: [_; 2] = senders.try_into().expect("two feeds");
        drop(first); // the source goes away
        // The new connection redelivers 2 (a source may), then continues.
        second.send(event(2, "cus_a")).expect("send");
        second.send(event(3, "cus_a")).expect("send");
        assert_eq!(next_position(&mut stream).await, Some(3));
        assert_eq!(
            *source.opened_after.lock().expect("lock"),
            vec![None, Some(2)]
        );
    }

    #[tokio::test]
    async fn a_gap_in_the_source_resets_the_clients_that_had_not_seen_it() {
        let (feed, senders, _) = feed_with(1, StreamsConfig::default(), 100);
        let alice = customer("cus_a");
        let mut stream = open(&feed, &alice, None).await;
        senders[0].send(event(1, "cus_a")).expect("send");
        senders[0].send(SourceItem::Gap).expect("send");
        senders[0].send(event(50, "cus_a")).expect("send");
        assert_eq!(next_position(&mut stream).await, Some(1));
        assert_eq!(next_position(&mut stream).await, None, "reset for 2..=49");
        assert_eq!(next_position(&mut stream).await, Some(50));
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_is_closed_with_its_cursor_and_others_keep_going() {
        let streams = StreamsConfig {
            client_buffer: 4,
            ..StreamsConfig::default()
        };
        let (feed, senders, _) = feed_with(1, streams, 100);
        let alice = customer("cus_a");
        let mut slow = open(&feed, &alice, None).await;
        let mut fast = open(&feed, &alice, None).await;
        senders[0].send(event(1, "cus_a")).expect("send");
        assert_eq!(next_position(&mut slow).await, Some(1));
        assert_eq!(next_position(&mut fast).await, Some(1));
        for position in 2..=20 {
            senders[0].send(event(position, "cus_a")).expect("send");
            assert_eq!(next_position(&mut fast).await, Some(position));
        }
        match slow.next().await {
            StreamItem::End(StreamEnd::FellBehind { resume_after }) => {
                assert_eq!(resume_after.as_deref(), Some("u-1"));
            }
            other => panic!("expected the end, got {other:?}"),
        }
        assert_eq!(feed.open_streams(), 2, "until the transport drops it");
        drop(slow);
        assert_eq!(feed.open_streams(), 1);
    }

    #[tokio::test]
    async fn streams_are_limited_per_consumer_and_in_all() {
        let streams = StreamsConfig {
            max_per_consumer: 2,
            max_connections: 3,
            ..StreamsConfig::default()
        };
        let (feed, _senders, _) = feed_with(1, streams, 100);
        let (alice, bob, carol) = (customer("cus_a"), customer("cus_b"), customer("cus_c"));
        let open = async |who: &Principal| {
            feed.subscribe(who, Filter::for_principal(who, None), None)
                .await
        };
        let first = open(&alice).await.expect("first");
        let _second = open(&alice).await.expect("second");
        assert_eq!(
            open(&alice).await.err(),
            Some(Refusal::TooManyForConsumer(2))
        );
        let _bobs = open(&bob).await.expect("bob's");
        assert_eq!(open(&carol).await.err(), Some(Refusal::AtCapacity(3)));
        drop(first);
        assert!(
            open(&alice).await.is_ok(),
            "a closed stream frees its place"
        );
    }

    #[tokio::test]
    async fn admins_follow_every_customer_and_an_order_filter_narrows() {
        let (feed, senders, _) = feed_with(1, StreamsConfig::default(), 100);
        let admin = Principal::new(
            "ops".to_owned(),
            ["data:orders:read", "data:admin"],
            Tier::Free,
            None,
        );
        let mut everything = open(&feed, &admin, None).await;
        let alice = customer("cus_a");
        let mut one_order = feed
            .subscribe(
                &alice,
                Filter::for_principal(&alice, Some("ord_3".to_owned())),
                None,
            )
            .await
            .expect("open");
        for (position, owner) in [(1, "cus_b"), (2, "cus_a"), (3, "cus_a")] {
            senders[0].send(event(position, owner)).expect("send");
        }
        for expected in [1, 2, 3] {
            assert_eq!(next_position(&mut everything).await, Some(expected));
        }
        assert_eq!(next_position(&mut one_order).await, Some(3));
    }

    #[tokio::test]
    async fn after_the_feed_paused_a_live_client_starts_at_the_new_head() {
        let events = EventsConfig {
            linger_secs: 0,
            ..EventsConfig::default()
        };
        let (feed, senders, source) = feed_of(2, false, StreamsConfig::default(), events);
        let alice = customer("cus_a");
        senders[0].send(SourceItem::CaughtUp).expect("send");
        let mut first = open(&feed, &alice, None).await;
        senders[0].send(event(1, "cus_a")).expect("send");
        assert_eq!(next_position(&mut first).await, Some(1));
        drop(first);
        // The pump lingers for 0 s, then lets the source go.
        while feed.inner.lock().pump_running {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Made while nobody followed: the reopened source replays it, then is caught up.
        senders[1].send(event(2, "cus_a")).expect("send");
        senders[1].send(SourceItem::CaughtUp).expect("send");
        let mut second = open(&feed, &alice, None).await;
        senders[1].send(event(3, "cus_a")).expect("send");
        assert_eq!(
            next_position(&mut second).await,
            Some(3),
            "live: not the old one"
        );
        assert_eq!(
            *source.opened_after.lock().expect("lock"),
            vec![None, Some(1)]
        );
    }
}
