//! Sample messages: a valid one and a corpus of hostile ones, each named by what is wrong
//! with it. The test suites check that every hostile message is refused with a 4xx, and
//! the fuzz target's seed corpus is written from here
//! (`cargo test -p iot-bff write_seed_corpus -- --ignored`, see `fuzz/README.md`).

use crate::message::{DeviceReading, ReadingMessage};

/// A well-formed message from `device` with `readings` counts of `SKU-0000n`.
pub fn valid(device: &str, seq: u64, readings: usize) -> ReadingMessage {
    ReadingMessage {
        device_id: device.to_owned(),
        seq,
        timestamp: 1_795_000_000,
        warehouse_id: "wh-1".to_owned(),
        readings: (0..readings)
            .map(|n| DeviceReading {
                sku: format!("SKU-{:05}", n + 1),
                quantity: 5 * n as i64 + 3,
            })
            .collect(),
    }
}

/// A CBOR head: major type and argument, in the shortest form.
fn head(major: u8, value: u64) -> Vec<u8> {
    let major = major << 5;
    match value {
        0..=23 => vec![major | value as u8],
        24..=0xff => vec![major | 24, value as u8],
        0x100..=0xffff => [vec![major | 25], (value as u16).to_be_bytes().to_vec()].concat(),
        0x1_0000..=0xffff_ffff => {
            [vec![major | 26], (value as u32).to_be_bytes().to_vec()].concat()
        }
        _ => [vec![major | 27], value.to_be_bytes().to_vec()].concat(),
    }
}

fn text(value: &str) -> Vec<u8> {
    [head(3, value.len() as u64), value.as_bytes().to_vec()].concat()
}

fn uint(value: u64) -> Vec<u8> {
    head(0, value)
}

/// A message map with the given `(key, encoded value)` pairs, in order.
fn message(pairs: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = head(5, pairs.len() as u64);
    for (key, value) in pairs {
        out.extend(uint(*key));
        out.extend(value);
    }
    out
}

fn one_reading(quantity: Vec<u8>) -> Vec<u8> {
    [
        head(4, 1),
        head(5, 2),
        uint(1),
        text("SKU-00001"),
        uint(2),
        quantity,
    ]
    .concat()
}

/// The five fields of a valid message from `dev-1`, with `readings` replaced.
fn fields_with(readings: Vec<u8>) -> Vec<(u64, Vec<u8>)> {
    vec![
        (1, text("dev-1")),
        (2, uint(7)),
        (3, uint(1_795_000_000)),
        (4, text("wh-1")),
        (5, readings),
    ]
}

/// Hostile or malformed bodies, each named by its defect. Every one must be refused.
pub fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    let good = valid("dev-1", 7, 3).to_cbor();
    let mut deep_array = vec![0x81; 10_000];
    deep_array.push(0x00);
    let mut deep_readings = fields_with(vec![0x81; 10_000]);
    deep_readings[4].1.push(0x00);
    let mut dup = fields_with(one_reading(uint(1)));
    dup.insert(1, (1, text("dev-2")));
    let mut unknown = fields_with(one_reading(uint(1)));
    unknown.push((9, uint(1)));
    let mut missing = fields_with(one_reading(uint(1)));
    missing.pop();
    let too_many = {
        let mut list = head(4, 101);
        for _ in 0..101 {
            list.extend([head(5, 2), uint(1), text("SKU-00001"), uint(2), uint(1)].concat());
        }
        list
    };
    let indefinite_readings = [vec![0x9f], one_reading(uint(1))[1..].to_vec(), vec![0xff]].concat();
    let mut indefinite_map = vec![0xbf];
    for (key, value) in fields_with(one_reading(uint(1))) {
        indefinite_map.extend(uint(key));
        indefinite_map.extend(value);
    }
    indefinite_map.push(0xff);
    let mut trailing = good.clone();
    trailing.push(0x00);
    vec![
        ("empty body", Vec::new()),
        ("truncated", good[..good.len() - 3].to_vec()),
        ("trailing bytes", trailing),
        ("indefinite-length map", indefinite_map),
        (
            "indefinite-length readings",
            message(&fields_with(indefinite_readings)),
        ),
        (
            "indefinite-length text",
            message(&[(1, [vec![0x7f], text("dev"), vec![0xff]].concat())]),
        ),
        ("duplicate key", message(&dup)),
        (
            "duplicate key in a reading",
            message(&fields_with(
                [head(4, 1), head(5, 2), uint(2), uint(1), uint(2), uint(2)].concat(),
            )),
        ),
        ("unknown key", message(&unknown)),
        ("missing readings", message(&missing)),
        ("empty readings", message(&fields_with(head(4, 0)))),
        ("too many readings", message(&fields_with(too_many))),
        ("10,000-deep nesting", deep_array),
        ("10,000-deep nesting in readings", message(&deep_readings)),
        (
            "text declaring 2^32 bytes",
            message(&[(1, head(3, 1 << 32))]),
        ),
        (
            "readings declaring 2^32 entries",
            message(&fields_with(head(4, 1 << 32))),
        ),
        ("map declaring 2^32 pairs", head(5, 1 << 32)),
        ("device id as a number", message(&[(1, uint(42))])),
        ("sequence number as text", message(&[(2, text("7"))])),
        ("negative sequence number", message(&[(2, head(1, 6))])),
        (
            "quantity as a float",
            message(&fields_with(one_reading(vec![
                0xfb, 0x40, 0x09, 0, 0, 0, 0, 0, 0,
            ]))),
        ),
        (
            "quantity as a tagged bignum",
            message(&fields_with(one_reading(
                [vec![0xc2], head(2, 1), vec![1]].concat(),
            ))),
        ),
        (
            "quantity below -2^63",
            message(&fields_with(one_reading(head(1, u64::MAX)))),
        ),
        (
            "quantity above 2^63-1",
            message(&fields_with(one_reading(uint(u64::MAX)))),
        ),
        (
            "invalid UTF-8",
            message(&[(1, [head(3, 2), vec![0xc3, 0x28]].concat())]),
        ),
        (
            "control characters in an id",
            message(&[(1, text("dev\n1"))]),
        ),
        (
            "timestamp beyond year 9999",
            message(&[(3, uint(u64::MAX))]),
        ),
        ("top level is an array", [head(4, 1), uint(1)].concat()),
        ("reserved additional information", vec![0x1c]),
        (
            "string keys",
            [head(5, 1), text("device"), text("dev-1")].concat(),
        ),
    ]
}
