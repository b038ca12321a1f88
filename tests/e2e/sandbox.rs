//! The sandbox's own contract: data endpoints, pagination, stats and faults.

use std::collections::HashSet;

use serde_json::{Value, json};
use switchyard_sandbox::data::DEMO_CUSTOMER_ID;
use switchyard_sandbox::{Sandbox, SandboxOptions, Stats};

async fn start() -> (Sandbox, reqwest::Client) {
    let sandbox = Sandbox::start(&SandboxOptions::ephemeral())
        .await
        .expect("sandbox starts");
    (sandbox, reqwest::Client::new())
}

async fn get(http: &reqwest::Client, url: String) -> (u16, Value) {
    let response = http.get(url).send().await.expect("sandbox answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_customers_orders_can_be_walked_page_by_page_without_gaps_or_repeats() {
    let (sandbox, http) = start().await;
    let expected = sandbox.data.orders_of(DEMO_CUSTOMER_ID).len();
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!(
            "{}/orders?customer_id={DEMO_CUSTOMER_ID}&limit=10",
            sandbox.orders.url
        );
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = get(&http, url).await;
        assert_eq!(status, 200);
        for order in page["data"].as_array().expect("data") {
            assert_eq!(order["customer_id"], DEMO_CUSTOMER_ID);
            assert!(
                seen.insert(order["id"].as_str().expect("id").to_owned()),
                "repeated order"
            );
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), expected);
}

#[tokio::test]
async fn bad_batches_cursors_and_limits_are_400_and_unknown_ids_404() {
    let (sandbox, http) = start().await;
    let ids: Vec<String> = (1..=101).map(|n| format!("cus_{n:05}")).collect();
    let (status, _) = get(
        &http,
        format!("{}/customers?ids={}", sandbox.customers.url, ids.join(",")),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = get(&http, format!("{}/orders?cursor=nope", sandbox.orders.url)).await;
    assert_eq!(status, 400);
    let (status, _) = get(&http, format!("{}/orders?limit=101", sandbox.orders.url)).await;
    assert_eq!(status, 400);
    let (status, _) = get(
        &http,
        format!("{}/inventory/SKU-99999", sandbox.inventory.url),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = get(
        &http,
        format!(
            "{}/inventory?skus=SKU-00001,SKU-99999",
            sandbox.inventory.url
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"].as_array().map(Vec::len),
        Some(1),
        "unknown SKUs are omitted"
    );
}

#[tokio::test]
async fn stats_count_calls_per_endpoint_and_reset() {
    let (sandbox, http) = start().await;
    let base = &sandbox.customers.url;
    get(&http, format!("{base}/customers/cus_00001")).await;
    get(&http, format!("{base}/customers/cus_00002")).await;
    get(&http, format!("{base}/customers?ids=cus_00001")).await;
    let (_, stats) = get(&http, format!("{base}/__stats")).await;
    let stats: Stats = serde_json::from_value(stats).expect("stats shape");
    assert_eq!(stats.get("GET /customers/{id}"), 2);
    assert_eq!(stats.get("GET /customers"), 1);
    assert_eq!(stats.total, 3);
    http.delete(format!("{base}/__stats"))
        .send()
        .await
        .expect("reset");
    assert_eq!(sandbox.customers.admin.stats().total, 0);
}

#[tokio::test]
async fn faults_inject_outages_and_errors_and_are_still_counted() {
    let (sandbox, http) = start().await;
    let base = &sandbox.orders.url;
    let put = |faults: Value| http.put(format!("{base}/__faults")).json(&faults).send();
    assert_eq!(
        put(json!({"outage": true})).await.expect("put").status(),
        200
    );
    let (status, _) = get(&http, format!("{base}/orders/ord_000001")).await;
    assert_eq!(status, 503);
    put(json!({"error_rate": 1.0})).await.expect("put");
    let (status, _) = get(&http, format!("{base}/orders/ord_000001")).await;
    assert_eq!(status, 500);
    put(json!({})).await.expect("put");
    let (status, _) = get(&http, format!("{base}/orders/ord_000001")).await;
    assert_eq!(status, 200);
    assert_eq!(sandbox.orders.admin.stats().get("GET /orders/{id}"), 3);
    assert_eq!(
        put(json!({"error_rate": 2.0})).await.expect("put").status(),
        400
    );
    assert_eq!(
        put(json!({"outage": "yes"}))
            .await
            .expect("put")
            .status()
            .as_u16()
            / 100,
        4
    );
}

#[tokio::test]
async fn the_issuer_serves_its_jwks_and_counts_fetches() {
    let (sandbox, http) = start().await;
    let (status, jwks) = get(&http, sandbox.jwks_url()).await;
    assert_eq!(status, 200);
    assert_eq!(jwks["keys"][0]["kid"], "sandbox-es256-1");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private material in the JWKS"
    );
    let (_, stats) = get(&http, format!("{}/__stats", sandbox.issuer_url)).await;
    assert_eq!(stats["jwks_fetches"], 1);
}
