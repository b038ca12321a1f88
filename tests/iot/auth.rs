//! Device auth: the token's subject is the device, writes need `data:inventory:write`.

use switchyard_tests::Token;

use crate::{error_code, spawn_app};
use iot_bff::samples;

#[tokio::test]
async fn a_device_posting_as_another_device_is_403() {
    let app = spawn_app().await;
    let response = app
        .post(
            Some(&app.device_token("dev-A")),
            samples::valid("dev-B", 1, 1).to_cbor(),
        )
        .await;
    assert_eq!(response.status, 403);
    assert_eq!(error_code(&response), "FORBIDDEN");
    assert_eq!(app.inventory_calls().await, 0);
}

#[tokio::test]
async fn a_token_without_the_write_scope_is_403() {
    let app = spawn_app().await;
    let token = Token::customer("dev-1")
        .scope("data:inventory:read")
        .sign(&app.mocks.ec);
    let response = app
        .post(Some(&token), samples::valid("dev-1", 1, 1).to_cbor())
        .await;
    assert_eq!(response.status, 403);
    assert_eq!(error_code(&response), "FORBIDDEN");
    assert_eq!(
        response.header("www-authenticate"),
        Some(r#"Bearer error="insufficient_scope""#)
    );
}

#[tokio::test]
async fn missing_and_bad_tokens_are_401_cbor_errors() {
    let app = spawn_app().await;
    let expired = Token {
        exp_in: -600,
        ..Token::customer("dev-1").scope("data:inventory:write")
    }
    .sign(&app.mocks.ec);
    for token in [None, Some("not-a-jwt"), Some(expired.as_str())] {
        let response = app
            .post(token, samples::valid("dev-1", 1, 1).to_cbor())
            .await;
        assert_eq!(response.status, 401, "{token:?}");
        assert_eq!(error_code(&response), "UNAUTHENTICATED");
        assert!(response.header("www-authenticate").is_some());
    }
    assert_eq!(app.inventory_calls().await, 0);
}
