//! Server-sent events as both BFFs send them: `: ping` heartbeats, headers that keep
//! proxies from buffering, `retry:` on shutdown, and an aborted connection (not a clean
//! end) for a client that fell behind, so its `Last-Event-ID` is the last event it got.

use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use http::HeaderValue;

use crate::metrics::OpenStream;

use super::event::FeedEvent;
use super::subscription::{StreamEnd, StreamItem, Subscription};

/// Why an event stream was cut off rather than ended.
#[derive(Debug, thiserror::Error)]
#[error("the client fell behind its event stream")]
pub struct Aborted;

/// Whether the request's `Accept` allows `text/event-stream`.
pub fn accepts_event_stream(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| media.split(';').next().map(str::trim) == Some("text/event-stream"))
}

/// The `event: reset` frame: events were missed that cannot be replayed.
pub fn reset_event() -> Event {
    Event::default()
        .event("reset")
        .data("events were missed; refetch, then follow")
}

/// An SSE response over `frames`, with a `: ping` comment after `heartbeat` of silence.
/// An `Err` frame aborts the connection.
pub fn sse_response<S>(frames: S, heartbeat: Duration) -> Response
where
    S: Stream<Item = Result<Event, Aborted>> + Send + 'static,
{
    let mut response = Sse::new(frames)
        .keep_alive(KeepAlive::new().interval(heartbeat).text("ping"))
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    // Reverse proxies buffer responses unless told not to.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The frames of `subscription`: each event rendered by `render` (with its cursor as
/// `id:`), resets, then at the end: `retry:` before a shutdown, an `event: expired` when
/// the token ran out, a cut-off connection for a client that fell behind.
pub fn subscription_frames<F>(
    subscription: Subscription,
    open: OpenStream,
    reconnect_after: Duration,
    render: F,
) -> impl Stream<Item = Result<Event, Aborted>> + Send + 'static
where
    F: Fn(&FeedEvent) -> Event + Send + 'static,
{
    let state = Some((subscription, open, render));
    futures_util::stream::unfold(state, move |state| async move {
        let (mut subscription, open, render) = state?;
        loop {
            match subscription.next().await {
                StreamItem::Event(event) => {
                    open.sent_event();
                    let frame = render(&event).id(event.cursor.as_str());
                    return Some((Ok(frame), Some((subscription, open, render))));
                }
                StreamItem::Reset => {
                    return Some((Ok(reset_event()), Some((subscription, open, render))));
                }
                // The response's keep-alive sends the heartbeats.
                StreamItem::Heartbeat => {}
                StreamItem::End(StreamEnd::ShuttingDown) => {
                    let frame = Event::default()
                        .retry(reconnect_after)
                        .event("shutdown")
                        .data("this server is restarting; reconnect");
                    return Some((Ok(frame), None));
                }
                StreamItem::End(StreamEnd::TokenExpired) => {
                    let frame = Event::default()
                        .event("expired")
                        .data("the token expired; reconnect with a fresh one");
                    return Some((Ok(frame), None));
                }
                StreamItem::End(StreamEnd::FellBehind { .. }) => {
                    return Some((Err(Aborted), None));
                }
            }
        }
    })
}
