//! Order activity: statuses that change over time, as `OrderEvent`s (DESIGN.md "Streaming
//! order updates"), served by the orders service as server-sent events.
//!
//! The dataset is immutable; [`OrderActivity`] holds what changed on top of it (each
//! advanced order's status and time) and a log of the last [`RETAINED_EVENTS`] events with
//! increasing ids, from which `GET /orders/events?since=` replays. An order advances along
//! `pending → paid → shipped → delivered`; delivered and cancelled orders stay put. The
//! random activity picks among the orders that can still advance (the recent ones: a few
//! hundred in the default data); when every one of them has been delivered, it places
//! them again, one per step (an event back to the status the dataset gives them), so a
//! sandbox left running, or a benchmark at 1,000 changes a second, never runs dry.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use futures_util::Stream;
use serde::Deserialize;
use switchyard_core::domain::{Order, OrderStatus};
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::data::{Dataset, Rng};

/// Events kept for replay.
pub const RETAINED_EVENTS: usize = 10_000;

/// One status change of one order: the contract's `OrderEvent`, the type the BFFs read.
pub use switchyard_core::streaming::OrderEvent;

#[derive(Default)]
struct Changes {
    /// Current status and change time of each order that has advanced.
    statuses: HashMap<String, (OrderStatus, OffsetDateTime)>,
    log: VecDeque<OrderEvent>,
    last_id: u64,
    /// Orders that can still advance (filled from the dataset on first use).
    movable: Vec<String>,
    /// Orders the activity has moved to the end of their life.
    finished: Vec<String>,
    seeded: bool,
}

/// The orders' changing statuses and their events.
pub struct OrderActivity {
    data: Arc<Dataset>,
    retained: usize,
    changes: Mutex<Changes>,
    live: broadcast::Sender<OrderEvent>,
    rng: Mutex<Rng>,
    /// Where every event is also sent, in order (the broker publishers).
    forward: Mutex<Vec<tokio::sync::mpsc::UnboundedSender<OrderEvent>>>,
}

/// Why an order cannot advance.
#[derive(Debug, PartialEq, Eq)]
pub enum AdvanceError {
    /// No such order.
    NotFound,
    /// Delivered or cancelled: nothing comes next.
    Final(OrderStatus),
}

fn next_status(status: OrderStatus) -> Option<OrderStatus> {
    match status {
        OrderStatus::Pending => Some(OrderStatus::Paid),
        OrderStatus::Paid => Some(OrderStatus::Shipped),
        OrderStatus::Shipped => Some(OrderStatus::Delivered),
        OrderStatus::Delivered | OrderStatus::Cancelled => None,
    }
}

impl OrderActivity {
    /// Activity over `data`, nothing changed yet.
    pub fn new(data: Arc<Dataset>) -> Arc<Self> {
        Self::retaining(data, RETAINED_EVENTS)
    }

    /// Activity keeping the last `retained` events for replay.
    pub fn retaining(data: Arc<Dataset>, retained: usize) -> Arc<Self> {
        let (live, _) = broadcast::channel(1024);
        Arc::new(Self {
            data,
            retained: retained.max(1),
            changes: Mutex::new(Changes::default()),
            live,
            rng: Mutex::new(Rng::new(0x0DE5)),
            forward: Mutex::new(Vec::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Changes> {
        self.changes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends every event from now on to `forward` too, in order.
    pub fn forward_to(&self, forward: tokio::sync::mpsc::UnboundedSender<OrderEvent>) {
        self.forward
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(forward);
    }

    /// `order` as it is now (its status and `updated_at` after any change).
    pub fn current(&self, order: &Order) -> Order {
        let mut order = order.clone();
        if let Some((status, at)) = self.lock().statuses.get(&order.id) {
            order.status = *status;
            order.updated_at = *at;
        }
        order
    }

    /// The current status of `order`.
    pub fn status_of(&self, order: &Order) -> OrderStatus {
        self.lock()
            .statuses
            .get(&order.id)
            .map_or(order.status, |(status, _)| *status)
    }

    /// Moves order `id` to its next status, and returns the event.
    pub fn advance(&self, id: &str) -> Result<OrderEvent, AdvanceError> {
        let order = self.data.order(id).ok_or(AdvanceError::NotFound)?;
        let event = {
            let mut changes = self.lock();
            self.seed(&mut changes);
            let previous = changes
                .statuses
                .get(id)
                .map_or(order.status, |(status, _)| *status);
            let status = next_status(previous).ok_or(AdvanceError::Final(previous))?;
            if next_status(status).is_none()
                && let Some(at) = changes.movable.iter().position(|m| m == id)
            {
                let done = changes.movable.swap_remove(at);
                changes.finished.push(done);
            }
            self.record(&mut changes, order, previous, status)
        };
        // No receivers is fine: nobody is streaming.
        let _ = self.live.send(event.clone());
        Ok(event)
    }

    /// The first time: every order the dataset has that can still advance.
    fn seed(&self, changes: &mut Changes) {
        if !changes.seeded {
            changes.seeded = true;
            changes.movable = self
                .data
                .orders
                .iter()
                .filter(|o| next_status(o.status).is_some())
                .map(|o| o.id.clone())
                .collect();
        }
    }

    /// Applies a change and logs (and forwards) its event; under the lock.
    fn record(
        &self,
        changes: &mut Changes,
        order: &Order,
        previous: OrderStatus,
        status: OrderStatus,
    ) -> OrderEvent {
        let now = OffsetDateTime::now_utc();
        changes.statuses.insert(order.id.clone(), (status, now));
        changes.last_id += 1;
        let event = OrderEvent {
            event_id: changes.last_id,
            order_id: order.id.clone(),
            customer_id: order.customer_id.clone(),
            status,
            previous_status: previous,
            occurred_at: now,
        };
        if changes.log.len() == self.retained {
            changes.log.pop_front();
        }
        changes.log.push_back(event.clone());
        // Under the lock, so the forwarded order is the id order.
        for forward in &*self.forward.lock().unwrap_or_else(PoisonError::into_inner) {
            let _ = forward.send(event.clone());
        }
        event
    }

    /// Advances one random order that can still advance; when none can, places a
    /// finished one again. `None` only when no order ever could.
    pub fn advance_random(&self) -> Option<OrderEvent> {
        let (movable, finished) = {
            let mut changes = self.lock();
            self.seed(&mut changes);
            (changes.movable.len(), changes.finished.len())
        };
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        if movable > 0 {
            let index = rng.below(movable as u64) as usize;
            drop(rng);
            let id = self.lock().movable.get(index).cloned()?;
            return self.advance(&id).ok();
        }
        if finished == 0 {
            return None;
        }
        let index = rng.below(finished as u64) as usize;
        drop(rng);
        let event = {
            let mut changes = self.lock();
            if index >= changes.finished.len() {
                return None;
            }
            let id = changes.finished.swap_remove(index);
            let order = self.data.order(&id)?;
            let previous = changes
                .statuses
                .get(&id)
                .map_or(order.status, |(status, _)| *status);
            changes.movable.push(id);
            // Placed again: back to where the dataset has it.
            self.record(&mut changes, order, previous, order.status)
        };
        let _ = self.live.send(event.clone());
        Some(event)
    }

    /// Retained events after `since` for `customer` (all customers: `None`), oldest first,
    /// and whether events after `since` were already dropped (the client must refetch).
    pub fn since(&self, customer: Option<&str>, since: u64) -> (Vec<OrderEvent>, bool) {
        let changes = self.lock();
        let oldest = changes
            .log
            .front()
            .map_or(changes.last_id + 1, |e| e.event_id);
        let lost = since + 1 < oldest && since < changes.last_id;
        let events = changes
            .log
            .iter()
            .filter(|e| e.event_id > since)
            .filter(|e| customer.is_none_or(|c| e.customer_id == c))
            .cloned()
            .collect();
        (events, lost)
    }

    /// Advances `per_sec` random orders a second until the process ends.
    pub async fn run(self: Arc<Self>, per_sec: f64) {
        if per_sec <= 0.0 {
            return;
        }
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sec));
        loop {
            tick.tick().await;
            let _ = self.advance_random();
        }
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    customer_id: Option<String>,
    since: Option<u64>,
}

/// `GET /orders/events?customer_id=&since=`: every retained event after `since` (or after
/// `Last-Event-ID`), then `event: live`, then live ones; `event: reset` first when some
/// were already dropped.
async fn events(
    State(activity): State<Arc<OrderActivity>>,
    headers: axum::http::HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let since = query.since.or_else(|| {
        headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    });
    // Subscribe before reading the log, so that nothing between the two is missed; the
    // live side skips what the replay already sent.
    let live = activity.live.subscribe();
    let customer = query.customer_id;
    let (replay, lost) = match since {
        Some(since) => activity.since(customer.as_deref(), since),
        None => (Vec::new(), false),
    };
    let last_sent = replay
        .last()
        .map(|e| e.event_id)
        .or(since)
        .unwrap_or_else(|| activity.lock().last_id);
    let mut pending: VecDeque<Event> = VecDeque::new();
    if lost {
        pending.push_back(reset_event());
    }
    pending.extend(replay.iter().map(order_event));
    // What follows is live: a consumer waiting to follow from the head starts here.
    pending.push_back(Event::default().event("live").data("caught up"));
    let state = Streaming {
        pending,
        live,
        customer,
        last_sent,
    };
    let stream = futures_util::stream::unfold(state, |mut state| async move {
        let event = state.next().await?;
        Some((Ok(event), state))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// One SSE client's position: what is left to replay, then the live feed.
struct Streaming {
    pending: VecDeque<Event>,
    live: broadcast::Receiver<OrderEvent>,
    customer: Option<String>,
    last_sent: u64,
}

impl Streaming {
    async fn next(&mut self) -> Option<Event> {
        if let Some(event) = self.pending.pop_front() {
            return Some(event);
        }
        loop {
            match self.live.recv().await {
                Ok(event) => {
                    let theirs = self
                        .customer
                        .as_deref()
                        .is_none_or(|c| c == event.customer_id);
                    if event.event_id <= self.last_sent || !theirs {
                        continue;
                    }
                    self.last_sent = event.event_id;
                    return Some(order_event(&event));
                }
                // This client fell behind the live feed: it must refetch, then follow.
                Err(broadcast::error::RecvError::Lagged(_)) => return Some(reset_event()),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

fn order_event(event: &OrderEvent) -> Event {
    Event::default()
        .id(event.event_id.to_string())
        .event("order")
        .data(serde_json::to_string(event).unwrap_or_default())
}

fn reset_event() -> Event {
    Event::default()
        .event("reset")
        .data("events were missed; refetch, then follow")
}

/// `POST /orders/{id}/advance`: moves the order to its next status now; 200 with the
/// event, 404 for no such order, 409 when it is delivered or cancelled.
async fn advance(State(activity): State<Arc<OrderActivity>>, Path(id): Path<String>) -> Response {
    match activity.advance(&id) {
        Ok(event) => Json(event).into_response(),
        Err(AdvanceError::NotFound) => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "not found"})),
        )
            .into_response(),
        Err(AdvanceError::Final(status)) => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({"error": format!("the order is {}; nothing comes next", status.as_str())})),
        )
            .into_response(),
    }
}

/// The event routes of the orders service.
pub fn routes(activity: Arc<OrderActivity>) -> Router {
    use axum::routing::{get, post};
    Router::new()
        .route("/orders/events", get(events))
        .route("/orders/{id}/advance", post(advance))
        .with_state(activity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_older_than_the_retained_events_is_told_to_refetch() {
        let activity = OrderActivity::retaining(Arc::new(Dataset::generate(7)), 20);
        let mut made = 0;
        for _ in 0..1000 {
            if made == 30 {
                break;
            }
            if activity.advance_random().is_some() {
                made += 1;
            }
        }
        assert_eq!(made, 30, "orders to advance");
        let (events, lost) = activity.since(None, 0);
        assert!(lost, "the first ten events are gone");
        assert_eq!(events.len(), 20);
        let (recent, lost) = activity.since(None, 25);
        assert!(!lost);
        assert_eq!(recent.len(), 5);
        assert!(
            recent
                .windows(2)
                .all(|w| w[0].event_id + 1 == w[1].event_id)
        );
        let (none, lost) = activity.since(None, 30);
        assert!(none.is_empty() && !lost, "caught up");
    }
}
