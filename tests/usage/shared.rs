//! Plans shared through a real Redis: one budget per consumer across BFFs and replicas,
//! atomic under concurrency, on Redis Cluster too, and degrading (never failing) while
//! Redis is down.

use std::time::Duration;

use futures_util::future::join_all;
use mobile_bff::MobileBff;
use switchyard_core::ratelimit::OnStoreError;
use switchyard_tests::{MockUpstreams, RedisCluster, RedisServer, TestApp, customer_json, send};
use web_bff::WebBff;

use crate::{bearer, get, tight};

/// A mobile and a web BFF sharing `redis_url`, both limited to `burst` units, against the
/// same mocks.
async fn two_bffs(redis_url: &str, burst: u32) -> (TestApp<MobileBff>, TestApp<WebBff>) {
    let mobile = TestApp::<MobileBff>::spawn_with(|config| {
        config.ratelimit = tight(burst);
        config.redis.url = Some(redis_url.to_owned());
        config.redis.timeout_ms = 500;
    })
    .await;
    mobile.mocks.serve_orders(&[]).await;
    mobile
        .mocks
        .serve_customers(&[customer_json("cus_1")])
        .await;
    let mocks = MockUpstreams::start().await;
    mocks.serve_customers(&[customer_json("cus_1")]).await;
    let mut config = web_bff::WebConfig {
        upstreams: mocks.upstreams_config(),
        auth: mobile.mocks.auth_config(),
        ..web_bff::WebConfig::default()
    };
    config.ratelimit = tight(burst);
    config.redis.url = Some(redis_url.to_owned());
    config.redis.timeout_ms = 500;
    config.graphql.cost_per_unit = 1_000;
    let web = TestApp::<WebBff>::with_config(&config, mocks).await;
    (mobile, web)
}

fn graphql(token: &str) -> http::Request<axum::body::Body> {
    let jwt = token.strip_prefix("Bearer ").expect("bearer");
    switchyard_tests::graphql_post(
        Some(jwt),
        &serde_json::json!({"query": "{ viewer { name } }"}),
    )
}

#[tokio::test]
async fn one_consumer_calling_two_bffs_draws_on_one_budget_and_another_consumer_on_its_own() {
    let Some(redis) = RedisServer::start("shared budget") else {
        return;
    };
    let (mobile, web) = two_bffs(&redis.url(), 5).await;
    let token = bearer(&mobile.mocks, "cus_1", "pro");
    for _ in 0..3 {
        assert_eq!(mobile.send(get("/v2/orders", &token)).await.status, 200);
    }
    for _ in 0..2 {
        let response = web.send(graphql(&token)).await;
        assert_eq!(response.status, 200, "{}", response.json);
    }
    let refused = web.send(graphql(&token)).await;
    assert_eq!(refused.status, 429, "{}", refused.json);
    assert_eq!(mobile.send(get("/v2/orders", &token)).await.status, 429);
    let other = bearer(&mobile.mocks, "cus_2", "pro");
    assert_eq!(mobile.send(get("/v2/orders", &other)).await.status, 200);
    // The counters are in Redis, under the consumer's hash tag.
    let keys = redis.cli(&["KEYS", "{sy:rl:cus_1}*"]).expect("redis-cli");
    assert!(keys.contains("{sy:rl:cus_1}:tat"), "{keys}");
}

#[tokio::test]
async fn two_hundred_concurrent_requests_on_two_bffs_against_a_burst_of_fifty_admit_fifty() {
    let Some(redis) = RedisServer::start("concurrent decisions") else {
        return;
    };
    let (mobile, web) = two_bffs(&redis.url(), 50).await;
    let token = bearer(&mobile.mocks, "cus_1", "pro");
    let requests = (0..200).map(|n| {
        let token = token.clone();
        let (mobile, web) = (mobile.router.clone(), web.router.clone());
        async move {
            if n % 2 == 0 {
                send(&mobile, get("/v2/orders", &token))
                    .await
                    .status
                    .as_u16()
            } else {
                send(&web, graphql(&token)).await.status.as_u16()
            }
        }
    });
    let statuses = join_all(requests).await;
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((admitted, refused), (50, 150), "{statuses:?}");
}

#[tokio::test]
async fn while_redis_is_down_requests_are_decided_locally_and_shared_limits_resume_after() {
    let Some(mut redis) = RedisServer::start("redis outage") else {
        return;
    };
    let app = TestApp::<MobileBff>::spawn_with(|config| {
        config.ratelimit = tight(3);
        config.ratelimit.on_store_error = OnStoreError::Local;
        config.redis.url = Some(redis.url());
        config.redis.timeout_ms = 200;
    })
    .await;
    app.mocks.serve_orders(&[]).await;
    let token = bearer(&app.mocks, "cus_1", "pro");
    assert_eq!(app.send(get("/v2/orders", &token)).await.status, 200);

    redis.kill();
    // Local counters know nothing of the shared one: three more pass, then the local
    // burst refuses. Never a 5xx.
    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(app.send(get("/v2/orders", &token)).await.status.as_u16());
        }
        statuses
    };
    assert_eq!(statuses, [200, 200, 200, 429]);

    redis.restart();
    // The breaker waits at least 250 ms before asking Redis again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let other = bearer(&app.mocks, "cus_9", "pro");
    let mut resumed = false;
    for _ in 0..20 {
        if app.send(get("/v2/orders", &other)).await.status == 200
            && redis
                .cli(&["EXISTS", "{sy:rl:cus_9}:tat"])
                .is_some_and(|n| n.trim() == "1")
        {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(resumed, "decisions went back to Redis");
}

#[tokio::test]
async fn with_on_store_error_deny_or_allow_an_outage_is_a_429_or_unlimited_never_a_5xx() {
    for (policy, expected) in [(OnStoreError::Deny, 429), (OnStoreError::Allow, 200)] {
        let app = TestApp::<MobileBff>::spawn_with(|config| {
            config.ratelimit = tight(1);
            config.ratelimit.on_store_error = policy;
            // Nothing listens on port 1.
            config.redis.url = Some("redis://127.0.0.1:1".to_owned());
        })
        .await;
        app.mocks.serve_orders(&[]).await;
        let token = bearer(&app.mocks, "cus_1", "pro");
        for _ in 0..3 {
            let response = app.send(get("/v2/orders", &token)).await;
            assert_eq!(response.status, expected, "{policy:?}: {}", response.json);
        }
    }
}

#[tokio::test]
async fn plans_are_shared_through_a_redis_cluster() {
    let Some(cluster) = RedisCluster::start("redis cluster") else {
        return;
    };
    let (mobile, web) = two_bffs(&cluster.url(), 4).await;
    let token = bearer(&mobile.mocks, "cus_1", "pro");
    for _ in 0..2 {
        assert_eq!(mobile.send(get("/v2/orders", &token)).await.status, 200);
        assert_eq!(web.send(graphql(&token)).await.status, 200);
    }
    assert_eq!(mobile.send(get("/v2/orders", &token)).await.status, 429);
    assert_eq!(web.send(graphql(&token)).await.status, 429);
}

#[tokio::test]
async fn through_redis_the_burst_counts_down_and_a_month_quota_refuses_with_its_reset() {
    let Some(redis) = RedisServer::start("redis burst and quota") else {
        return;
    };
    let app = TestApp::<MobileBff>::spawn_with(|config| {
        let mut plans = tight(3);
        plans
            .tiers
            .get_mut(&switchyard_core::domain::Tier::Free)
            .expect("free")
            .quotas = vec![switchyard_core::ratelimit::Quota {
            limit: 2,
            period: switchyard_core::ratelimit::Period::Month,
        }];
        config.ratelimit = plans;
        config.redis.url = Some(redis.url());
        config.redis.timeout_ms = 500;
    })
    .await;
    app.mocks.serve_orders(&[]).await;
    let pro = bearer(&app.mocks, "cus_1", "pro");
    for expected in [2, 1, 0] {
        let response = app.send(get("/v2/orders", &pro)).await;
        assert_eq!(response.status, 200);
        assert_eq!(crate::remaining(&response), expected);
    }
    let refused = app.send(get("/v2/orders", &pro)).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("1000"));
    assert_eq!(refused.header("ratelimit"), Some("\"burst\";r=0;t=1000"));

    let free = bearer(&app.mocks, "cus_2", "free");
    for _ in 0..2 {
        assert_eq!(app.send(get("/v2/orders", &free)).await.status, 200);
    }
    let over_quota = app.send(get("/v2/orders", &free)).await;
    assert_eq!(over_quota.status, 429);
    let detail = over_quota.json["detail"].as_str().expect("detail");
    assert!(
        detail.contains("month quota of 2 units exhausted; it resets at"),
        "{detail}"
    );
    let month = redis
        .cli(&["KEYS", "{sy:rl:cus_2}:q:month:*"])
        .expect("redis-cli");
    assert!(!month.trim().is_empty(), "the quota counter lives in Redis");
    let ttl = redis
        .cli(&["PTTL", month.lines().next().expect("a key").trim()])
        .and_then(|ttl| ttl.trim().parse::<i64>().ok())
        .expect("a TTL");
    assert!(
        ttl > 0 && ttl <= 32 * 86_400_000,
        "expires after its window: {ttl}"
    );
}
