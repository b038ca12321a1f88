//! `POST /v1/readings`: forwarding, idempotency, degraded inventory, per-reading rejections.

use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::{ack, error_code, spawn_app, spawn_app_with};
use iot_bff::message::DeviceReading;
use iot_bff::samples;

fn accepted(n: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"accepted": n, "rejected": []}))
}

#[tokio::test]
async fn a_valid_message_is_forwarded_once_with_its_idempotency_key_and_acked() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path("/inventory/readings"))
        .and(header("idempotency-key", "reading:dev-1:7"))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "device_id": "dev-1",
            "warehouse_id": "wh-1",
            "readings": [
                {"sku": "SKU-00001", "quantity": 3, "observed_at": "2026-11-18T11:06:40Z"},
                {"sku": "SKU-00002", "quantity": 8, "observed_at": "2026-11-18T11:06:40Z"},
                {"sku": "SKU-00003", "quantity": 13, "observed_at": "2026-11-18T11:06:40Z"}
            ]
        })))
        .respond_with(accepted(3))
        .expect(1)
        .mount(&app.mocks.inventory)
        .await;

    let response = app
        .post(
            Some(&app.device_token("dev-1")),
            samples::valid("dev-1", 7, 3).to_cbor(),
        )
        .await;

    assert_eq!(
        ack(&response),
        crate::AckView {
            accepted: 3,
            rejected: vec![],
            low_stock: vec!["SKU-00001".into(), "SKU-00002".into()],
            next_poll: 60,
        }
    );
}

#[tokio::test]
async fn a_repeated_message_gets_the_same_ack_and_is_applied_once() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .and(path("/inventory/readings"))
        .respond_with(accepted(2))
        .expect(1)
        .mount(&app.mocks.inventory)
        .await;
    let token = app.device_token("dev-1");
    let message = samples::valid("dev-1", 11, 2).to_cbor();

    let first = app.post(Some(&token), message.clone()).await;
    let second = app.post(Some(&token), message).await;

    assert_eq!(first.status, 200);
    assert_eq!(second.status, 200);
    assert_eq!(first.body, second.body, "byte-identical ack");
}

#[tokio::test]
async fn a_reused_sequence_number_with_other_content_is_refused() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .respond_with(accepted(2))
        .expect(1)
        .mount(&app.mocks.inventory)
        .await;
    let token = app.device_token("dev-1");
    app.post(Some(&token), samples::valid("dev-1", 11, 2).to_cbor())
        .await;

    let response = app
        .post(Some(&token), samples::valid("dev-1", 11, 3).to_cbor())
        .await;

    assert_eq!(response.status, 400);
    assert_eq!(error_code(&response), "BAD_REQUEST");
}

#[tokio::test]
async fn inventory_down_is_a_503_with_retry_after_and_the_retry_applies_once() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&app.mocks.inventory)
        .await;
    let token = app.device_token("dev-1");
    let message = samples::valid("dev-1", 3, 2).to_cbor();

    let down = app.post(Some(&token), message.clone()).await;
    assert_eq!(down.status, 503);
    assert_eq!(down.header("retry-after"), Some("5"));
    assert_eq!(error_code(&down), "UPSTREAM_UNAVAILABLE");

    app.mocks.inventory.reset().await;
    Mock::given(method("POST"))
        .and(header("idempotency-key", "reading:dev-1:3"))
        .respond_with(accepted(2))
        .expect(1)
        .mount(&app.mocks.inventory)
        .await;
    let retried = app.post(Some(&token), message.clone()).await;
    assert_eq!(ack(&retried).accepted, 2);
    // And once more: answered from the ack book, not applied again.
    let again = app.post(Some(&token), message).await;
    assert_eq!(again.body, retried.body);
}

#[tokio::test]
async fn a_key_still_being_applied_is_a_503_with_retry_after_never_a_4xx() {
    let app = spawn_app().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(409))
        .up_to_n_times(1)
        .mount(&app.mocks.inventory)
        .await;
    let token = app.device_token("dev-1");
    let message = samples::valid("dev-1", 4, 2).to_cbor();
    let busy = app.post(Some(&token), message.clone()).await;
    assert_eq!(busy.status, 503, "a device drops a message on a 4xx");
    assert_eq!(busy.header("retry-after"), Some("5"));
    assert_eq!(error_code(&busy), "UPSTREAM_UNAVAILABLE");
    Mock::given(method("POST"))
        .and(header("idempotency-key", "reading:dev-1:4"))
        .respond_with(accepted(2))
        .expect(1)
        .mount(&app.mocks.inventory)
        .await;
    let retried = app.post(Some(&token), message).await;
    assert_eq!(ack(&retried).accepted, 2, "nothing lost");
}

#[tokio::test]
async fn per_reading_rejections_keep_the_device_indexes() {
    let app = spawn_app().await;
    // The BFF forwards readings 0 and 2 only; inventory refuses its index 1 (device index 2).
    Mock::given(method("POST"))
        .and(body_json(json!({
            "device_id": "dev-1",
            "warehouse_id": "wh-1",
            "readings": [
                {"sku": "SKU-00001", "quantity": 20, "observed_at": "2026-11-18T11:06:40Z"},
                {"sku": "NOPE", "quantity": 1, "observed_at": "2026-11-18T11:06:40Z"}
            ]
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"accepted": 1, "rejected": [{"index": 1, "reason": "unknown_sku"}]}),
        ))
        .expect(1)
        .mount(&app.mocks.inventory)
        .await;
    let mut message = samples::valid("dev-1", 5, 0);
    message.readings = vec![
        DeviceReading {
            sku: "SKU-00001".into(),
            quantity: 20,
        },
        DeviceReading {
            sku: "SKU-00002".into(),
            quantity: -4,
        },
        DeviceReading {
            sku: "NOPE".into(),
            quantity: 1,
        },
        DeviceReading {
            sku: "SKU-00003".into(),
            quantity: 5_000_000,
        },
    ];

    let response = app
        .post(Some(&app.device_token("dev-1")), message.to_cbor())
        .await;

    let ack = ack(&response);
    assert_eq!(ack.accepted, 1);
    assert_eq!(
        ack.rejected,
        vec![
            (1, "negative_quantity".to_owned()),
            (2, "unknown_sku".to_owned()),
            (3, "quantity_too_large".to_owned()),
        ]
    );
    assert!(
        ack.low_stock.is_empty(),
        "NOPE was refused, SKU-00001 is at 20"
    );
}

#[tokio::test]
async fn config_returns_the_device_settings_in_cbor() {
    let app = spawn_app().await;
    let request = http::Request::get("/v1/config")
        .header(
            "authorization",
            format!("Bearer {}", app.device_token("dev-1")),
        )
        .body(axum::body::Body::empty())
        .expect("request");
    let response = switchyard_tests::send(&app.router, request).await;
    assert_eq!(response.status, 200);
    let fields = crate::int_map(&crate::cbor(&response), &[1, 2, 3, 4]);
    let values: Vec<u64> = fields
        .iter()
        .map(|v| {
            v.as_integer()
                .and_then(|i| u64::try_from(i).ok())
                .expect("uint")
        })
        .collect();
    assert_eq!(values, [60, 10, 100, 16_384]);
}

#[tokio::test]
async fn one_device_cannot_push_another_devices_recent_acks_out_of_the_book() {
    // Room for two devices, two acks each.
    let app = spawn_app_with(|config| {
        config.devices.ack_cache_entries = 4;
        config.devices.acks_per_device = 2;
    })
    .await;
    Mock::given(method("POST"))
        .respond_with(accepted(1))
        .mount(&app.mocks.inventory)
        .await;
    let calls_for = |key: String| {
        let app = &app;
        async move {
            app.mocks
                .inventory
                .received_requests()
                .await
                .unwrap_or_default()
                .iter()
                .filter(|r| {
                    r.headers
                        .get("idempotency-key")
                        .is_some_and(|v| v.to_str().is_ok_and(|v| v == key))
                })
                .count()
        }
    };
    let (a, b) = (app.device_token("dev-A"), app.device_token("dev-B"));
    let b1 = samples::valid("dev-B", 1, 1).to_cbor();
    let first = app.post(Some(&b), b1.clone()).await;
    assert_eq!(ack(&first).accepted, 1);
    for seq in 1..=20 {
        let message = samples::valid("dev-A", seq, 1).to_cbor();
        assert_eq!(app.post(Some(&a), message).await.status, 200);
    }
    // B's ack survived A's flood: the replay is answered from the book.
    let replay = app.post(Some(&b), b1).await;
    assert_eq!(replay.body, first.body);
    assert_eq!(calls_for("reading:dev-B:1".into()).await, 1);
    // A keeps only its two most recent acks.
    let recent = app
        .post(Some(&a), samples::valid("dev-A", 20, 1).to_cbor())
        .await;
    assert_eq!(recent.status, 200);
    assert_eq!(calls_for("reading:dev-A:20".into()).await, 1);
    let old = app
        .post(Some(&a), samples::valid("dev-A", 1, 1).to_cbor())
        .await;
    assert_eq!(old.status, 200);
    assert_eq!(
        calls_for("reading:dev-A:1".into()).await,
        2,
        "an old ack was forgotten; the inventory's idempotency key still holds"
    );
    // A third device is admitted to the full book (least recently used goes).
    let c = app.device_token("dev-C");
    let c1 = samples::valid("dev-C", 1, 1).to_cbor();
    let given = app.post(Some(&c), c1.clone()).await;
    let again = app.post(Some(&c), c1).await;
    assert_eq!(again.body, given.body);
    assert_eq!(calls_for("reading:dev-C:1".into()).await, 1);
}
