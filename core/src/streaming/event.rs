//! Order events as every source delivers them, and the cursor clients resume with.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::OrderStatus;

use super::config::SourceKind;

/// One status change of one order, as the orders service emits it
/// (`schema/upstreams.openapi.yaml`, `OrderEvent`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// The orders service's own id of the event (increasing). Sources that number events
    /// themselves (JetStream, Kafka) position by their own sequence instead.
    pub event_id: u64,
    /// The order.
    pub order_id: String,
    /// Its customer.
    pub customer_id: String,
    /// The new status.
    pub status: OrderStatus,
    /// The status before.
    pub previous_status: OrderStatus,
    /// When it changed.
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
}

/// An event at its position in the source: the JetStream sequence, the Kafka offset, or
/// the upstream feed's event id. Positions increase along the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedEvent {
    /// Where the event sits in the source.
    pub position: u64,
    /// The event.
    pub event: OrderEvent,
    /// The cursor a client resumes after this event with (its wire `id`).
    pub cursor: String,
}

impl FeedEvent {
    /// `event` at `position` of a `source` feed.
    pub fn new(source: SourceKind, position: u64, event: OrderEvent) -> Self {
        Self {
            position,
            event,
            cursor: Cursor::new(source, position).encode(),
        }
    }
}

/// A resume point: a position in one kind of source. On the wire it is opaque: a
/// letter for the source and the position (`u-42`), so a cursor from one source is never
/// taken for a position in another (it gets a `reset` instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Which kind of source it counts in.
    pub source: SourceKind,
    /// The position of the last event the client has.
    pub position: u64,
}

/// Why a cursor could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a stream cursor: use the `id` of an event this API sent")]
pub struct BadCursor;

impl Cursor {
    /// The cursor after the event at `position` of `source`.
    pub fn new(source: SourceKind, position: u64) -> Self {
        Self { source, position }
    }

    fn letter(source: SourceKind) -> char {
        match source {
            SourceKind::Upstream => 'u',
            SourceKind::Nats => 'n',
            SourceKind::Kafka => 'k',
        }
    }

    /// The wire form.
    pub fn encode(self) -> String {
        format!("{}-{}", Self::letter(self.source), self.position)
    }

    /// Reads a wire cursor; at most 24 bytes, one known letter, a decimal position.
    pub fn decode(text: &str) -> Result<Self, BadCursor> {
        if text.len() > 24 {
            return Err(BadCursor);
        }
        let (letter, position) = text.split_once('-').ok_or(BadCursor)?;
        let source = match letter {
            "u" => SourceKind::Upstream,
            "n" => SourceKind::Nats,
            "k" => SourceKind::Kafka,
            _ => return Err(BadCursor),
        };
        if position.is_empty() || !position.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadCursor);
        }
        let position = position.parse().map_err(|_| BadCursor)?;
        Ok(Self { source, position })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        for source in [SourceKind::Upstream, SourceKind::Nats, SourceKind::Kafka] {
            let cursor = Cursor::new(source, 42);
            assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
        }
        assert_eq!(Cursor::decode("u-42").map(|c| c.position), Ok(42));
        for bad in [
            "",
            "u",
            "u-",
            "x-1",
            "u--1",
            "u-+1",
            "u-1a",
            "u-99999999999999999999",
            "42",
        ] {
            assert_eq!(Cursor::decode(bad), Err(BadCursor), "{bad:?}");
        }
    }
}
