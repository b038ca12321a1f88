//! The entity cache in front of the upstream clients.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use switchyard_core::upstream::UpstreamConfig;
use switchyard_core::upstream::{CacheConfig, CachedCustomers, track_freshness};
use switchyard_core::upstream::{CustomersApi, HttpCustomers, Service};
use switchyard_tests::customer_json;
use wiremock::matchers::{method, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn cached(server: &MockServer, cache: CacheConfig) -> Arc<CachedCustomers> {
    let mut config = UpstreamConfig {
        url: server.uri(),
        ..UpstreamConfig::default()
    };
    config.retry.enabled = false;
    let http = Arc::new(HttpCustomers::new(&config).expect("valid config"));
    Arc::new(CachedCustomers::new(http, &cache))
}

/// Serves `cus_1` once, then answers 503 to everything.
async fn answer_once_then_fail(server: &MockServer) {
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [customer_json("cus_1")]})),
        )
        .up_to_n_times(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(server)
        .await;
}

/// Ten lookups of `cus_1` started together, so that they miss the cache at the same time.
async fn ten_concurrent_lookups(
    customers: &Arc<CachedCustomers>,
) -> Vec<switchyard_core::upstream::UpstreamResult<switchyard_core::domain::Customer>> {
    let lookups: Vec<_> = (0..10)
        .map(|_| {
            let customers = Arc::clone(customers);
            tokio::spawn(async move { customers.customer("cus_1").await })
        })
        .collect();
    let mut results = Vec::with_capacity(lookups.len());
    for lookup in lookups {
        results.push(lookup.await.expect("joined"));
    }
    results
}

async fn hits(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

#[tokio::test]
async fn concurrent_misses_for_one_key_make_one_upstream_call() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [customer_json("cus_1")]}))
                .set_delay(Duration::from_millis(100)),
        )
        .mount(&server)
        .await;
    let customers = cached(
        &server,
        CacheConfig {
            ttl_ms: 60_000,
            ..CacheConfig::default()
        },
    );
    for customer in ten_concurrent_lookups(&customers).await {
        assert_eq!(customer.expect("served").id, "cus_1");
    }
    assert_eq!(hits(&server).await, 1);
    // And a fresh hit needs no call at all.
    customers.customer("cus_1").await.expect("cached");
    assert_eq!(hits(&server).await, 1);
}

/// Regression: with a TTL of 0 (the default for stock and orders), callers that waited on
/// another caller's fetch read the cache after it, found nothing fresh, and reported the
/// key as unknown. The benchmark found it as "signed-in customer not found" under load.
#[tokio::test]
async fn waiters_get_the_fetched_value_even_with_a_ttl_of_zero() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [customer_json("cus_1")]}))
                .set_delay(Duration::from_millis(100)),
        )
        .mount(&server)
        .await;
    for stale_for_ms in [0, 60_000] {
        let customers = cached(
            &server,
            CacheConfig {
                ttl_ms: 0,
                stale_for_ms,
                ..CacheConfig::default()
            },
        );
        for customer in ten_concurrent_lookups(&customers).await {
            assert_eq!(
                customer.map(|c| c.id).ok(),
                Some("cus_1".to_owned()),
                "stale_for_ms = {stale_for_ms}"
            );
        }
    }
    assert_eq!(
        hits(&server).await,
        2,
        "one fetch per cache, shared by ten callers"
    );
}

#[tokio::test]
async fn a_batch_fetches_only_its_misses() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(query_param("ids", "cus_1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [customer_json("cus_1")]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(query_param("ids", "cus_2,cus_3"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [customer_json("cus_2"), customer_json("cus_3")]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let customers = cached(
        &server,
        CacheConfig {
            ttl_ms: 60_000,
            ..CacheConfig::default()
        },
    );
    customers
        .customers(&["cus_1".into()])
        .await
        .expect("served");
    let all = customers
        .customers(&["cus_1".into(), "cus_2".into(), "cus_3".into()])
        .await
        .expect("served");
    let ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["cus_1", "cus_2", "cus_3"]);
    assert_eq!(
        hits(&server).await,
        2,
        "the second call asked only for the misses"
    );
}

#[tokio::test]
async fn stale_entries_are_served_on_failure_within_the_window_and_reported() {
    let server = MockServer::start().await;
    answer_once_then_fail(&server).await;
    let customers = cached(
        &server,
        CacheConfig {
            ttl_ms: 0,
            stale_for_ms: 60_000,
            max_entries: 10,
        },
    );
    let (first, freshness) = track_freshness(customers.customer("cus_1")).await;
    first.expect("fresh");
    assert!(freshness.is_fresh());

    let (second, freshness) = track_freshness(customers.customer("cus_1")).await;
    assert_eq!(second.expect("stale served").id, "cus_1");
    assert!(
        freshness.stale.contains_key(&Service::Customers),
        "{freshness:?}"
    );

    // A key never cached cannot be served stale: the failure surfaces.
    let (unknown, _) = track_freshness(customers.customer("cus_9")).await;
    assert!(unknown.is_err());
}

#[tokio::test]
async fn entries_past_the_stale_window_are_not_served() {
    let server = MockServer::start().await;
    answer_once_then_fail(&server).await;
    let customers = cached(
        &server,
        CacheConfig {
            ttl_ms: 0,
            stale_for_ms: 20,
            max_entries: 10,
        },
    );
    customers.customer("cus_1").await.expect("fresh");
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert!(
        customers.customer("cus_1").await.is_err(),
        "too old to serve"
    );
}

#[tokio::test]
async fn a_waiter_refetches_when_the_fetch_it_waited_for_is_cancelled() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": [customer_json("cus_1")]}))
                .set_delay(Duration::from_millis(200)),
        )
        .mount(&server)
        .await;
    let customers = cached(
        &server,
        CacheConfig {
            ttl_ms: 60_000,
            ..CacheConfig::default()
        },
    );
    let first = {
        let customers = Arc::clone(&customers);
        tokio::spawn(async move { customers.customer("cus_1").await })
    };
    while hits(&server).await < 1 {
        tokio::task::yield_now().await;
    }
    let second = {
        let customers = Arc::clone(&customers);
        tokio::spawn(async move { customers.customer("cus_1").await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    first.abort();
    let customer = second
        .await
        .expect("joined")
        .expect("served despite the cancelled fetch");
    assert_eq!(customer.id, "cus_1");
    assert_eq!(hits(&server).await, 2, "the waiter fetched again");
}
