//! Integration tests of the IoT BFF: its router in-process, a wiremock inventory service,
//! real device JWTs, CBOR in and out.

mod auth;
mod config;
mod decoding;
mod readings;
mod shared_acks;

use std::ops::Deref;

use axum::body::Body;
use ciborium::Value;
use http::Request;
use iot_bff::IotBff;
use switchyard_tests::{TestApp, TestResponse, Token};

/// An IoT BFF wired to fresh wiremock upstreams, with CBOR helpers.
pub(crate) struct IotApp(TestApp<IotBff>);

impl Deref for IotApp {
    type Target = TestApp<IotBff>;

    fn deref(&self) -> &TestApp<IotBff> {
        &self.0
    }
}

pub(crate) async fn spawn_app() -> IotApp {
    IotApp(TestApp::spawn().await)
}

pub(crate) async fn spawn_app_with(adjust: impl FnOnce(&mut iot_bff::IotConfig)) -> IotApp {
    IotApp(TestApp::spawn_with(adjust).await)
}

impl IotApp {
    /// A device token for `device` with `data:inventory:write`.
    pub(crate) fn device_token(&self, device: &str) -> String {
        Token::customer(device)
            .scope("data:inventory:write")
            .sign(&self.mocks.ec)
    }

    /// POSTs `body` to `/v1/readings` as CBOR.
    pub(crate) async fn post(&self, token: Option<&str>, body: Vec<u8>) -> TestResponse {
        self.post_as(token, body, "application/cbor").await
    }

    /// POSTs `body` to `/v1/readings` with any content type.
    pub(crate) async fn post_as(
        &self,
        token: Option<&str>,
        body: Vec<u8>,
        content_type: &str,
    ) -> TestResponse {
        let mut builder = Request::post("/v1/readings").header("content-type", content_type);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        self.send(builder.body(Body::from(body)).expect("request"))
            .await
    }

    /// Calls the inventory mock received.
    pub(crate) async fn inventory_calls(&self) -> usize {
        self.mocks
            .inventory
            .received_requests()
            .await
            .map_or(0, |r| r.len())
    }
}

/// The CBOR body of `response`.
pub(crate) fn cbor(response: &TestResponse) -> Value {
    assert_eq!(
        response.header("content-type"),
        Some("application/cbor"),
        "status {}",
        response.status
    );
    ciborium::from_reader(response.body.as_slice()).expect("the body is CBOR")
}

/// The entries of a CBOR map with unsigned integer keys, checked to be exactly `keys`.
pub(crate) fn int_map(value: &Value, keys: &[u64]) -> Vec<Value> {
    let entries = value.as_map().expect("a CBOR map");
    let found: Vec<u64> = entries
        .iter()
        .map(|(k, _)| {
            k.as_integer()
                .and_then(|i| u64::try_from(i).ok())
                .expect("unsigned integer keys")
        })
        .collect();
    assert_eq!(found, keys, "map keys");
    entries.iter().map(|(_, v)| v.clone()).collect()
}

/// The `error` map (`schema/iot.cddl`): `{1: code, 2: message}`; returns the code.
pub(crate) fn error_code(response: &TestResponse) -> String {
    let fields = int_map(&cbor(response), &[1, 2]);
    assert!(
        fields[1].as_text().is_some_and(|m| !m.is_empty()),
        "message"
    );
    fields[0].as_text().expect("text code").to_owned()
}

/// An `ack` map decoded per `schema/iot.cddl`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AckView {
    pub(crate) accepted: u64,
    pub(crate) rejected: Vec<(u64, String)>,
    pub(crate) low_stock: Vec<String>,
    pub(crate) next_poll: u64,
}

pub(crate) fn ack(response: &TestResponse) -> AckView {
    assert_eq!(
        response.status,
        200,
        "{:?}",
        ciborium::from_reader::<Value, _>(response.body.as_slice())
    );
    let fields = int_map(&cbor(response), &[1, 2, 3, 4]);
    let uint = |v: &Value| {
        v.as_integer()
            .and_then(|i| u64::try_from(i).ok())
            .expect("uint")
    };
    AckView {
        accepted: uint(&fields[0]),
        rejected: fields[1]
            .as_array()
            .expect("array")
            .iter()
            .map(|r| {
                let entry = int_map(r, &[1, 2]);
                (
                    uint(&entry[0]),
                    entry[1].as_text().expect("reason").to_owned(),
                )
            })
            .collect(),
        low_stock: fields[2]
            .as_array()
            .expect("array")
            .iter()
            .map(|s| s.as_text().expect("sku").to_owned())
            .collect(),
        next_poll: uint(&fields[3]),
    }
}
