//! Acks shared through a real Redis: a retry that lands on another replica gets the same
//! bytes and no second upstream apply; while Redis is down every message still reaches
//! the inventory service under its idempotency key, and sharing resumes after.

use iot_bff::{IotBff, samples};
use serde_json::json;
use switchyard_tests::{RedisServer, TestApp};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::{IotApp, error_code};

async fn two_replicas(redis_url: &str) -> (IotApp, IotApp) {
    let (first, second) = TestApp::<IotBff>::two_replicas_sharing(redis_url).await;
    (IotApp(first), IotApp(second))
}

async fn inventory_accepts(app: &IotApp, key: &str, n: u64) {
    Mock::given(method("POST"))
        .and(path("/inventory/readings"))
        .and(header("idempotency-key", key))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"accepted": n, "rejected": []})),
        )
        .mount(&app.mocks.inventory)
        .await;
}

#[tokio::test]
async fn a_retry_through_another_replica_gets_the_same_ack_bytes_and_one_upstream_apply() {
    let Some(redis) = RedisServer::start("acks across replicas") else {
        return;
    };
    let (first, second) = two_replicas(&redis.url()).await;
    inventory_accepts(&first, "reading:dev-1:7", 2).await;
    let token = first.device_token("dev-1");
    let message = samples::valid("dev-1", 7, 2).to_cbor();

    let original = first.post(Some(&token), message.clone()).await;
    let retried = second.post(Some(&token), message).await;

    assert_eq!(original.status, 200);
    assert_eq!(retried.status, 200);
    assert_eq!(original.body, retried.body, "byte-identical ack");
    assert_eq!(first.inventory_calls().await, 1, "applied upstream once");
    let stored = redis
        .cli(&["EXISTS", "sy:acks:dev-1:7"])
        .expect("redis-cli");
    assert_eq!(stored.trim(), "1");
    let ttl: u64 = redis
        .cli(&["TTL", "sy:acks:dev-1:7"])
        .expect("redis-cli")
        .trim()
        .parse()
        .expect("a TTL");
    assert!((86_000..=86_400).contains(&ttl), "kept 24 h, TTL {ttl}");

    // The same seq with other content is refused on either replica.
    let reused = second
        .post(Some(&token), samples::valid("dev-1", 7, 3).to_cbor())
        .await;
    assert_eq!(reused.status, 400);
    assert_eq!(error_code(&reused), "BAD_REQUEST");
    assert_eq!(first.inventory_calls().await, 1);
}

#[tokio::test]
async fn while_redis_is_down_retries_go_upstream_under_their_idempotency_key_and_sharing_resumes_after()
 {
    let Some(mut redis) = RedisServer::start("acks during a redis outage") else {
        return;
    };
    let (first, second) = two_replicas(&redis.url()).await;
    inventory_accepts(&first, "reading:dev-1:1", 2).await;
    let token = first.device_token("dev-1");

    redis.kill();
    let message = samples::valid("dev-1", 1, 2).to_cbor();
    let original = first.post(Some(&token), message.clone()).await;
    let retried = second.post(Some(&token), message).await;
    assert_eq!(
        original.status, 200,
        "a Redis failure is not the device's problem"
    );
    assert_eq!(retried.status, 200);
    assert_eq!(original.body, retried.body);
    // Nothing shared: the retry went upstream again, with the same key, which the
    // inventory service applies once.
    let keys: Vec<String> = first
        .mocks
        .inventory
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| {
            r.headers
                .get("idempotency-key")?
                .to_str()
                .ok()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(keys, ["reading:dev-1:1", "reading:dev-1:1"]);

    redis.restart();
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"accepted": 2, "rejected": []})),
        )
        .mount(&first.mocks.inventory)
        .await;
    // Each replica's table pauses Redis for a moment after the outage; a fresh message
    // each attempt, until one is shared.
    let mut shared = false;
    for seq in 100..140 {
        let message = samples::valid("dev-1", seq, 2).to_cbor();
        let answer = first.post(Some(&token), message.clone()).await;
        assert_eq!(answer.status, 200);
        let key = format!("sy:acks:dev-1:{seq}");
        if redis
            .cli(&["EXISTS", &key])
            .is_some_and(|s| s.trim() == "1")
        {
            let before = first.inventory_calls().await;
            let again = second.post(Some(&token), message).await;
            assert_eq!(again.body, answer.body);
            if first.inventory_calls().await == before {
                shared = true;
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(shared, "acks are shared again once Redis answers");
}
