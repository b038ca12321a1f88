//! `POST /v1/readings` and `GET /v1/config`.
//!
//! Exactly-once effect over an at-least-once device: `(device, seq)` identifies a message.
//! It becomes the inventory service's `Idempotency-Key`, so however often a message is
//! delivered it is applied upstream once, and the BFF remembers each ack, so a repeat is
//! answered with the same bytes without an upstream call. A message that fails upstream is
//! not remembered: the device is told to retry (503 + `Retry-After`) and loses nothing.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use switchyard_core::ErrorCode;
use switchyard_core::auth::{Principal, Scope};
use switchyard_core::domain::{Reading, ReadingsBatch};
use switchyard_core::upstream::{Deadline, UpstreamError, with_deadline};
use time::OffsetDateTime;

use crate::AppState;
use crate::acks::{ContentDigest, Recall, SeqReused};
use crate::errors::{CBOR, DeviceError};
use crate::message::{self, Ack, ReadingMessage, Rejection};

/// The `Idempotency-Key` of a message: stable for `(device, seq)`, nothing else.
pub fn idempotency_key(device_id: &str, seq: u64) -> String {
    format!("reading:{device_id}:{seq}")
}

fn cbor(bytes: Bytes) -> Response {
    ([(CONTENT_TYPE, HeaderValue::from_static(CBOR))], bytes).into_response()
}

/// Whether the request declares a CBOR body (`Content-Type: application/cbor`, parameters
/// allowed): read where the headers are, instead of copying them for the handler.
pub(crate) struct DeclaresCbor(bool);

impl<S: Sync> axum::extract::FromRequestParts<S> for DeclaresCbor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(is_cbor(&parts.headers)))
    }
}

fn is_cbor(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(CBOR))
}

/// Reason codes from the inventory service, reduced to a safe snake-case token.
fn sanitize_reason(reason: &str) -> String {
    let ok = !reason.is_empty()
        && reason.len() <= 32
        && reason
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        reason.to_owned()
    } else {
        "rejected".to_owned()
    }
}

/// `POST /v1/readings`.
pub(crate) async fn post_readings(
    State(state): State<AppState>,
    principal: Principal,
    DeclaresCbor(declares_cbor): DeclaresCbor,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, DeviceError> {
    principal.require(Scope::InventoryWrite)?;
    if !declares_cbor {
        return Err(DeviceError::new(
            ErrorCode::UnsupportedMediaType,
            "expected Content-Type: application/cbor",
        ));
    }
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            DeviceError::new(
                ErrorCode::PayloadTooLarge,
                format!("body over {} bytes", state.devices.max_body_bytes),
            )
        } else {
            // e.g. the body did not arrive within `server.body_read_timeout_ms`
            DeviceError::new(ErrorCode::BadRequest, rejection.body_text())
        }
    })?;
    let message = message::decode(&body, &state.limits)
        .map_err(|error| DeviceError::new(ErrorCode::BadRequest, error.to_string()))?;
    if message.device_id != principal.subject {
        return Err(DeviceError::new(
            ErrorCode::Forbidden,
            "message names another device",
        ));
    }

    let digest = ContentDigest::of(&message);
    let reused = || {
        DeviceError::new(
            ErrorCode::BadRequest,
            format!(
                "seq {} was already used for a different message",
                message.seq
            ),
        )
    };
    let acks = state.acks.device(&message.device_id);
    match acks.recall(message.seq, &digest).await {
        Recall::Given(ack) => return Ok(cbor(ack)),
        Recall::OtherMessage => return Err(reused()),
        Recall::Unknown => {}
    }

    let ack = apply(&state, &message).await?;
    let bytes = Bytes::from(ack.to_cbor());
    // Another replica may have answered the same message meanwhile (both applied it under
    // one idempotency key, so upstream once): every copy gets the first ack written.
    acks.remember(message.seq, &digest, bytes)
        .await
        .map(cbor)
        .map_err(|SeqReused| reused())
}

/// Rejects what the BFF can judge alone, forwards the rest, and merges the answers.
async fn apply(state: &AppState, message: &ReadingMessage) -> Result<Ack, DeviceError> {
    let devices = &state.devices;
    let observed_at = i64::try_from(message.timestamp)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .ok_or_else(|| DeviceError::new(ErrorCode::BadRequest, "timestamp (3): out of range"))?;
    let mut rejected = Vec::new();
    // Device index of each forwarded reading, so upstream indexes map back.
    let mut forwarded_index = Vec::new();
    let mut forwarded = Vec::new();
    for (index, reading) in message.readings.iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let reason = if reading.quantity < 0 {
            Some("negative_quantity")
        } else if reading.quantity > devices.max_quantity {
            Some("quantity_too_large")
        } else {
            None
        };
        match reason {
            Some(reason) => rejected.push(Rejection {
                index,
                reason: reason.to_owned(),
            }),
            None => {
                forwarded_index.push(index);
                forwarded.push(Reading {
                    sku: reading.sku.clone(),
                    quantity: reading.quantity,
                    observed_at,
                });
            }
        }
    }

    let mut accepted = 0;
    let mut refused_upstream = Vec::new();
    if !forwarded.is_empty() {
        let batch = ReadingsBatch {
            device_id: message.device_id.clone(),
            warehouse_id: message.warehouse_id.clone(),
            readings: forwarded,
        };
        let key = idempotency_key(&message.device_id, message.seq);
        let deadline = Deadline::after(Duration::from_millis(devices.deadline_ms));
        let answer = with_deadline(
            deadline,
            state.upstreams.inventory.post_readings(&key, &batch),
        )
        .await
        .map_err(|error| upstream_failure(&error, devices.retry_after_secs))?;
        accepted = answer.accepted;
        for refusal in answer.rejected {
            let Some(&index) = forwarded_index.get(refusal.index as usize) else {
                tracing::warn!(
                    index = refusal.index,
                    "inventory rejected a reading index it was not sent"
                );
                continue;
            };
            refused_upstream.push(index);
            rejected.push(Rejection {
                index,
                reason: sanitize_reason(&refusal.reason),
            });
        }
    }
    rejected.sort_by_key(|r| r.index);

    let threshold = i64::from(devices.low_stock_below);
    let mut low_stock: Vec<String> = forwarded_index
        .iter()
        .filter(|index| !refused_upstream.contains(index))
        .map(|&index| &message.readings[index as usize])
        .filter(|reading| reading.quantity < threshold)
        .map(|reading| reading.sku.clone())
        .collect();
    low_stock.sort();
    low_stock.dedup();
    Ok(Ack {
        accepted,
        rejected,
        low_stock,
        next_poll_secs: devices.poll_interval_secs,
    })
}

/// What a device hears when the inventory service did not take its message.
fn upstream_failure(error: &UpstreamError, retry_after_secs: u32) -> DeviceError {
    tracing::warn!(%error, "readings not delivered to inventory");
    match error {
        UpstreamError::Unavailable { .. }
        | UpstreamError::Malformed { .. }
        | UpstreamError::Timeout { .. } => DeviceError::new(
            error.code(),
            format!("{}; retry later", error.public_message()),
        )
        .retry_after(retry_after_secs),
        // The same key is still being applied (a concurrent delivery of this message):
        // the device must come back, so never a 4xx, on which it would drop the message.
        UpstreamError::Rejected { status: 409, .. } => DeviceError::new(
            ErrorCode::UpstreamUnavailable,
            "this message is still being applied; retry later",
        )
        .retry_after(retry_after_secs),
        UpstreamError::Rejected { status: 422, .. } => DeviceError::new(
            ErrorCode::BadRequest,
            "this seq was already used for a different message",
        ),
        // The write endpoint itself is missing: a deployment fault, not the device's.
        UpstreamError::NotFound { .. } => DeviceError::new(
            ErrorCode::UpstreamUnavailable,
            "the inventory service is unavailable; retry later",
        )
        .retry_after(retry_after_secs),
        UpstreamError::Rejected { .. } => {
            DeviceError::new(ErrorCode::BadRequest, error.public_message())
        }
    }
}

/// `GET /v1/config`: the settings a device should run with.
pub(crate) async fn get_config(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, DeviceError> {
    principal.require(Scope::InventoryWrite)?;
    Ok(cbor(Bytes::from(state.settings.to_cbor())))
}
