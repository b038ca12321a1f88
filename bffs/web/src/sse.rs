//! `POST /graphql/stream`: GraphQL over server-sent events (the "distinct connections"
//! mode of GraphQL-over-SSE): one operation per request, its results as `event: next`,
//! then `event: complete`. A request refused before executing (auth, cost limits, a
//! document that does not parse) gets the same JSON error answer as `POST /graphql`.
//! On shutdown the stream ends with `retry:` (when to reconnect).

use std::time::Duration;

use async_graphql::Request;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use axum::response::sse::Event;
use futures_util::StreamExt as _;
use http::HeaderMap;
use strum::VariantArray as _;
use switchyard_core::ErrorCode;
use switchyard_core::auth;
use switchyard_core::response::ErrorResponder as _;
use switchyard_core::streaming::sse::{Aborted, accepts_event_stream, sse_response};

use crate::AppState;
use crate::errors::GraphqlErrorResponder;
use crate::http::{classify_errors, json_body, prepare_streamed, require_some_read_scope, wire};

fn reject(code: ErrorCode, message: &str) -> Response {
    GraphqlErrorResponder.respond(code, message)
}

/// Runs one operation and streams its results.
pub(crate) async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !accepts_event_stream(&headers) {
        let mut response = reject(
            ErrorCode::BadRequest,
            "POST /graphql/stream answers with Accept: text/event-stream",
        );
        *response.status_mut() = http::StatusCode::NOT_ACCEPTABLE;
        return response;
    }
    let body = match json_body(&headers, body, "POST /graphql/stream") {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let principal = match state.authenticator.authenticate(&headers).await {
        Ok(principal) => principal,
        Err(error) => return auth::reject(&GraphqlErrorResponder, &error),
    };
    if let Err(error) = require_some_read_scope(&principal) {
        return auth::reject(&GraphqlErrorResponder, &error);
    }
    let request: Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return reject(
                ErrorCode::BadRequest,
                &format!("body is not a GraphQL request: {e}"),
            );
        }
    };
    let request = match prepare_streamed(&state, request, &principal).await {
        Ok(request) => request,
        Err(response) => {
            // The refusal's own code (QUERY_TOO_COMPLEX, BAD_REQUEST, …) and message.
            let response = classify_errors(response);
            let first = response.errors.first();
            let code = first
                .and_then(|e| e.extensions.as_ref())
                .and_then(|ext| match ext.get("code") {
                    Some(async_graphql::Value::String(code)) => Some(code.clone()),
                    _ => None,
                })
                .and_then(|code| {
                    ErrorCode::VARIANTS
                        .iter()
                        .copied()
                        .find(|c| c.as_str() == code)
                })
                .unwrap_or(ErrorCode::BadRequest);
            return reject(
                code,
                first.map_or("invalid request", |e| e.message.as_str()),
            );
        }
    };
    let limits = state.feed.limits();
    let heartbeat = Duration::from_secs(limits.heartbeat_secs);
    let reconnect = Duration::from_millis(limits.reconnect_after_ms);
    let open = state.metrics.stream_opened("sse");
    let hold = state.feed.shutdown().hold();
    let shutdown = state.feed.shutdown().clone();
    let results = state.schema.execute_stream(request).boxed();
    let frames = futures_util::stream::unfold(Some((results, open, hold)), move |parts| {
        let shutdown = shutdown.clone();
        async move {
            let (mut results, open, hold) = parts?;
            tokio::select! {
                biased;
                () = shutdown.requested() => {
                    let frame = Event::default()
                        .retry(reconnect)
                        .event("shutdown")
                        .data("this server is restarting; reconnect");
                    Some((Ok::<_, Aborted>(frame), None))
                }
                next = results.next() => match next {
                    Some(response) => {
                        let response = classify_errors(response);
                        let data = serde_json::to_string(&wire(&response)).unwrap_or_default();
                        open.sent_event();
                        Some((Ok(Event::default().event("next").data(data)), Some((results, open, hold))))
                    }
                    None => Some((Ok(Event::default().event("complete").data("")), None)),
                },
            }
        }
    });
    sse_response(frames, heartbeat)
}
