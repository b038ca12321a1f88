//! Plans decided in the process: bursts, quotas and weights, and the 429 of each client
//! format, costing the upstreams nothing.

use mobile_bff::MobileBff;
use serde_json::json;
use switchyard_core::domain::Tier;
use switchyard_core::ratelimit::{Period, Quota};
use switchyard_tests::{TestApp, customer_json, graphql_post};

use crate::{bearer, get, remaining, tight};

#[tokio::test]
async fn exactly_the_burst_passes_then_a_problem_429_with_retry_after_costs_nothing_upstream() {
    let app = TestApp::<MobileBff>::spawn_with(|config| config.ratelimit = tight(3)).await;
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    app.mocks.serve_orders(&[]).await;
    let token = bearer(&app.mocks, "cus_1", "free");
    for expected in [2, 1, 0] {
        let response = app.send(get("/v2/dashboard", &token)).await;
        assert_eq!(response.status, 200, "{}", response.json);
        assert_eq!(remaining(&response), expected);
        assert_eq!(
            response.header("ratelimit-policy"),
            Some("\"burst\";q=3;w=3000")
        );
    }
    let calls = app.upstream_calls().await;
    let refused = app.send(get("/v2/dashboard", &token)).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json["code"], "RATE_LIMITED");
    assert_eq!(
        refused.json["type"],
        "https://iana.org/assignments/http-problem-types#quota-exceeded"
    );
    assert_eq!(refused.json["instance"], "/v2/dashboard");
    assert_eq!(refused.header("retry-after"), Some("1000"));
    assert_eq!(refused.header("ratelimit"), Some("\"burst\";r=0;t=1000"));
    assert_eq!(
        app.upstream_calls().await,
        calls,
        "a refused request costs nothing"
    );
    // Another consumer has a budget of its own.
    let other = bearer(&app.mocks, "cus_2", "free");
    assert_eq!(app.send(get("/v2/orders", &other)).await.status, 200);
}

#[tokio::test]
async fn an_exhausted_month_quota_is_refused_and_says_when_it_resets() {
    let app = TestApp::<MobileBff>::spawn_with(|config| {
        let mut plans = tight(100);
        for plan in plans.tiers.values_mut() {
            plan.quotas = vec![Quota {
                limit: 2,
                period: Period::Month,
            }];
        }
        config.ratelimit = plans;
    })
    .await;
    app.mocks.serve_orders(&[]).await;
    let token = bearer(&app.mocks, "cus_1", "pro");
    for _ in 0..2 {
        assert_eq!(app.send(get("/v2/orders", &token)).await.status, 200);
    }
    let refused = app.send(get("/v2/orders", &token)).await;
    assert_eq!(refused.status, 429);
    let detail = refused.json["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with("month quota of 2 units exhausted; it resets at ")
            && detail.ends_with("-01T00:00:00Z"),
        "{detail}"
    );
    let retry: u64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(retry > 0 && retry <= 31 * 86_400, "{retry}");
    assert_eq!(
        refused.header("ratelimit"),
        Some(format!("\"month\";r=0;t={retry}").as_str())
    );
}

#[tokio::test]
async fn a_per_consumer_override_beats_the_token_tier() {
    let app = TestApp::<MobileBff>::spawn_with(|config| {
        let mut plans = tight(1);
        plans.tiers.get_mut(&Tier::Pro).expect("pro").burst = 5;
        plans.consumers.insert(
            "cus_vip".into(),
            switchyard_core::ratelimit::ConsumerOverride { tier: Tier::Pro },
        );
        config.ratelimit = plans;
    })
    .await;
    app.mocks.serve_orders(&[]).await;
    let vip = bearer(&app.mocks, "cus_vip", "free");
    let response = app.send(get("/v2/orders", &vip)).await;
    assert_eq!(remaining(&response), 4, "the pro plan's burst of 5");
}

#[tokio::test]
async fn graphql_operations_pay_their_complexity_and_a_refusal_is_a_graphql_429() {
    let app = TestApp::<web_bff::WebBff>::spawn_with(|config| {
        config.ratelimit = tight(10);
        config.graphql.cost_per_unit = 1;
    })
    .await;
    app.mocks
        .serve_customers(&[customer_json("cus_1"), customer_json("cus_2")])
        .await;
    let token = bearer(&app.mocks, "cus_1", "pro");
    let jwt = token.strip_prefix("Bearer ").expect("bearer");
    // `{ viewer { id name } }` has complexity 3: 3 units each at cost_per_unit 1.
    let query = json!({ "query": "{ viewer { id name } }" });
    let first = app.send(graphql_post(Some(jwt), &query)).await;
    assert_eq!(first.status, 200, "{}", first.json);
    assert_eq!(remaining(&first), 7);
    let second = app.send(graphql_post(Some(jwt), &query)).await;
    assert_eq!(remaining(&second), 4);
    let third = app.send(graphql_post(Some(jwt), &query)).await;
    assert_eq!(remaining(&third), 1);
    let customers_calls = app
        .mocks
        .customers
        .received_requests()
        .await
        .map(|r| r.len());
    let refused = app.send(graphql_post(Some(jwt), &query)).await;
    assert_eq!(refused.status, 429, "{}", refused.json);
    assert_eq!(refused.error_codes(), ["RATE_LIMITED"]);
    assert!(refused.json.get("data").is_none(), "{}", refused.json);
    assert_eq!(refused.header("retry-after"), Some("2000"));
    assert_eq!(
        app.mocks
            .customers
            .received_requests()
            .await
            .map(|r| r.len()),
        customers_calls,
        "the refused operation never executed"
    );
    // A batch pays the sum, operation by operation: with 10 units, three 3-unit
    // operations run and the fourth is refused, in a 200 that carries the others' data.
    let other = bearer(&app.mocks, "cus_2", "pro");
    let jwt = other.strip_prefix("Bearer ").expect("bearer");
    let batch = json!([query, query, query, query]);
    let partial = app.send(graphql_post(Some(jwt), &batch)).await;
    assert_eq!(partial.status, 200, "{}", partial.json);
    for n in 0..3 {
        assert!(partial.json[n]["errors"].is_null(), "{}", partial.json);
    }
    assert_eq!(
        partial.json[3]["errors"][0]["extensions"]["code"],
        "RATE_LIMITED"
    );
}

#[tokio::test]
async fn a_device_over_its_plan_gets_a_cbor_429_with_retry_after() {
    let app = TestApp::<iot_bff::IotBff>::spawn_with(|config| config.ratelimit = tight(1)).await;
    let device = switchyard_tests::Token {
        scope: "data:inventory:write".into(),
        ..switchyard_tests::Token::customer("dev-1")
    }
    .sign(&app.mocks.ec);
    let config = |token: &str| {
        http::Request::get("/v1/config")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .expect("request")
    };
    assert_eq!(app.send(config(&device)).await.status, 200);
    let refused = app.send(config(&device)).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("content-type"), Some("application/cbor"));
    assert_eq!(refused.header("retry-after"), Some("1000"));
    let body: ciborium::Value = ciborium::from_reader(refused.body.as_slice()).expect("CBOR");
    let code = body
        .as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_integer() == Some(1.into())))
        .and_then(|(_, v)| v.as_text().map(str::to_owned));
    assert_eq!(code.as_deref(), Some("RATE_LIMITED"));
}

#[tokio::test]
async fn failed_authentication_and_probes_leave_a_consumers_budget_untouched() {
    let app = TestApp::<MobileBff>::spawn_with(|config| config.ratelimit = tight(1)).await;
    app.mocks.serve_orders(&[]).await;
    for _ in 0..5 {
        assert_eq!(app.send(get("/v2/orders", "Bearer nope")).await.status, 401);
        let probe = http::Request::get("/healthz")
            .body(axum::body::Body::empty())
            .expect("request");
        assert_eq!(app.send(probe).await.status, 200);
    }
    let token = bearer(&app.mocks, "cus_1", "pro");
    assert_eq!(app.send(get("/v2/orders", &token)).await.status, 200);
}
