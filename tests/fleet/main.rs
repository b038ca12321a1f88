//! The fleet, for real: a real `redis-server`, a real `nats-server -js`, the sandbox
//! upstreams, 3 web-bff, 2 mobile-bff and 2 iot-bff processes, and haproxy in front
//! routing on `/readyz`. One test walks through what a fleet must hold, printing the
//! figures it measured:
//!
//! - a consumer's burst and quota hold across replicas exactly;
//! - a persisted query registered through one replica is served by the others;
//! - an IoT message retried through another replica gets the same ack bytes and one
//!   upstream apply;
//! - a subscriber resumes on another replica with no gap;
//! - a replica killed under steady load: no request fails (haproxy replays on another
//!   replica what the dead one never answered; every Switchyard request may be
//!   replayed), and the load balancer stops routing to it;
//! - Redis stopped: every BFF keeps answering; Redis back: shared state resumes;
//! - the limit test again against a 3-node Redis Cluster.
//!
//! Ignored by default (it needs the binaries built and haproxy installed); `.ci/run` runs
//! it explicitly:
//!
//! ```text
//! cargo build -p web-bff -p mobile-bff -p iot-bff
//! cargo test -p switchyard-tests --test fleet -- --ignored --nocapture
//! ```

mod fleet;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fleet::{Balancer, Kind, Replica, config, requests_served};
use serde_json::json;
use switchyard_sandbox::issuer::TokenRequest;
use switchyard_sandbox::nats::NatsServer;
use switchyard_sandbox::redis::{RedisCluster, RedisServer};
use switchyard_sandbox::servers::installed;
use switchyard_sandbox::{Sandbox, SandboxOptions};
use switchyard_tests::stream::SseClient;

const VIEWER: &str = "{ viewer { name } }";

struct Fleet {
    sandbox: Sandbox,
    redis: RedisServer,
    nats: NatsServer,
    web: Vec<Replica>,
    mobile: Vec<Replica>,
    iot: Vec<Replica>,
    balancer: Balancer,
    client: reqwest::Client,
    report: Vec<String>,
    /// Last, so that it is removed after the processes writing into it are stopped.
    _scratch: switchyard_tests::ScratchDir,
}

impl Fleet {
    fn token(&self, sub: &str, tier: &str) -> String {
        self.sandbox.issuer.mint(&TokenRequest {
            sub: sub.to_owned(),
            tier: tier.to_owned(),
            ..TokenRequest::default()
        })
    }

    /// A device's token (`data:inventory:write`), on a plan no test meets.
    fn device_token(&self, device: &str) -> String {
        self.sandbox.issuer.mint(&TokenRequest {
            sub: device.to_owned(),
            scope: "data:inventory:write".to_owned(),
            tier: "enterprise".to_owned(),
            ..TokenRequest::default()
        })
    }

    fn note(&mut self, line: String) {
        println!("fleet: {line}");
        self.report.push(line);
    }

    /// POSTs a GraphQL `body` to `base` (a replica or the balancer); the status and JSON.
    async fn graphql(
        &self,
        base: &str,
        token: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(format!("{base}/graphql"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("the request is answered");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// `requests` concurrent queries as `consumer` through the balancer; (admitted, refused).
    async fn burst(&self, consumer: &str, tier: &str, requests: usize) -> (usize, usize) {
        let token = self.token(consumer, tier);
        let url = self.balancer.url(Kind::Web);
        let statuses = futures_util::future::join_all((0..requests).map(|_| {
            let (token, url) = (token.clone(), url.clone());
            async move {
                self.graphql(&url, &token, &json!({"query": VIEWER}))
                    .await
                    .0
            }
        }))
        .await;
        let admitted = statuses.iter().filter(|s| **s == 200).count();
        let refused = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!(
            admitted + refused,
            requests,
            "only 200s and 429s: {statuses:?}"
        );
        (admitted, refused)
    }

    async fn served_per_web_replica(&self) -> Vec<f64> {
        let mut served = Vec::new();
        for replica in &self.web {
            served.push(requests_served(replica, "/graphql").await);
        }
        served
    }
}

async fn start() -> Option<Fleet> {
    let test = "the fleet";
    if !installed("haproxy", "-v", test, "apt-get install haproxy") {
        return None;
    }
    let redis = RedisServer::start(test)?;
    let nats = NatsServer::start(test)?;
    let sandbox = Sandbox::start(&SandboxOptions {
        nats_url: Some(nats.url()),
        // Order statuses change 20 times a second: a steady flow for the streams.
        order_activity: 20.0,
        ..SandboxOptions::ephemeral()
    })
    .await
    .expect("the sandbox starts");
    // Configs and every process's log; kept if the test fails.
    let scratch = switchyard_tests::ScratchDir::new("fleet");
    let dir = scratch.path();
    let replicas = |kind: Kind, count: usize| -> Vec<Replica> {
        let config = config(kind, &sandbox, &redis.url(), &nats.url());
        (1..=count)
            .map(|n| Replica::start(&format!("{}-{n}", kind.binary()), kind, &config, dir))
            .collect()
    };
    let web = replicas(Kind::Web, 3);
    let mobile = replicas(Kind::Mobile, 2);
    let iot = replicas(Kind::Iot, 2);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    for replica in web.iter().chain(&mobile).chain(&iot) {
        replica.wait_ready(&client).await;
    }
    let all: Vec<&Replica> = web.iter().chain(&mobile).chain(&iot).collect();
    let balancer = Balancer::start(&all, dir);
    let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
    balancer.wait_up(&client, &names).await;
    Some(Fleet {
        sandbox,
        redis,
        nats,
        web,
        mobile,
        iot,
        balancer,
        client,
        report: Vec::new(),
        _scratch: scratch,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "runs the fleet as processes; .ci/run runs it with --ignored"]
async fn the_fleet() {
    let started = Instant::now();
    let Some(mut fleet) = start().await else {
        return;
    };
    let up = started.elapsed();
    fleet.note(format!(
        "up in {:.1} s: redis, nats -js, sandbox, 3 web + 2 mobile + 2 iot replicas, haproxy",
        up.as_secs_f64()
    ));

    limits_hold_across_replicas(&mut fleet).await;
    persisted_queries_are_shared(&mut fleet).await;
    iot_retries_are_answered_once(&mut fleet).await;
    subscribers_resume_on_another_replica(&mut fleet).await;
    a_replica_killed_under_load(&mut fleet).await;
    redis_stopped_and_back(&mut fleet).await;
    limits_on_a_redis_cluster(&mut fleet).await;

    fleet.note(format!(
        "whole run {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    println!("\nfleet report:\n  {}", fleet.report.join("\n  "));
    // The NATS server outlives the streams that used it.
    drop(fleet.nats);
}

async fn limits_hold_across_replicas(fleet: &mut Fleet) {
    let before = fleet.served_per_web_replica().await;
    let (admitted, refused) = fleet.burst("cus_00001", "pro", 150).await;
    let after = fleet.served_per_web_replica().await;
    let spread: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert!(
        spread.iter().all(|n| *n > 0.0),
        "every replica took requests: {spread:?}"
    );
    assert_eq!(
        (admitted, refused),
        (50, 100),
        "burst 50 holds across 3 replicas"
    );
    fleet.note(format!(
        "burst 50: 150 concurrent requests through haproxy, {spread:?} per replica: {admitted} admitted, {refused} refused"
    ));

    let (admitted, refused) = fleet.burst("cus_00002", "free", 100).await;
    assert_eq!(
        (admitted, refused),
        (60, 40),
        "a quota of 60 holds across 3 replicas"
    );
    fleet.note(format!(
        "quota 60/day: 100 concurrent requests: {admitted} admitted, {refused} refused"
    ));
}

fn sha256_hex(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

async fn persisted_queries_are_shared(fleet: &mut Fleet) {
    let token = fleet.token("cus_00003", "enterprise");
    let query = "query Fleet { viewer { name tier } }";
    let hash = sha256_hex(query);
    let extensions = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});
    // (Legacy `application/json`: a request error is a 200 with `errors`.)
    let (_, unknown) = fleet
        .graphql(
            &fleet.web[1].url(),
            &token,
            &json!({"extensions": extensions}),
        )
        .await;
    assert_eq!(
        unknown["errors"][0]["extensions"]["code"],
        "PERSISTED_QUERY_NOT_FOUND"
    );
    let (status, registered) = fleet
        .graphql(
            &fleet.web[0].url(),
            &token,
            &json!({"query": query, "extensions": extensions}),
        )
        .await;
    assert_eq!(status, 200, "{registered}");
    let mut served = 0;
    for replica in &fleet.web[1..] {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/graphql", replica.url()),
            &[("extensions", extensions.to_string())],
        )
        .expect("url");
        let response = fleet
            .client
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["data"], registered["data"]);
        served += 1;
    }
    fleet.note(format!(
        "APQ: registered through web-bff-1, served by hash over GET by {served} other replicas"
    ));
}

async fn iot_retries_are_answered_once(fleet: &mut Fleet) {
    let token = fleet.device_token("dev-0001");
    let message = iot_bff::samples::valid("dev-0001", 1, 5).to_cbor();
    let mut acks = Vec::new();
    for replica in &fleet.iot {
        let response = fleet
            .client
            .post(format!("{}/v1/readings", replica.url()))
            .bearer_auth(&token)
            .header("content-type", "application/cbor")
            .body(message.clone())
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 200);
        acks.push(response.bytes().await.expect("ack"));
    }
    assert_eq!(acks[0], acks[1], "the same ack bytes from both replicas");
    let applies = fleet
        .sandbox
        .inventory
        .admin
        .requests(1_000)
        .iter()
        .filter(|r| {
            r.headers.get("idempotency-key").map(String::as_str) == Some("reading:dev-0001:1")
        })
        .count();
    assert_eq!(applies, 1, "one upstream apply");
    fleet.note(format!(
        "IoT: one message sent to iot-bff-1 and retried through iot-bff-2: identical {}-byte acks, {applies} upstream apply",
        acks[0].len()
    ));
}

fn position(cursor: &str) -> u64 {
    cursor
        .strip_prefix("n-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a JetStream cursor, got {cursor}"))
}

async fn subscribers_resume_on_another_replica(fleet: &mut Fleet) {
    let token = fleet.sandbox.issuer.mint(&TokenRequest {
        sub: "ops".to_owned(),
        scope: "data:orders:read data:customers:read data:admin".to_owned(),
        tier: "enterprise".to_owned(),
        ..TokenRequest::default()
    });
    let auth = vec![("authorization", format!("Bearer {token}"))];
    let first = format!("127.0.0.1:{}", fleet.mobile[0].port);
    let mut stream = SseClient::open(&first, "/v2/orders/stream", &auth).await;
    assert_eq!(stream.status, 200, "{}", stream.head);
    let seen = stream.events("order", 5).await;
    drop(stream);
    let last = seen.last().and_then(|e| e.id.clone()).expect("a cursor");
    // Events keep coming while the client is away.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut headers = auth.clone();
    headers.push(("last-event-id", last.clone()));
    let second = format!("127.0.0.1:{}", fleet.mobile[1].port);
    let mut resumed = SseClient::open(&second, "/v2/orders/stream", &headers).await;
    assert_eq!(resumed.status, 200, "{}", resumed.head);
    let after = resumed.events("order", 20).await;
    let positions: Vec<u64> = after
        .iter()
        .map(|e| position(e.id.as_deref().expect("an id")))
        .collect();
    let expected: Vec<u64> = (position(&last) + 1..).take(positions.len()).collect();
    assert_eq!(positions, expected, "no gap and no repeat after {last}");
    fleet.note(format!(
        "streams: left mobile-bff-1 at {last}, resumed on mobile-bff-2 with {} consecutive events from n-{}",
        positions.len(),
        expected[0]
    ));
}

async fn a_replica_killed_under_load(fleet: &mut Fleet) {
    let token = fleet.token("cus_00004", "enterprise");
    let url = fleet.balancer.url(Kind::Web);
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let failed_after_down = Arc::new(AtomicU64::new(0));
    let down = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    const WORKERS: u64 = 8;
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (client, token, url) = (fleet.client.clone(), token.clone(), url.clone());
            let (ok, failed, failed_after_down, down, stop) = (
                ok.clone(),
                failed.clone(),
                failed_after_down.clone(),
                down.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let was_down = down.load(Ordering::Relaxed);
                    let answer = client
                        .post(format!("{url}/graphql"))
                        .bearer_auth(&token)
                        .json(&json!({"query": VIEWER}))
                        .send()
                        .await;
                    match answer {
                        Ok(response) if response.status() == 200 => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            if was_down {
                                failed_after_down.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before_kill = ok.load(Ordering::Relaxed);
    let victim = fleet.web[2].name.clone();
    fleet.web[2].kill();
    let killed = Instant::now();
    let mut noticed = None;
    while killed.elapsed() < Duration::from_secs(5) {
        if fleet
            .balancer
            .status(&fleet.client, &victim)
            .await
            .starts_with("DOWN")
        {
            noticed = Some(killed.elapsed());
            down.store(true, Ordering::Relaxed);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let noticed = noticed.expect("haproxy marks the killed replica down");
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("worker");
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    let failed_after_down = failed_after_down.load(Ordering::Relaxed);
    // The requests it had in flight, and any sent over a pooled connection to it before
    // haproxy marked it down, are replayed on another replica (`retry-on empty-response`).
    assert_eq!(
        failed, 0,
        "no request fails: haproxy replays what the killed replica never answered"
    );
    assert_eq!(
        failed_after_down, 0,
        "nothing is routed to it once it is down"
    );
    fleet.note(format!(
        "kill -9 {victim} under load ({WORKERS} concurrent clients, {before_kill} requests before the kill): \
         {ok} answered, none failed, haproxy marked it down after {} ms",
        noticed.as_millis()
    ));
    let config = config(
        Kind::Web,
        &fleet.sandbox,
        &fleet.redis.url(),
        &fleet.nats.url(),
    );
    fleet.web[2].restart_with(&config);
    fleet.web[2].wait_ready(&fleet.client).await;
    fleet.balancer.wait_up(&fleet.client, &[&victim]).await;
}

async fn redis_stopped_and_back(fleet: &mut Fleet) {
    fleet.redis.kill();
    let token = fleet.token("cus_00005", "enterprise");
    let mut answered = 0;
    for _ in 0..10 {
        let (status, body) = fleet
            .graphql(
                &fleet.balancer.url(Kind::Web),
                &token,
                &json!({"query": VIEWER}),
            )
            .await;
        assert_eq!(status, 200, "web answers without Redis: {body}");
        let mobile = fleet
            .client
            .get(format!("{}/v2/orders", fleet.balancer.url(Kind::Mobile)))
            .bearer_auth(&token)
            .send()
            .await
            .expect("answered");
        assert_eq!(mobile.status(), 200, "mobile answers without Redis");
        answered += 2;
    }
    let device = fleet.device_token("dev-0002");
    let message = iot_bff::samples::valid("dev-0002", 1, 3).to_cbor();
    let mut acks = Vec::new();
    for _ in 0..2 {
        let response = fleet
            .client
            .post(format!("{}/v1/readings", fleet.balancer.url(Kind::Iot)))
            .bearer_auth(&device)
            .header("content-type", "application/cbor")
            .body(message.clone())
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 200, "iot answers without Redis");
        acks.push(response.bytes().await.expect("ack"));
    }
    assert_eq!(
        acks[0], acks[1],
        "the inventory service's idempotency key still holds"
    );
    answered += 2;

    fleet.redis.restart();
    let resumed = Instant::now();
    // Each replica's breaker lets Redis be asked again after its pause; wait until every
    // web replica has written a decision there, each for a consumer of its own.
    for (n, replica) in fleet.web.iter().enumerate() {
        let consumer = format!("cus_{:05}", 100 + n);
        let token = fleet.token(&consumer, "pro");
        let key = format!("{{sy:rl:{consumer}}}:tat");
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            fleet
                .graphql(&replica.url(), &token, &json!({"query": VIEWER}))
                .await;
            if fleet
                .redis
                .cli(&["EXISTS", &key])
                .is_some_and(|s| s.trim() == "1")
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} never used Redis again",
                replica.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let back_after = resumed.elapsed();
    let (admitted, refused) = fleet.burst("cus_00020", "pro", 150).await;
    assert_eq!((admitted, refused), (50, 100), "shared limits resume");
    fleet.note(format!(
        "redis stopped: {answered} requests to web, mobile and iot all answered 200 (limits local, acks by idempotency key); \
         redis back: every replica shared again within {:.1} s, burst 50 → {admitted} admitted, {refused} refused",
        back_after.as_secs_f64()
    ));
}

async fn limits_on_a_redis_cluster(fleet: &mut Fleet) {
    let cluster =
        RedisCluster::start("the fleet on a Redis Cluster").expect("redis-server is installed");
    let config = config(Kind::Web, &fleet.sandbox, &cluster.url(), &fleet.nats.url());
    for replica in &mut fleet.web {
        replica.restart_with(&config);
    }
    let names: Vec<String> = fleet.web.iter().map(|r| r.name.clone()).collect();
    for replica in &fleet.web {
        replica.wait_ready(&fleet.client).await;
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    fleet.balancer.wait_up(&fleet.client, &names).await;
    let (admitted, refused) = fleet.burst("cus_00030", "pro", 150).await;
    assert_eq!(
        (admitted, refused),
        (50, 100),
        "burst 50 holds on a Redis Cluster"
    );
    fleet.note(format!(
        "redis cluster (3 masters): 150 concurrent requests over 3 web replicas, burst 50 → {admitted} admitted, {refused} refused"
    ));
}
