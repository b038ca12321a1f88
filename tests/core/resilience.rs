//! Deadlines, breakers, bulkheads and retries, driven through the real HTTP clients.
//!
//! failsafe measures its open period with `std::time::Instant`, so breaker backoffs here
//! are short real durations (tens of milliseconds) rather than tokio's paused clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use switchyard_core::ErrorCode;
use switchyard_core::upstream::UpstreamConfig;
use switchyard_core::upstream::{BreakerState, DEADLINE_HEADER, Deadline, with_deadline};
use switchyard_core::upstream::{
    CustomersApi, HttpCustomers, HttpInventory, InventoryApi, UpstreamError,
};
use switchyard_tests::{customer_json, stock_json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn config(server: &MockServer) -> UpstreamConfig {
    let mut config = UpstreamConfig {
        url: server.uri(),
        ..UpstreamConfig::default()
    };
    config.breaker.consecutive_failures = 3;
    config.breaker.backoff_initial_ms = 150;
    config.breaker.backoff_max_ms = 150;
    config.breaker.jitter = false;
    config.retry.enabled = false;
    config
}

fn inventory(config: &UpstreamConfig) -> HttpInventory {
    HttpInventory::new(config).expect("valid config")
}

async fn hits(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

async fn respond(server: &MockServer, template: ResponseTemplate) {
    server.reset().await;
    Mock::given(method("GET"))
        .respond_with(template)
        .mount(server)
        .await;
}

#[tokio::test]
async fn breaker_opens_after_three_consecutive_503s_and_then_fails_fast_without_calling() {
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(503)).await;
    let client = inventory(&config(&server));
    for _ in 0..3 {
        let error = client.stock_level("SKU-1").await.expect_err("503");
        assert_eq!(error.code(), ErrorCode::UpstreamUnavailable);
    }
    assert_eq!(client.breaker_state(), BreakerState::Open);
    for _ in 0..5 {
        let error = client.stock_level("SKU-1").await.expect_err("open");
        assert!(
            error.to_string().contains("circuit breaker open"),
            "{error}"
        );
    }
    assert_eq!(
        hits(&server).await,
        3,
        "an open breaker never touches the network"
    );
}

#[tokio::test]
async fn after_the_backoff_a_successful_probe_closes_the_breaker() {
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(503)).await;
    let client = inventory(&config(&server));
    for _ in 0..3 {
        let _ = client.stock_level("SKU-1").await;
    }
    assert_eq!(client.breaker_state(), BreakerState::Open);
    respond(
        &server,
        ResponseTemplate::new(200).set_body_json(stock_json("SKU-1", 5)),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let level = client.stock_level("SKU-1").await.expect("probe succeeds");
    assert_eq!(level.available, 5);
    assert_eq!(client.breaker_state(), BreakerState::Closed);
    assert_eq!(hits(&server).await, 1, "the probe reached the upstream");
}

#[tokio::test]
async fn a_failed_probe_re_opens_the_breaker() {
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(500)).await;
    let client = inventory(&config(&server));
    for _ in 0..3 {
        let _ = client.stock_level("SKU-1").await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = client.stock_level("SKU-1").await.expect_err("probe fails");
    assert_eq!(client.breaker_state(), BreakerState::Open);
    let before = hits(&server).await;
    let error = client.stock_level("SKU-1").await.expect_err("open again");
    assert!(error.to_string().contains("circuit breaker open"));
    assert_eq!(hits(&server).await, before);
}

#[tokio::test]
async fn client_errors_never_open_the_breaker() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/inventory/missing"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/inventory/bad"))
        .respond_with(ResponseTemplate::new(400))
        .mount(&server)
        .await;
    let client = inventory(&config(&server));
    for _ in 0..10 {
        assert_eq!(
            client.stock_level("missing").await.expect_err("404").code(),
            ErrorCode::NotFound
        );
        assert_eq!(
            client.stock_level("bad").await.expect_err("400").code(),
            ErrorCode::BadRequest
        );
    }
    assert_eq!(client.breaker_state(), BreakerState::Closed);
    assert_eq!(hits(&server).await, 20);
}

#[tokio::test]
async fn timeouts_open_the_breaker() {
    let server = MockServer::start().await;
    respond(
        &server,
        ResponseTemplate::new(200).set_delay(Duration::from_secs(2)),
    )
    .await;
    let mut config = config(&server);
    config.timeout_ms = 50;
    let client = inventory(&config);
    for _ in 0..3 {
        assert_eq!(
            client.stock_level("SKU-1").await.expect_err("slow").code(),
            ErrorCode::UpstreamTimeout
        );
    }
    assert_eq!(client.breaker_state(), BreakerState::Open);
}

#[tokio::test]
async fn a_slow_upstream_is_cut_off_at_the_request_deadline() {
    let server = MockServer::start().await;
    respond(
        &server,
        ResponseTemplate::new(200).set_delay(Duration::from_secs(5)),
    )
    .await;
    let client = inventory(&config(&server));
    let started = Instant::now();
    let result = with_deadline(
        Deadline::after(Duration::from_millis(150)),
        client.stock_level("SKU-1"),
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(
        result.expect_err("deadline").code(),
        ErrorCode::UpstreamTimeout
    );
    assert!(
        elapsed < Duration::from_millis(150 + 250),
        "took {elapsed:?}"
    );
}

#[tokio::test]
async fn no_call_starts_after_the_deadline_and_the_budget_is_sent_upstream() {
    let server = MockServer::start().await;
    respond(
        &server,
        ResponseTemplate::new(200).set_body_json(stock_json("SKU-1", 1)),
    )
    .await;
    let client = inventory(&config(&server));
    let deadline = Deadline::after(Duration::from_millis(500));
    with_deadline(deadline, client.stock_level("SKU-1"))
        .await
        .expect("served");
    let requests = server.received_requests().await.expect("recorded");
    let budget: u64 = requests[0].headers[DEADLINE_HEADER]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("milliseconds");
    assert!(budget > 0 && budget <= 500, "budget {budget}");

    let expired = Deadline::after(Duration::from_millis(1));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let error = with_deadline(expired, client.stock_level("SKU-1"))
        .await
        .expect_err("expired");
    assert_eq!(error.code(), ErrorCode::UpstreamTimeout);
    assert_eq!(hits(&server).await, 1, "no call after the deadline");
}

#[tokio::test]
async fn a_full_bulkhead_fails_fast_and_a_hanging_inventory_does_not_slow_customers() {
    let inventory_server = MockServer::start().await;
    respond(
        &inventory_server,
        ResponseTemplate::new(200).set_delay(Duration::from_secs(3)),
    )
    .await;
    let customers_server = MockServer::start().await;
    respond(
        &customers_server,
        ResponseTemplate::new(200).set_body_json(customer_json("cus_1")),
    )
    .await;

    let mut inventory_config = config(&inventory_server);
    inventory_config.max_in_flight = 2;
    let inventory = Arc::new(inventory(&inventory_config));
    let customers = HttpCustomers::new(&config(&customers_server)).expect("valid config");

    let hanging: Vec<_> = (0..2)
        .map(|_| {
            let inventory = Arc::clone(&inventory);
            tokio::spawn(async move { inventory.stock_level("SKU-1").await })
        })
        .collect();
    // Let both hanging calls take their bulkhead permits.
    while hits(&inventory_server).await < 2 {
        tokio::task::yield_now().await;
    }
    let started = Instant::now();
    let error = inventory
        .stock_level("SKU-1")
        .await
        .expect_err("bulkhead full");
    assert!(error.to_string().contains("bulkhead"), "{error}");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "failed fast"
    );

    let started = Instant::now();
    customers
        .customer("cus_1")
        .await
        .expect("customers unaffected");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "took {:?}",
        started.elapsed()
    );
    for call in hanging {
        call.abort();
    }
}

/// Fails every other call with 503, starting with the first.
struct HalfFailing(AtomicUsize);

impl Respond for HalfFailing {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        if self.0.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
            ResponseTemplate::new(503)
        } else {
            ResponseTemplate::new(200).set_body_json(stock_json("SKU-1", 1))
        }
    }
}

#[tokio::test]
async fn a_failure_storm_costs_at_most_the_retry_budget_in_extra_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(HalfFailing(AtomicUsize::new(0)))
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.breaker.consecutive_failures = 1_000;
    config.breaker.required_success_rate = 0.0;
    config.retry = switchyard_core::upstream::RetryConfig {
        enabled: true,
        budget_ratio: 0.2,
        min_per_sec: 0.0,
        backoff_ms: 1,
    };
    let client = inventory(&config);
    let requests = 200;
    let mut served = 0;
    for _ in 0..requests {
        if client.stock_level("SKU-1").await.is_ok() {
            served += 1;
        }
    }
    let attempts = hits(&server).await;
    assert!(
        attempts as f64 <= requests as f64 * 1.2 + 1.0,
        "{attempts} attempts for {requests} requests"
    );
    assert!(attempts > requests, "some calls were retried");
    assert!(
        served > requests / 2,
        "retries turned some failures into answers: {served}"
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_the_deadline_is_not_waited_for() {
    let server = MockServer::start().await;
    respond(
        &server,
        ResponseTemplate::new(503).insert_header("retry-after", "5"),
    )
    .await;
    let mut config = config(&server);
    config.retry.enabled = true;
    let client = inventory(&config);
    let started = Instant::now();
    let result = with_deadline(
        Deadline::after(Duration::from_millis(800)),
        client.stock_level("SKU-1"),
    )
    .await;
    assert_eq!(
        result.expect_err("503").code(),
        ErrorCode::UpstreamUnavailable
    );
    assert_eq!(
        hits(&server).await,
        1,
        "no retry: it would not fit in the deadline"
    );
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[tokio::test]
async fn a_transient_failure_is_retried_once_when_the_budget_allows() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(HalfFailing(AtomicUsize::new(0)))
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.retry.enabled = true;
    let client = inventory(&config);
    let level = client
        .stock_level("SKU-1")
        .await
        .expect("second attempt succeeds");
    assert_eq!(level.available, 1);
    assert_eq!(hits(&server).await, 2);
}

#[tokio::test]
async fn non_idempotent_calls_are_never_retried() {
    use switchyard_core::upstream::Service;
    use switchyard_core::upstream::{BreakerConfig, Guard, RetryConfig};
    let guard = Guard::new(
        Service::Inventory,
        Duration::from_secs(1),
        &BreakerConfig::default(),
        &RetryConfig::default(),
        8,
    );
    let attempts = AtomicUsize::new(0);
    let result: Result<(), UpstreamError> = guard
        .run(false, |_, _| {
            attempts.fetch_add(1, Ordering::Relaxed);
            async {
                Err((
                    UpstreamError::Unavailable {
                        service: Service::Inventory,
                        detail: "503".into(),
                    },
                    None,
                ))
            }
        })
        .await;
    assert!(result.is_err());
    assert_eq!(attempts.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn timeouts_caused_by_a_nearly_spent_deadline_do_not_open_a_healthy_services_breaker() {
    let server = MockServer::start().await;
    respond(
        &server,
        ResponseTemplate::new(200)
            .set_body_json(stock_json("SKU-1", 1))
            .set_delay(Duration::from_millis(300)),
    )
    .await;
    let mut config = config(&server);
    config.timeout_ms = 2_000;
    let client = inventory(&config);
    // Each request had 200 ms, and a slow sibling spent all but 20 ms of it before this
    // service was called: every call times out, none of it the service's fault.
    for _ in 0..6 {
        let deadline = Deadline::after(Duration::from_millis(200));
        let late = async {
            tokio::time::sleep(Duration::from_millis(180)).await;
            client.stock_level("SKU-1").await
        };
        let error = with_deadline(deadline, late)
            .await
            .expect_err("the deadline passes first");
        assert_eq!(error.code(), ErrorCode::UpstreamTimeout);
    }
    assert_eq!(client.breaker_state(), BreakerState::Closed);
    // Called first, with the request's whole budget, a service that does not answer in
    // it is slow, and that counts.
    for _ in 0..3 {
        let deadline = Deadline::after(Duration::from_millis(100));
        let _ = with_deadline(deadline, client.stock_level("SKU-1")).await;
    }
    assert_eq!(client.breaker_state(), BreakerState::Open);
}

#[tokio::test]
async fn a_half_open_breaker_lets_one_probe_through_not_every_waiting_caller() {
    let server = MockServer::start().await;
    respond(&server, ResponseTemplate::new(503)).await;
    let client = Arc::new(inventory(&config(&server)));
    for _ in 0..3 {
        let _ = client.stock_level("SKU-1").await;
    }
    assert_eq!(client.breaker_state(), BreakerState::Open);
    respond(
        &server,
        ResponseTemplate::new(200)
            .set_body_json(stock_json("SKU-1", 1))
            // Long enough that every caller arrives while the probe is out.
            .set_delay(Duration::from_millis(500)),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let callers: Vec<_> = (0..10)
        .map(|_| {
            let client = Arc::clone(&client);
            tokio::spawn(async move { client.stock_level("SKU-1").await })
        })
        .collect();
    let mut served = 0;
    for caller in callers {
        if caller.await.expect("joined").is_ok() {
            served += 1;
        }
    }
    assert_eq!(
        hits(&server).await,
        1,
        "one probe reached the recovering service"
    );
    assert_eq!(served, 1);
    assert_eq!(
        client.breaker_state(),
        BreakerState::Closed,
        "the probe closed it"
    );
    assert!(client.stock_level("SKU-1").await.is_ok());
}
