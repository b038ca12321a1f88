//! The embedded default source: the orders service's server-sent events,
//! `GET /orders/events?since=<event_id>` (`id:` = `event_id`, `event: order` with an
//! `OrderEvent` as data, `event: reset` when events after `since` are no longer retained,
//! `event: live` once the retained events after `since` have been sent).

use std::time::Duration;

use futures_util::StreamExt as _;
use reqwest::header::{ACCEPT, HeaderValue};

use super::config::SourceKind;
use super::event::{FeedEvent, OrderEvent};
use super::source::{EventSource, SourceError, SourceItem, SourceStream};

/// Largest SSE event accepted from the feed; a longer one is a broken feed.
const MAX_EVENT_BYTES: usize = 64 * 1024;

/// The orders service's event feed.
pub struct UpstreamFeed {
    client: reqwest::Client,
    events_url: reqwest::Url,
    idle_timeout: Duration,
}

impl UpstreamFeed {
    /// The feed of the orders service at `orders_url`; a connection silent for
    /// `idle_timeout` (no event, no keep-alive comment) is treated as dead.
    pub fn new(
        orders_url: &reqwest::Url,
        connect_timeout: Duration,
        idle_timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let mut events_url = orders_url.clone();
        events_url.set_path(&format!(
            "{}/orders/events",
            orders_url.path().trim_end_matches('/')
        ));
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .read_timeout(idle_timeout)
            .build()?;
        Ok(Self {
            client,
            events_url,
            idle_timeout,
        })
    }

    fn error(message: impl Into<String>) -> SourceError {
        SourceError::new(SourceKind::Upstream, message)
    }
}

#[async_trait::async_trait]
impl EventSource for UpstreamFeed {
    fn kind(&self) -> SourceKind {
        SourceKind::Upstream
    }

    async fn open(&self, after: Option<u64>, _recent: usize) -> Result<SourceStream, SourceError> {
        let since = after.unwrap_or(0).to_string();
        let response = self
            .client
            .get(self.events_url.clone())
            .query(&[("since", since.as_str())])
            .header(ACCEPT, HeaderValue::from_static("text/event-stream"))
            .send()
            .await
            .map_err(|e| Self::error(format!("cannot open {}: {e}", self.events_url)))?;
        if !response.status().is_success() {
            return Err(Self::error(format!(
                "{} answered {}",
                self.events_url,
                response.status()
            )));
        }
        let idle = self.idle_timeout;
        let bytes = response.bytes_stream();
        let parser = SseParser::default();
        let stream = futures_util::stream::unfold(
            (bytes, parser, false),
            move |(mut bytes, mut parser, done)| async move {
                if done {
                    return None;
                }
                loop {
                    if let Some(item) = parser.next_item() {
                        return Some((item, (bytes, parser, false)));
                    }
                    match tokio::time::timeout(idle, bytes.next()).await {
                        Ok(Some(Ok(chunk))) => {
                            if let Err(error) = parser.feed(&chunk) {
                                return Some((Err(error), (bytes, parser, true)));
                            }
                        }
                        Ok(Some(Err(error))) => {
                            let error = UpstreamFeed::error(format!("feed broke: {error}"));
                            return Some((Err(error), (bytes, parser, true)));
                        }
                        Ok(None) => {
                            let error = UpstreamFeed::error("feed ended");
                            return Some((Err(error), (bytes, parser, true)));
                        }
                        Err(_) => {
                            let error = UpstreamFeed::error(format!(
                                "feed silent for {} s",
                                idle.as_secs()
                            ));
                            return Some((Err(error), (bytes, parser, true)));
                        }
                    }
                }
            },
        );
        Ok(stream.boxed())
    }
}

/// An incremental parser of `text/event-stream` (the WHATWG rules this feed needs:
/// `id`, `event`, `data` fields, comments, LF or CRLF line ends).
#[derive(Default)]
struct SseParser {
    buffer: Vec<u8>,
    /// Events completed by a blank line, oldest first.
    ready: std::collections::VecDeque<Result<SourceItem, SourceError>>,
    id: Option<String>,
    event: Option<String>,
    data: String,
}

impl SseParser {
    fn feed(&mut self, chunk: &[u8]) -> Result<(), SourceError> {
        self.buffer.extend_from_slice(chunk);
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line =
                std::str::from_utf8(line).map_err(|_| UpstreamFeed::error("feed is not UTF-8"))?;
            self.line(line);
        }
        if self.buffer.len() + self.data.len() > MAX_EVENT_BYTES {
            return Err(UpstreamFeed::error(format!(
                "an event is over {MAX_EVENT_BYTES} bytes"
            )));
        }
        Ok(())
    }

    fn line(&mut self, line: &str) {
        if line.is_empty() {
            self.dispatch();
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => self.id = Some(value.to_owned()),
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value);
            }
            _ => {}
        }
    }

    fn dispatch(&mut self) {
        let event = self.event.take();
        let id = self.id.take();
        let data = std::mem::take(&mut self.data);
        let item = match event.as_deref() {
            Some("reset") => Ok(SourceItem::Gap),
            Some("live") => Ok(SourceItem::CaughtUp),
            Some("order") | None if !data.is_empty() => Self::order(id, &data),
            // Keep-alives and events this BFF does not know.
            _ => return,
        };
        self.ready.push_back(item);
    }

    fn order(id: Option<String>, data: &str) -> Result<SourceItem, SourceError> {
        let event: OrderEvent = serde_json::from_str(data)
            .map_err(|e| UpstreamFeed::error(format!("an event is not an OrderEvent: {e}")))?;
        let position = match id {
            Some(id) => id
                .parse()
                .map_err(|_| UpstreamFeed::error(format!("event id {id:?} is not a number")))?,
            None => event.event_id,
        };
        Ok(SourceItem::Event(FeedEvent::new(
            SourceKind::Upstream,
            position,
            event,
        )))
    }

    fn next_item(&mut self) -> Option<Result<SourceItem, SourceError>> {
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(parser: &mut SseParser) -> Vec<Option<u64>> {
        std::iter::from_fn(|| parser.next_item())
            .map(|item| match item {
                Ok(SourceItem::Event(e)) => Some(e.position),
                Ok(SourceItem::Gap) => None,
                Ok(SourceItem::CaughtUp) => Some(0),
                Err(e) => panic!("{e}"),
            })
            .collect()
    }

    #[test]
    fn events_split_anywhere_are_parsed_whole() {
        let data = r#"{"event_id":7,"order_id":"ord_1","customer_id":"cus_1","status":"paid","previous_status":"pending","occurred_at":"2026-01-02T03:04:05Z"}"#;
        let text = format!(
            ": keep-alive\n\nevent: reset\ndata: refetch\n\nid: 7\r\nevent: order\r\ndata: {data}\r\n\r\nevent: live\ndata: \n\n"
        );
        for split in 0..text.len() {
            let mut parser = SseParser::default();
            parser.feed(&text.as_bytes()[..split]).expect("first part");
            parser.feed(&text.as_bytes()[split..]).expect("second part");
            assert_eq!(
                positions(&mut parser),
                vec![None, Some(7), Some(0)],
                "split at {split}"
            );
        }
    }

    #[test]
    fn a_broken_event_is_an_error_not_a_panic() {
        let mut parser = SseParser::default();
        parser
            .feed(b"id: x\nevent: order\ndata: {}\n\n")
            .expect("fed");
        assert!(parser.next_item().is_some_and(|item| item.is_err()));
        let mut parser = SseParser::default();
        let huge = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert!(parser.feed(&huge).is_err());
    }
}
