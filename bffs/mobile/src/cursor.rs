//! Opaque, integrity-checked page cursors for `/v2/orders`.
//!
//! A cursor wraps the orders service's own cursor together with the status filter it was
//! issued for, plus a 64-bit digest of both. Clients treat it as an opaque string. Garbage,
//! a truncated or edited cursor, or one reused with a different filter is a 400, never an
//! upstream call and never a 500.
//!
//! The digest is not a secret MAC, deliberately: cursors must survive restarts and work
//! across replicas without shared keys, and nothing depends on their secrecy. The upstream
//! query's customer filter always comes from the token, so a forged cursor can only move
//! within one's own orders.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use switchyard_core::domain::OrderStatus;

const DIGEST_LEN: usize = 8;
/// Upstream cursors longer than this are not ones the orders service issues.
const MAX_UPSTREAM_CURSOR: usize = 128;
const DOMAIN: &[u8] = b"switchyard-mobile-orders-cursor-v1\0";

/// Why a client's cursor was refused (always `BAD_REQUEST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Not a cursor this API issued, or altered since.
    #[error("invalid cursor")]
    Invalid,
    /// Issued for a different `status` filter than this request's.
    #[error("cursor was issued for a different status filter")]
    FilterMismatch,
}

fn checksum(payload: &[u8]) -> [u8; DIGEST_LEN] {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(DOMAIN);
    context.update(payload);
    let hash = context.finish();
    let mut out = [0; DIGEST_LEN];
    out.copy_from_slice(&hash.as_ref()[..DIGEST_LEN]);
    out
}

fn filter_name(status: Option<OrderStatus>) -> &'static str {
    status.map_or("", OrderStatus::as_str)
}

/// The cursor a client gets for the page after the one that ended at `upstream_cursor`.
pub fn encode(status: Option<OrderStatus>, upstream_cursor: &str) -> String {
    let mut bytes = format!("{}:{upstream_cursor}", filter_name(status)).into_bytes();
    let sum = checksum(&bytes);
    bytes.extend_from_slice(&sum);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The orders service's cursor inside a client's `cursor`, checked against `status`.
pub fn decode(cursor: &str, status: Option<OrderStatus>) -> Result<String, CursorError> {
    // Bound the work before decoding: a legitimate cursor is far shorter.
    if cursor.len() > 4 * (MAX_UPSTREAM_CURSOR + 32) / 3 {
        return Err(CursorError::Invalid);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| CursorError::Invalid)?;
    let split = bytes
        .len()
        .checked_sub(DIGEST_LEN)
        .ok_or(CursorError::Invalid)?;
    let (payload, sum) = bytes.split_at(split);
    if checksum(payload) != sum {
        return Err(CursorError::Invalid);
    }
    let text = std::str::from_utf8(payload).map_err(|_| CursorError::Invalid)?;
    let (filter, upstream) = text.split_once(':').ok_or(CursorError::Invalid)?;
    if upstream.is_empty() || upstream.len() > MAX_UPSTREAM_CURSOR {
        return Err(CursorError::Invalid);
    }
    if filter != filter_name(status) {
        return Err(CursorError::FilterMismatch);
    }
    Ok(upstream.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_and_without_a_filter() {
        let cursor = encode(None, "ord_00042");
        assert_eq!(decode(&cursor, None), Ok("ord_00042".to_owned()));
        let paid = encode(Some(OrderStatus::Paid), "ord_7");
        assert_eq!(
            decode(&paid, Some(OrderStatus::Paid)),
            Ok("ord_7".to_owned())
        );
    }

    #[test]
    fn a_cursor_reused_with_another_filter_is_refused() {
        let paid = encode(Some(OrderStatus::Paid), "ord_7");
        assert_eq!(decode(&paid, None), Err(CursorError::FilterMismatch));
        assert_eq!(
            decode(&paid, Some(OrderStatus::Shipped)),
            Err(CursorError::FilterMismatch)
        );
    }

    #[test]
    fn every_single_character_edit_is_detected() {
        let cursor = encode(None, "ord_00042");
        for position in 0..cursor.len() {
            let mut edited = cursor.clone().into_bytes();
            edited[position] = if edited[position] == b'A' { b'B' } else { b'A' };
            let edited = String::from_utf8(edited).expect("ascii");
            assert_eq!(decode(&edited, None), Err(CursorError::Invalid), "{edited}");
        }
    }

    #[test]
    fn garbage_is_invalid() {
        for garbage in ["", "!!!", "b3JkZXI6MQ", "AAAA", &"A".repeat(10_000)] {
            assert_eq!(
                decode(garbage, None),
                Err(CursorError::Invalid),
                "{garbage}"
            );
        }
    }
}
