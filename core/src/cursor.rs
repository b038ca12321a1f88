//! Opaque, integrity-checked page cursors for REST listings over an upstream's cursor pages.
//!
//! A cursor wraps the upstream's own cursor together with the filter it was issued for
//! (say, the status), plus a 64-bit digest of both, under a domain string that keeps one
//! API's cursors from being accepted by another. Clients treat it as an opaque string.
//! Garbage, a truncated or edited cursor, or one reused with a different filter is a 400,
//! never an upstream call and never a 500.
//!
//! The digest is not a secret MAC, deliberately: cursors must survive restarts and work
//! across replicas without shared keys, and nothing may depend on their secrecy: what a
//! consumer may list is decided from its credentials on every request, never from the
//! cursor.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const DIGEST_LEN: usize = 8;
/// Upstream cursors longer than this are not ones the orders service issues.
const MAX_UPSTREAM_CURSOR: usize = 128;
/// Longest filter a cursor can be bound to.
const MAX_FILTER: usize = 64;

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

/// The cursors of one listing: its domain string, and `encode`/`decode`.
#[derive(Clone, Copy, Debug)]
pub struct CursorCodec {
    domain: &'static [u8],
}

impl CursorCodec {
    /// Cursors of the listing named by `domain` (e.g. `b"switchyard-mobile-orders-cursor-v1\0"`).
    pub const fn new(domain: &'static [u8]) -> Self {
        Self { domain }
    }

    fn checksum(&self, payload: &[u8]) -> [u8; DIGEST_LEN] {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(self.domain);
        context.update(payload);
        let hash = context.finish();
        let mut out = [0; DIGEST_LEN];
        out.copy_from_slice(&hash.as_ref()[..DIGEST_LEN]);
        out
    }

    /// The cursor a client gets for the page after the one that ended at `upstream_cursor`,
    /// bound to `filter` (which must not contain `:`; empty for "no filter").
    pub fn encode(&self, filter: &str, upstream_cursor: &str) -> String {
        debug_assert!(!filter.contains(':') && filter.len() <= MAX_FILTER);
        let mut bytes = format!("{filter}:{upstream_cursor}").into_bytes();
        let sum = self.checksum(&bytes);
        bytes.extend_from_slice(&sum);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The upstream's cursor inside a client's `cursor`, checked against `filter`.
    pub fn decode(&self, cursor: &str, filter: &str) -> Result<String, CursorError> {
        // Bound the work before decoding: a legitimate cursor is far shorter.
        if cursor.len() > 4 * (MAX_UPSTREAM_CURSOR + MAX_FILTER + DIGEST_LEN + 1).div_ceil(3) {
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
        if self.checksum(payload) != sum {
            return Err(CursorError::Invalid);
        }
        let text = std::str::from_utf8(payload).map_err(|_| CursorError::Invalid)?;
        let (issued_for, upstream) = text.split_once(':').ok_or(CursorError::Invalid)?;
        if upstream.is_empty() || upstream.len() > MAX_UPSTREAM_CURSOR {
            return Err(CursorError::Invalid);
        }
        if issued_for != filter {
            return Err(CursorError::FilterMismatch);
        }
        Ok(upstream.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODEC: CursorCodec = CursorCodec::new(b"test-cursor-v1\0");

    fn encode(filter: Option<&str>, upstream: &str) -> String {
        CODEC.encode(filter.unwrap_or(""), upstream)
    }

    fn decode(cursor: &str, filter: Option<&str>) -> Result<String, CursorError> {
        CODEC.decode(cursor, filter.unwrap_or(""))
    }

    #[test]
    fn round_trips_with_and_without_a_filter() {
        let cursor = encode(None, "ord_00042");
        assert_eq!(decode(&cursor, None), Ok("ord_00042".to_owned()));
        let paid = encode(Some("paid"), "ord_7");
        assert_eq!(decode(&paid, Some("paid")), Ok("ord_7".to_owned()));
    }

    #[test]
    fn a_cursor_reused_with_another_filter_is_refused() {
        let paid = encode(Some("paid"), "ord_7");
        assert_eq!(decode(&paid, None), Err(CursorError::FilterMismatch));
        assert_eq!(
            decode(&paid, Some("shipped")),
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
    fn a_cursor_of_another_listing_is_invalid() {
        let other = CursorCodec::new(b"other-cursor-v1\0").encode("", "ord_1");
        assert_eq!(decode(&other, None), Err(CursorError::Invalid));
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
