//! `GET /v2/orders/stream`: live status changes of the customer's orders (every
//! customer's with `data:admin`), as server-sent events when the request accepts
//! `text/event-stream`, or over a WebSocket when it upgrades.
//!
//! Events are compact: `{"id","orderId","status","previousStatus","at"}`, where `id` is
//! the resume cursor. A client reconnects with `Last-Event-ID` (SSE) or `?after=` (either
//! transport) and gets every event it missed, in order, then live ones; one `reset` when
//! the ones it missed are no longer retained. The stream ends at the token's expiry (SSE
//! `event: expired`; WebSocket close 4401), on shutdown (SSE `retry:`; close 1012), and
//! for a client that fell behind (SSE: the connection is cut; close 1013 naming the cursor
//! to resume after).

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::response::sse::Event;
use http::HeaderMap;
use http::header::UPGRADE;
use serde::{Deserialize, Serialize};
use switchyard_core::ErrorCode;
use switchyard_core::auth::{Principal, Scope};
use switchyard_core::domain::OrderStatus;
use switchyard_core::metrics::OpenStream;
use switchyard_core::problem::Problem;
use switchyard_core::streaming::sse::{accepts_event_stream, sse_response, subscription_frames};
use switchyard_core::streaming::{
    Cursor, FeedEvent, Filter, Refusal, StreamEnd, StreamItem, Subscription,
};
use time::format_description::well_known::Rfc3339;

use crate::AppState;

/// One event as the app sees it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CompactEvent<'a> {
    id: &'a str,
    order_id: &'a str,
    status: OrderStatus,
    previous_status: OrderStatus,
    at: String,
}

fn compact(event: &FeedEvent) -> String {
    let body = CompactEvent {
        id: &event.cursor,
        order_id: &event.event.order_id,
        status: event.event.status,
        previous_status: event.event.previous_status,
        at: event.event.occurred_at.format(&Rfc3339).unwrap_or_default(),
    };
    serde_json::to_string(&body).unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamQuery {
    /// Resume after this event (`Last-Event-ID` wins for SSE).
    after: Option<String>,
}

/// Opens the stream; see the module docs.
pub(crate) async fn orders_stream(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Problem> {
    principal.require(Scope::OrdersRead)?;
    let Query(query) =
        query.map_err(|rejection| Problem::new(ErrorCode::BadUserInput, rejection.body_text()))?;
    let wants_websocket = headers.contains_key(UPGRADE);
    let upgrade = match upgrade {
        Ok(upgrade) => Some(upgrade),
        Err(rejection) if wants_websocket => {
            return Err(Problem::new(ErrorCode::BadRequest, rejection.body_text()));
        }
        Err(_) => None,
    };
    if upgrade.is_none() && !accepts_event_stream(&headers) {
        return Err(Problem::new(
            ErrorCode::BadRequest,
            "GET /v2/orders/stream takes Accept: text/event-stream, or a WebSocket upgrade",
        ));
    }
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(query.after);
    let after = match after.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(
            Cursor::decode(text).map_err(|e| Problem::new(ErrorCode::BadRequest, e.to_string()))?,
        ),
    };
    let mut subscription = state
        .feed
        .subscribe(&principal, Filter::for_principal(&principal, None), after)
        .await
        .map_err(|refusal| match refusal {
            Refusal::TooManyForConsumer(_) => {
                Problem::new(ErrorCode::RateLimited, refusal.to_string())
            }
            Refusal::AtCapacity(_) => Problem::new(ErrorCode::Overloaded, refusal.to_string()),
            Refusal::SourceUnavailable => {
                Problem::new(ErrorCode::UpstreamUnavailable, refusal.to_string())
            }
        })?;
    subscription.expire_at(principal.expires_at());
    let limits = state.feed.limits();
    let heartbeat = Duration::from_secs(limits.heartbeat_secs);
    match upgrade {
        Some(upgrade) => {
            let open = state.metrics.stream_opened("websocket");
            Ok(upgrade.on_upgrade(move |socket| websocket(socket, subscription, open, heartbeat)))
        }
        None => {
            let open = state.metrics.stream_opened("sse");
            let reconnect = Duration::from_millis(limits.reconnect_after_ms);
            let frames = subscription_frames(subscription, open, reconnect, |event| {
                Event::default().event("order").data(compact(event))
            });
            Ok(sse_response(frames, heartbeat))
        }
    }
}

/// WebSocket close codes of this stream.
mod close {
    /// The server is restarting: reconnect (RFC 6455 registry).
    pub(super) const RESTARTING: u16 = 1012;
    /// Fell behind: reconnect later, resuming after the cursor in the reason.
    pub(super) const TRY_AGAIN_LATER: u16 = 1013;
    /// The token expired (as graphql-transport-ws uses it).
    pub(super) const UNAUTHORIZED: u16 = 4401;
}

/// Sends the subscription's events as text messages (a reset as `{"reset": "…"}`), pings
/// on silence, and closes with the code for how it ended.
async fn websocket(
    mut socket: WebSocket,
    mut subscription: Subscription,
    open: OpenStream,
    heartbeat: Duration,
) {
    // A send the client does not take within this is a client that stopped reading.
    let send_timeout = heartbeat * 2;
    let end = loop {
        let item = tokio::select! {
            item = subscription.next() => item,
            incoming = socket.recv() => match incoming {
                // The app has nothing to say on this socket but goodbye.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
        };
        let message = match item {
            StreamItem::Event(event) => {
                open.sent_event();
                Message::Text(compact(&event).into())
            }
            StreamItem::Reset => {
                Message::Text(r#"{"reset":"events were missed; refetch, then follow"}"#.into())
            }
            StreamItem::Heartbeat => Message::Ping(Default::default()),
            StreamItem::End(end) => break end,
        };
        tokio::select! {
            sent = tokio::time::timeout(send_timeout, socket.send(message)) => match sent {
                Ok(Ok(())) => {}
                // Gone, or not reading: nothing more can be said to it.
                Ok(Err(_)) | Err(_) => return,
            },
            () = subscription.behind() => break subscription.fell_behind_end(),
        }
    };
    let (code, reason) = match end {
        StreamEnd::TokenExpired => (close::UNAUTHORIZED, "token expired".to_owned()),
        StreamEnd::ShuttingDown => (close::RESTARTING, "server restarting; reconnect".to_owned()),
        StreamEnd::FellBehind { resume_after } => (
            close::TRY_AGAIN_LATER,
            match resume_after {
                Some(cursor) => format!("fell behind; resume after {cursor}"),
                None => "fell behind; reconnect".to_owned(),
            },
        ),
    };
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        socket.send(Message::Close(Some(frame))),
    )
    .await;
}
