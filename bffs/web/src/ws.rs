//! `GET /graphql/ws`: GraphQL over WebSocket with the `graphql-transport-ws` protocol
//! (<https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>).
//!
//! The client authenticates with the upgrade request's `Authorization` header or, as
//! browsers cannot set headers on a WebSocket, in `connection_init`'s payload
//! (`{"Authorization": "Bearer …"}`). Each `subscribe` goes through the same checks as
//! `POST /graphql` (cost limits, the document cache, scopes) and runs in a task of its own
//! that feeds one writer; `complete` from the client stops it.
//!
//! Close codes: 4400 a message the protocol does not allow, 4401 a subscribe before the
//! acknowledgement or a token that is missing, invalid or has expired, 4403 a token
//! without any read scope, 4408 no `connection_init` in time, 4409 a subscription id
//! already in use, 4429 a second `connection_init`; 1012 when the BFF shuts down, and the
//! connection is dropped when the client stops reading.

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::Request;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_core::ErrorCode;
use switchyard_core::auth::{self, AuthError, Principal};
use switchyard_core::response::ErrorResponder as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::AppState;
use crate::errors::GraphqlErrorResponder;
use crate::http::{
    classify_errors, is_request_error, prepare_streamed, require_some_read_scope, wire,
};

/// The subprotocol spoken.
const PROTOCOL: &str = "graphql-transport-ws";
/// Largest message accepted from a client (a `subscribe` carries a document, like a
/// `POST /graphql` body).
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Close codes of the protocol, and the two of RFC 6455 used here.
mod close {
    pub(super) const BAD_MESSAGE: u16 = 4400;
    pub(super) const UNAUTHORIZED: u16 = 4401;
    pub(super) const FORBIDDEN: u16 = 4403;
    pub(super) const INIT_TIMEOUT: u16 = 4408;
    pub(super) const DUPLICATE_ID: u16 = 4409;
    pub(super) const TOO_MANY_INITS: u16 = 4429;
    pub(super) const RESTARTING: u16 = 1012;
}

/// A message from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Ping {
        #[serde(default)]
        payload: Option<Value>,
    },
    /// Its payload, if any, means nothing to the server.
    Pong {},
    Subscribe {
        id: String,
        payload: Box<Request>,
    },
    Complete {
        id: String,
    },
}

/// Upgrades to `graphql-transport-ws`. A `Authorization` header on the upgrade is checked
/// now (401 before upgrading); otherwise the token comes in `connection_init`.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let upgrade = upgrade.protocols([PROTOCOL]);
    if upgrade.selected_protocol().is_none() {
        return GraphqlErrorResponder.respond(
            ErrorCode::BadRequest,
            "GET /graphql/ws speaks the graphql-transport-ws subprotocol; ask for it in Sec-WebSocket-Protocol",
        );
    }
    let principal = if headers.contains_key(AUTHORIZATION) {
        match state.authenticator.authenticate(&headers).await {
            Ok(principal) => Some(principal),
            Err(error) => return auth::reject(&GraphqlErrorResponder, &error),
        }
    } else {
        None
    };
    upgrade
        .max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| Connection::new(state, socket, principal).run())
        .into_response()
}

/// What one subscription task sends the writer.
enum Outgoing {
    Message(String),
    /// The subscription is over: send `complete`.
    Done(String),
    /// The subscription failed before executing: send its `error`, and forget it.
    Failed(String, String),
}

struct Connection {
    state: AppState,
    socket: WebSocket,
    /// From the upgrade header, until `connection_init` confirms the connection.
    header_principal: Option<Principal>,
    principal: Option<Principal>,
    initialised: bool,
    subscriptions: HashMap<String, JoinHandle<()>>,
    outgoing: mpsc::Sender<Outgoing>,
    incoming: mpsc::Receiver<Outgoing>,
}

/// How the connection ends.
struct Close(u16, String);

impl Connection {
    fn new(state: AppState, socket: WebSocket, principal: Option<Principal>) -> Self {
        let (outgoing, incoming) = mpsc::channel(state.feed.limits().client_buffer);
        Self {
            state,
            socket,
            header_principal: principal,
            principal: None,
            initialised: false,
            subscriptions: HashMap::new(),
            outgoing,
            incoming,
        }
    }

    async fn run(mut self) {
        let limits = self.state.feed.limits().clone();
        let heartbeat = Duration::from_secs(limits.heartbeat_secs);
        let init_deadline = Instant::now() + Duration::from_secs(limits.init_timeout_secs);
        let mut ping = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        let shutdown = self.state.feed.shutdown().clone();
        let _hold = shutdown.hold();
        let close = loop {
            let expiry = self
                .principal
                .as_ref()
                .and_then(Principal::expires_at)
                .map(instant_of);
            tokio::select! {
                () = shutdown.requested() => {
                    break Close(close::RESTARTING, "server restarting; reconnect".to_owned());
                }
                () = sleep_until(expiry) => {
                    break Close(close::UNAUTHORIZED, "token expired".to_owned());
                }
                () = tokio::time::sleep_until(init_deadline), if !self.initialised => {
                    break Close(close::INIT_TIMEOUT, "Connection initialisation timeout".to_owned());
                }
                _ = ping.tick() => {
                    if !self.send(json!({"type": "ping"}).to_string(), heartbeat).await {
                        return self.stop();
                    }
                }
                Some(out) = self.incoming.recv() => {
                    let text = match out {
                        Outgoing::Message(text) => text,
                        Outgoing::Done(id) => {
                            self.subscriptions.remove(&id);
                            json!({"id": id, "type": "complete"}).to_string()
                        }
                        Outgoing::Failed(id, text) => {
                            self.subscriptions.remove(&id);
                            text
                        }
                    };
                    if !self.send(text, heartbeat).await {
                        return self.stop();
                    }
                }
                message = self.socket.recv() => match message {
                    Some(Ok(Message::Text(text))) => {
                        if let Err(close) = self.on_message(text.as_str(), heartbeat).await {
                            break close;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        break Close(close::BAD_MESSAGE, "binary messages are not part of the protocol".to_owned());
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return self.stop(),
                    Some(Ok(_)) => {}
                },
            }
        };
        self.stop();
        let frame = CloseFrame {
            code: close.0,
            reason: close.1.into(),
        };
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            self.socket.send(Message::Close(Some(frame))),
        )
        .await;
    }

    /// Sends one text message; `false` when the client is gone or not reading.
    async fn send(&mut self, text: String, heartbeat: Duration) -> bool {
        matches!(
            tokio::time::timeout(heartbeat * 2, self.socket.send(Message::Text(text.into()))).await,
            Ok(Ok(()))
        )
    }

    fn stop(&mut self) {
        for (_, task) in self.subscriptions.drain() {
            task.abort();
        }
    }

    async fn on_message(&mut self, text: &str, heartbeat: Duration) -> Result<(), Close> {
        let message: ClientMessage = serde_json::from_str(text).map_err(|e| {
            Close(
                close::BAD_MESSAGE,
                truncate(&format!("invalid message: {e}")),
            )
        })?;
        match message {
            ClientMessage::ConnectionInit { payload } => {
                if self.initialised {
                    return Err(Close(
                        close::TOO_MANY_INITS,
                        "Too many initialisation requests".to_owned(),
                    ));
                }
                let principal = self.authenticate(payload.as_ref()).await?;
                self.principal = Some(principal);
                self.initialised = true;
                let ack = json!({"type": "connection_ack"}).to_string();
                if !self.send(ack, heartbeat).await {
                    return Err(Close(close::BAD_MESSAGE, "gone".to_owned()));
                }
            }
            ClientMessage::Ping { payload } => {
                let mut pong = json!({"type": "pong"});
                if let Some(payload) = payload {
                    pong["payload"] = payload;
                }
                if !self.send(pong.to_string(), heartbeat).await {
                    return Err(Close(close::BAD_MESSAGE, "gone".to_owned()));
                }
            }
            ClientMessage::Pong { .. } => {}
            ClientMessage::Subscribe { id, payload } => {
                let Some(principal) = self.principal.clone() else {
                    return Err(Close(close::UNAUTHORIZED, "Unauthorized".to_owned()));
                };
                if self
                    .subscriptions
                    .get(&id)
                    .is_some_and(|task| !task.is_finished())
                {
                    return Err(Close(
                        close::DUPLICATE_ID,
                        truncate(&format!("Subscriber for {id} already exists")),
                    ));
                }
                let task = tokio::spawn(run_subscription(
                    self.state.clone(),
                    principal,
                    id.clone(),
                    *payload,
                    self.outgoing.clone(),
                ));
                self.subscriptions.insert(id, task);
            }
            ClientMessage::Complete { id } => {
                if let Some(task) = self.subscriptions.remove(&id) {
                    task.abort();
                }
            }
        }
        Ok(())
    }

    /// The principal of `connection_init`: its payload's token, else the upgrade's.
    async fn authenticate(&mut self, payload: Option<&Value>) -> Result<Principal, Close> {
        let token = payload
            .and_then(Value::as_object)
            .and_then(|object| {
                object
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
            })
            .map(|(_, value)| value.as_str().unwrap_or_default().to_owned());
        let principal = match (token, self.header_principal.take()) {
            (Some(token), _) => {
                let mut headers = HeaderMap::new();
                let value = token.parse().map_err(|_| {
                    Close(close::UNAUTHORIZED, "malformed Authorization".to_owned())
                })?;
                headers.insert(AUTHORIZATION, value);
                self.state
                    .authenticator
                    .authenticate(&headers)
                    .await
                    .map_err(|error| Close(close::UNAUTHORIZED, truncate(&error.to_string())))?
            }
            (None, Some(principal)) => principal,
            (None, None) => {
                return Err(Close(close::UNAUTHORIZED, AuthError::Missing.to_string()));
            }
        };
        require_some_read_scope(&principal)
            .map_err(|error| Close(close::FORBIDDEN, truncate(&error.to_string())))?;
        Ok(principal)
    }
}

/// Runs one `subscribe`: `next` for each response, or one `error` for a request that
/// failed before executing; then the writer sends `complete`.
async fn run_subscription(
    state: AppState,
    principal: Principal,
    id: String,
    request: Request,
    outgoing: mpsc::Sender<Outgoing>,
) {
    let open = state.metrics.stream_opened("websocket");
    let request = match prepare_streamed(&state, request, &principal).await {
        Ok(request) => request,
        Err(response) => {
            let response = classify_errors(response);
            let message = json!({"id": id, "type": "error", "payload": response.errors});
            let _ = outgoing
                .send(Outgoing::Failed(id, message.to_string()))
                .await;
            return;
        }
    };
    let mut responses = state.schema.execute_stream(request).boxed();
    let mut first = true;
    while let Some(response) = responses.next().await {
        let response = classify_errors(response);
        // A first result without data is a refusal (the request's, or the subscription
        // field's: an order one may not see, too many streams): no stream follows.
        if first && (is_request_error(&response) || response.data == async_graphql::Value::Null) {
            let message = json!({"id": id, "type": "error", "payload": response.errors});
            let _ = outgoing
                .send(Outgoing::Failed(id, message.to_string()))
                .await;
            return;
        }
        let message = json!({"id": id, "type": "next", "payload": wire(&response)});
        first = false;
        open.sent_event();
        if outgoing
            .send(Outgoing::Message(message.to_string()))
            .await
            .is_err()
        {
            return;
        }
    }
    let _ = outgoing.send(Outgoing::Done(id)).await;
}

fn instant_of(exp: u64) -> Instant {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let left = (exp as i64).saturating_sub(now).max(0) as u64;
    Instant::now() + Duration::from_secs(left)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Close reasons are at most 123 bytes.
fn truncate(reason: &str) -> String {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}
