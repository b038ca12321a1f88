//! Strict decoding over HTTP: every hostile body is a 4xx CBOR error, and costs no upstream
//! call.

use crate::{error_code, spawn_app};
use iot_bff::samples;

#[tokio::test]
async fn every_hostile_message_is_a_400_cbor_error_without_an_upstream_call() {
    let app = spawn_app().await;
    let token = app.device_token("dev-1");
    for (name, body) in samples::hostile() {
        let response = app.post(Some(&token), body).await;
        assert_eq!(response.status, 400, "{name}");
        assert_eq!(error_code(&response), "BAD_REQUEST", "{name}");
    }
    assert_eq!(app.inventory_calls().await, 0);
}

#[tokio::test]
async fn an_oversize_body_is_413() {
    let app = spawn_app().await;
    let response = app
        .post(Some(&app.device_token("dev-1")), vec![0xa0; 20_000])
        .await;
    assert_eq!(response.status, 413);
    assert_eq!(error_code(&response), "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn a_wrong_content_type_is_415() {
    let app = spawn_app().await;
    let body = samples::valid("dev-1", 1, 1).to_cbor();
    for content_type in ["application/json", "text/plain", ""] {
        let response = app
            .post_as(Some(&app.device_token("dev-1")), body.clone(), content_type)
            .await;
        assert_eq!(response.status, 415, "{content_type:?}");
        assert_eq!(error_code(&response), "UNSUPPORTED_MEDIA_TYPE");
    }
    assert_eq!(app.inventory_calls().await, 0);
}
