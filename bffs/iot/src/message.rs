//! The device wire format (`schema/iot.cddl`): a strict decoder for reading messages and
//! encoders for acknowledgements, errors and settings.
//!
//! The decoder walks CBOR headers one at a time (ciborium-ll) against the one shape it
//! expects, so it needs no recursion and allocates nothing sized by a declared length:
//! text is capped before it is read, arrays are capped before they are walked, and a value
//! of the wrong type is refused at its first header (which is how a 10,000-deep nesting is
//! refused after one byte). It accepts definite lengths only, and refuses duplicate or
//! unknown keys, tags, floats where integers belong, invalid UTF-8 and trailing bytes.

use std::fmt;

use ciborium::Value;
use ciborium_io::Read as _;
use ciborium_ll::{Decoder, Header};

/// Keys of a reading message.
pub mod keys {
    /// Device id (text).
    pub const DEVICE: u64 = 1;
    /// Sequence number (uint).
    pub const SEQ: u64 = 2;
    /// Timestamp (uint, epoch seconds).
    pub const TIMESTAMP: u64 = 3;
    /// Warehouse id (text).
    pub const WAREHOUSE: u64 = 4;
    /// Readings (array of reading maps).
    pub const READINGS: u64 = 5;
    /// SKU, inside a reading (text).
    pub const SKU: u64 = 1;
    /// Quantity, inside a reading (int).
    pub const QUANTITY: u64 = 2;
}

/// Bounds the decoder enforces before it reads or allocates anything.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most readings in one message.
    pub max_readings: usize,
    /// Longest id (device, warehouse, SKU), in bytes.
    pub max_id_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_readings: 100,
            max_id_len: 64,
        }
    }
}

/// One stock count in a device message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DeviceReading {
    /// Stock-keeping unit.
    pub sku: String,
    /// Units counted (negative counts decode, and are rejected per reading).
    pub quantity: i64,
}

/// A decoded `reading-message`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReadingMessage {
    /// The sending device; must be the token's subject.
    pub device_id: String,
    /// Per-device sequence number; with the device id, identifies the message.
    pub seq: u64,
    /// When the counts were taken, in seconds since the epoch.
    pub timestamp: u64,
    /// The warehouse the device is in.
    pub warehouse_id: String,
    /// The counts, at least one.
    pub readings: Vec<DeviceReading>,
}

/// Why a message body was refused; the text is short and safe to send to the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The body ended inside an item.
    Truncated,
    /// Bytes that are not CBOR (reserved additional-information values).
    Malformed,
    /// An indefinite-length item where only definite lengths are allowed.
    Indefinite(&'static str),
    /// A value of the wrong type.
    WrongType {
        /// Where.
        field: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// A key that appears twice in one map.
    DuplicateKey(&'static str, u64),
    /// A key the format does not define.
    UnknownKey(&'static str, u64),
    /// A required key is missing.
    MissingKey(&'static str),
    /// Text longer than allowed.
    TooLong(&'static str, usize),
    /// More readings than allowed.
    TooManyReadings(usize),
    /// A message without readings.
    NoReadings,
    /// Text that is not UTF-8 or contains control characters.
    InvalidText(&'static str),
    /// An integer outside its field's range.
    OutOfRange(&'static str),
    /// Bytes after the message.
    TrailingBytes,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("truncated CBOR"),
            Self::Malformed => f.write_str("malformed CBOR"),
            Self::Indefinite(field) => write!(f, "{field}: indefinite length not allowed"),
            Self::WrongType { field, expected } => write!(f, "{field}: expected {expected}"),
            Self::DuplicateKey(map, key) => write!(f, "{map}: duplicate key {key}"),
            Self::UnknownKey(map, key) => write!(f, "{map}: unknown key {key}"),
            Self::MissingKey(field) => write!(f, "missing {field}"),
            Self::TooLong(field, max) => write!(f, "{field}: longer than {max} bytes"),
            Self::TooManyReadings(max) => write!(f, "readings: more than {max}"),
            Self::NoReadings => f.write_str("readings: empty"),
            Self::InvalidText(field) => write!(f, "{field}: invalid text"),
            Self::OutOfRange(field) => write!(f, "{field}: out of range"),
            Self::TrailingBytes => f.write_str("trailing bytes after the message"),
        }
    }
}

impl std::error::Error for DecodeError {}

type Input<'a> = Decoder<&'a [u8]>;

fn pull(decoder: &mut Input<'_>) -> Result<Header, DecodeError> {
    decoder.pull().map_err(|error| match error {
        ciborium_ll::Error::Io(_) => DecodeError::Truncated,
        ciborium_ll::Error::Syntax(_) => DecodeError::Malformed,
    })
}

/// A definite-length map header; returns its number of pairs.
fn map_len(decoder: &mut Input<'_>, field: &'static str) -> Result<usize, DecodeError> {
    match pull(decoder)? {
        Header::Map(Some(len)) => Ok(len),
        Header::Map(None) => Err(DecodeError::Indefinite(field)),
        _ => Err(DecodeError::WrongType {
            field,
            expected: "a map",
        }),
    }
}

fn map_key(decoder: &mut Input<'_>, map: &'static str) -> Result<u64, DecodeError> {
    match pull(decoder)? {
        Header::Positive(key) => Ok(key),
        _ => Err(DecodeError::WrongType {
            field: map,
            expected: "unsigned integer keys",
        }),
    }
}

fn uint(decoder: &mut Input<'_>, field: &'static str) -> Result<u64, DecodeError> {
    match pull(decoder)? {
        Header::Positive(value) => Ok(value),
        _ => Err(DecodeError::WrongType {
            field,
            expected: "an unsigned integer",
        }),
    }
}

fn int(decoder: &mut Input<'_>, field: &'static str) -> Result<i64, DecodeError> {
    match pull(decoder)? {
        Header::Positive(value) => i64::try_from(value).map_err(|_| DecodeError::OutOfRange(field)),
        // CBOR negative n encodes -1 - n.
        Header::Negative(n) => i64::try_from(n)
            .map(|n| -1 - n)
            .map_err(|_| DecodeError::OutOfRange(field)),
        _ => Err(DecodeError::WrongType {
            field,
            expected: "an integer",
        }),
    }
}

/// Text of at most `max` bytes, read into a stack buffer; printable characters only.
fn text(decoder: &mut Input<'_>, field: &'static str, max: usize) -> Result<String, DecodeError> {
    let len = match pull(decoder)? {
        Header::Text(Some(len)) => len,
        Header::Text(None) => return Err(DecodeError::Indefinite(field)),
        _ => {
            return Err(DecodeError::WrongType {
                field,
                expected: "text",
            });
        }
    };
    const CAP: usize = 256;
    if len > max.min(CAP) {
        return Err(DecodeError::TooLong(field, max.min(CAP)));
    }
    let mut buffer = [0u8; CAP];
    decoder
        .read_exact(&mut buffer[..len])
        .map_err(|_| DecodeError::Truncated)?;
    let value = std::str::from_utf8(&buffer[..len]).map_err(|_| DecodeError::InvalidText(field))?;
    if value.is_empty() || value.chars().any(char::is_control) {
        return Err(DecodeError::InvalidText(field));
    }
    Ok(value.to_owned())
}

/// Records `key` as seen in a map with at most 64 distinct keys; false if seen before.
fn first_sighting(seen: &mut u64, key: u64) -> bool {
    let bit = 1u64 << key.min(63);
    let first = *seen & bit == 0;
    *seen |= bit;
    first
}

fn reading(decoder: &mut Input<'_>, limits: &Limits) -> Result<DeviceReading, DecodeError> {
    const MAP: &str = "reading";
    let pairs = map_len(decoder, MAP)?;
    let (mut sku, mut quantity, mut seen) = (None, None, 0u64);
    for _ in 0..pairs {
        let key = map_key(decoder, MAP)?;
        if !matches!(key, keys::SKU | keys::QUANTITY) {
            return Err(DecodeError::UnknownKey(MAP, key));
        }
        if !first_sighting(&mut seen, key) {
            return Err(DecodeError::DuplicateKey(MAP, key));
        }
        match key {
            keys::SKU => sku = Some(text(decoder, "reading sku (1)", limits.max_id_len)?),
            _ => quantity = Some(int(decoder, "reading quantity (2)")?),
        }
    }
    Ok(DeviceReading {
        sku: sku.ok_or(DecodeError::MissingKey("reading sku (1)"))?,
        quantity: quantity.ok_or(DecodeError::MissingKey("reading quantity (2)"))?,
    })
}

fn readings(decoder: &mut Input<'_>, limits: &Limits) -> Result<Vec<DeviceReading>, DecodeError> {
    const FIELD: &str = "readings (5)";
    let len = match pull(decoder)? {
        Header::Array(Some(len)) => len,
        Header::Array(None) => return Err(DecodeError::Indefinite(FIELD)),
        _ => {
            return Err(DecodeError::WrongType {
                field: FIELD,
                expected: "an array",
            });
        }
    };
    if len > limits.max_readings {
        return Err(DecodeError::TooManyReadings(limits.max_readings));
    }
    if len == 0 {
        return Err(DecodeError::NoReadings);
    }
    // `len` is bounded by the limit above, so this allocation is too.
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        out.push(reading(decoder, limits)?);
    }
    Ok(out)
}

/// Decodes one reading message that must fill `body` exactly.
pub fn decode(body: &[u8], limits: &Limits) -> Result<ReadingMessage, DecodeError> {
    const MAP: &str = "message";
    let mut decoder = Decoder::from(body);
    let pairs = map_len(&mut decoder, MAP)?;
    let mut seen = 0u64;
    let (mut device, mut seq, mut timestamp, mut warehouse, mut list) =
        (None, None, None, None, None);
    for _ in 0..pairs {
        let key = map_key(&mut decoder, MAP)?;
        if !(keys::DEVICE..=keys::READINGS).contains(&key) {
            return Err(DecodeError::UnknownKey(MAP, key));
        }
        if !first_sighting(&mut seen, key) {
            return Err(DecodeError::DuplicateKey(MAP, key));
        }
        match key {
            keys::DEVICE => device = Some(text(&mut decoder, "device id (1)", limits.max_id_len)?),
            keys::SEQ => seq = Some(uint(&mut decoder, "sequence number (2)")?),
            keys::TIMESTAMP => {
                let value = uint(&mut decoder, "timestamp (3)")?;
                // Up to 9999-12-31, the range RFC 3339 timestamps can carry.
                if value > 253_402_300_799 {
                    return Err(DecodeError::OutOfRange("timestamp (3)"));
                }
                timestamp = Some(value);
            }
            keys::WAREHOUSE => {
                warehouse = Some(text(&mut decoder, "warehouse id (4)", limits.max_id_len)?);
            }
            _ => list = Some(readings(&mut decoder, limits)?),
        }
    }
    if decoder.offset() != body.len() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(ReadingMessage {
        device_id: device.ok_or(DecodeError::MissingKey("device id (1)"))?,
        seq: seq.ok_or(DecodeError::MissingKey("sequence number (2)"))?,
        timestamp: timestamp.ok_or(DecodeError::MissingKey("timestamp (3)"))?,
        warehouse_id: warehouse.ok_or(DecodeError::MissingKey("warehouse id (4)"))?,
        readings: list.ok_or(DecodeError::MissingKey("readings (5)"))?,
    })
}

fn int_key(key: u64) -> Value {
    Value::Integer(key.into())
}

fn to_bytes(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    // Writing to a Vec cannot fail, and every Value built here is encodable.
    let _ = ciborium::into_writer(value, &mut out);
    out
}

impl ReadingMessage {
    /// The message in its wire form (what devices send; used by the simulator and tests).
    pub fn to_cbor(&self) -> Vec<u8> {
        let readings = self
            .readings
            .iter()
            .map(|r| {
                Value::Map(vec![
                    (int_key(keys::SKU), Value::Text(r.sku.clone())),
                    (int_key(keys::QUANTITY), Value::Integer(r.quantity.into())),
                ])
            })
            .collect();
        to_bytes(&Value::Map(vec![
            (int_key(keys::DEVICE), Value::Text(self.device_id.clone())),
            (int_key(keys::SEQ), Value::Integer(self.seq.into())),
            (
                int_key(keys::TIMESTAMP),
                Value::Integer(self.timestamp.into()),
            ),
            (
                int_key(keys::WAREHOUSE),
                Value::Text(self.warehouse_id.clone()),
            ),
            (int_key(keys::READINGS), Value::Array(readings)),
        ]))
    }
}

/// A reading the BFF or the inventory service refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Position in the device's message.
    pub index: u32,
    /// Snake-case reason code, e.g. `unknown_sku`.
    pub reason: String,
}

/// The `ack` map sent for an accepted message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// Readings applied.
    pub accepted: u32,
    /// Readings refused, by index.
    pub rejected: Vec<Rejection>,
    /// SKUs whose count is now below the low-stock threshold.
    pub low_stock: Vec<String>,
    /// Seconds until the device should report again.
    pub next_poll_secs: u32,
}

impl Ack {
    /// The ack in its wire form.
    pub fn to_cbor(&self) -> Vec<u8> {
        let rejected = self
            .rejected
            .iter()
            .map(|r| {
                Value::Map(vec![
                    (int_key(1), Value::Integer(r.index.into())),
                    (int_key(2), Value::Text(r.reason.clone())),
                ])
            })
            .collect();
        let low = self.low_stock.iter().cloned().map(Value::Text).collect();
        to_bytes(&Value::Map(vec![
            (int_key(1), Value::Integer(self.accepted.into())),
            (int_key(2), Value::Array(rejected)),
            (int_key(3), Value::Array(low)),
            (int_key(4), Value::Integer(self.next_poll_secs.into())),
        ]))
    }
}

/// An `error` map: `{1: code, 2: message}`.
pub fn error_to_cbor(code: &str, message: &str) -> Vec<u8> {
    to_bytes(&Value::Map(vec![
        (int_key(1), Value::Text(code.to_owned())),
        (int_key(2), Value::Text(message.to_owned())),
    ]))
}

/// A `settings` map: what `GET /v1/config` tells a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Seconds between reports.
    pub poll_interval_secs: u32,
    /// Counts below this are low stock.
    pub low_stock_below: u32,
    /// Most readings per message.
    pub max_readings: u32,
    /// Largest message body, in bytes.
    pub max_body_bytes: u32,
}

impl Settings {
    /// The settings in their wire form.
    pub fn to_cbor(&self) -> Vec<u8> {
        to_bytes(&Value::Map(vec![
            (int_key(1), Value::Integer(self.poll_interval_secs.into())),
            (int_key(2), Value::Integer(self.low_stock_below.into())),
            (int_key(3), Value::Integer(self.max_readings.into())),
            (int_key(4), Value::Integer(self.max_body_bytes.into())),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples;

    #[test]
    fn a_valid_message_round_trips() {
        let message = samples::valid("dev-1", 7, 20);
        assert_eq!(decode(&message.to_cbor(), &Limits::default()), Ok(message));
    }

    #[test]
    fn negative_quantities_in_range_decode_for_per_reading_rejection() {
        let mut message = samples::valid("dev-1", 1, 1);
        message.readings[0].quantity = -5;
        let decoded = decode(&message.to_cbor(), &Limits::default()).expect("decodes");
        assert_eq!(decoded.readings[0].quantity, -5);
    }

    #[test]
    fn every_hostile_sample_is_refused_with_a_reason() {
        for (name, body) in samples::hostile() {
            match decode(&body, &Limits::default()) {
                Ok(message) => panic!("{name}: decoded {message:?}"),
                Err(error) => assert!(!error.to_string().is_empty(), "{name}"),
            }
        }
    }

    #[test]
    fn specific_defects_get_specific_errors() {
        let corpus: std::collections::HashMap<_, _> = samples::hostile().into_iter().collect();
        let error = |name: &str| decode(&corpus[name], &Limits::default()).expect_err(name);
        assert_eq!(error("trailing bytes"), DecodeError::TrailingBytes);
        assert_eq!(error("truncated"), DecodeError::Truncated);
        assert_eq!(
            error("duplicate key"),
            DecodeError::DuplicateKey("message", 1)
        );
        assert_eq!(
            error("text declaring 2^32 bytes"),
            DecodeError::TooLong("device id (1)", 64)
        );
        assert_eq!(
            error("readings declaring 2^32 entries"),
            DecodeError::TooManyReadings(100)
        );
        assert_eq!(
            error("quantity below -2^63"),
            DecodeError::OutOfRange("reading quantity (2)")
        );
        assert_eq!(
            error("indefinite-length map"),
            DecodeError::Indefinite("message")
        );
        assert_eq!(
            error("invalid UTF-8"),
            DecodeError::InvalidText("device id (1)")
        );
    }

    /// Writes the fuzz target's seed corpus: `SEED_DIR=fuzz/corpus/decode_reading cargo
    /// test -p iot-bff write_seed_corpus -- --ignored`.
    #[test]
    #[ignore = "writes files; run by hand to refresh the fuzz seed corpus"]
    fn write_seed_corpus() {
        let dir = std::env::var("SEED_DIR").expect("SEED_DIR names the corpus directory");
        std::fs::create_dir_all(&dir).expect("corpus dir");
        let mut seeds = samples::hostile();
        seeds.push(("valid 1 reading", samples::valid("dev-1", 1, 1).to_cbor()));
        seeds.push((
            "valid 20 readings",
            samples::valid("dev-2", 99, 20).to_cbor(),
        ));
        for (name, body) in seeds {
            let file: String = name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            std::fs::write(format!("{dir}/{file}"), body).expect("seed written");
        }
    }
}
