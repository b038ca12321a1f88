//! Fuzzes the IoT reading-message decoder: any input must decode or be refused with an
//! error, never panic, hang or allocate without bound; whatever decodes must re-encode to
//! a message that decodes to the same value.

#![no_main]

use iot_bff::message::{Limits, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = decode(data, &Limits::default()) {
        let again = decode(&message.to_cbor(), &Limits::default());
        assert_eq!(
            again.as_ref(),
            Ok(&message),
            "re-encoding changes the message"
        );
    }
});
