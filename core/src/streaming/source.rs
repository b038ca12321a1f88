//! The seam between the feed and where events come from: an [`EventSource`] opens a
//! stream of [`SourceItem`]s after a position, and the feed reopens it after the last
//! position it saw whenever it fails.

use futures_util::stream::BoxStream;

use super::config::SourceKind;
use super::event::FeedEvent;

/// What a source delivers.
#[derive(Debug)]
pub enum SourceItem {
    /// The next event, at a position after every earlier one.
    Event(FeedEvent),
    /// Events between the previous item and the next event are lost (the source no longer
    /// retains them); clients that had not seen them must refetch.
    Gap,
    /// Everything the source held when it was opened has been delivered; what follows is
    /// live. Clients that asked for live events only are let in from here.
    CaughtUp,
}

/// Why a source could not be read; the feed logs it and reconnects with backoff.
#[derive(Debug, thiserror::Error)]
#[error("{source_kind} event source: {message}")]
pub struct SourceError {
    source_kind: &'static str,
    message: String,
}

impl SourceError {
    /// An error of the `kind` source.
    pub fn new(kind: SourceKind, message: impl Into<String>) -> Self {
        Self {
            source_kind: kind.as_str(),
            message: message.into(),
        }
    }
}

/// The items of an open source; an `Err` or the end means "reconnect".
pub type SourceStream = BoxStream<'static, Result<SourceItem, SourceError>>;

/// Where order events come from: the orders service's feed, JetStream or Kafka.
#[async_trait::async_trait]
pub trait EventSource: Send + Sync + 'static {
    /// Which kind it is (cursors carry it).
    fn kind(&self) -> SourceKind;

    /// Opens the feed after position `after`, or, with `None`, at the oldest of the last
    /// `recent` events the source retains. A source that cannot start right after `after`
    /// (or at its very first event, for `None`) sends [`SourceItem::Gap`] first; once the
    /// events it held at opening are delivered, it sends [`SourceItem::CaughtUp`].
    async fn open(&self, after: Option<u64>, recent: usize) -> Result<SourceStream, SourceError>;
}
