//! Fuzzes the pagination cursor decoder (`switchyard_core::cursor`), which reads the
//! `cursor` query parameter of the mobile and partner order lists: any string must decode
//! or be refused, never panic; a cursor only decodes under the filter it was made for; and
//! whatever is encoded decodes back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_core::cursor::CursorCodec;

const CURSORS: CursorCodec = CursorCodec::new(b"switchyard-mobile-orders-cursor-v1\0");

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The input is "filter\ncursor" (a missing newline: an empty filter).
    let (filter, cursor) = text.split_once('\n').unwrap_or(("", &text));
    if let Ok(upstream) = CURSORS.decode(cursor, filter) {
        // Accepted: it must be what encoding that upstream cursor gives.
        assert_eq!(CURSORS.encode(filter, &upstream), cursor, "two spellings of a cursor");
    }
    // Round trip of the input as an upstream cursor, where `encode`'s contract holds (a
    // filter without `:` of at most 64 bytes; an upstream cursor of 1 to 128 bytes).
    if filter.contains(':') || filter.len() > 64 || cursor.is_empty() || cursor.len() > 128 {
        return;
    }
    let made = CURSORS.encode(filter, cursor);
    assert_eq!(CURSORS.decode(&made, filter).as_deref(), Ok(&*cursor));
    let other = format!("{filter}x");
    assert!(CURSORS.decode(&made, &other).is_err(), "accepted under another filter");
});
