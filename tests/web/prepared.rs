//! The contract of the prepared-operation path: for every document of the corpus, under
//! every upstream fault scenario and every scope set, the web BFF with the path on answers
//! exactly what async-graphql's executor answers (the same JSON, object key order aside
//! and errors compared as a set, whose order GraphQL leaves open) and makes the same
//! upstream calls.
//!
//! Each request is sent twice: the first parses and validates the document (always on
//! async-graphql); the second is the one compared, and with the path on it runs the plan.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use switchyard_tests::{MockUpstreams, TestApp, Token, customer_json, order_json, stock_json};
use web_bff::{WebBff, WebConfig};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::WebApp;

/// The documents the fast path must answer like async-graphql: (name, query, variables).
const CORPUS: &[(&str, &str, &str)] = &[
    (
        "dashboard",
        "{ viewer { name orders(first: 5) { nodes { id status total { formatted } customer { name } items { sku quantity stock { available } } } } } }",
        "{}",
    ),
    (
        "aliases and typename",
        "{ me: viewer { __typename id who: name } mine: orders(first: 2) { __typename list: nodes { key: id } } }",
        "{}",
    ),
    (
        "every scalar",
        "{ viewer { id name email phone tier avatarUrl avatarThumbUrl createdAt } }",
        "{}",
    ),
    (
        "order fields",
        "query($id: ID!) { order(id: $id) { id status itemCount createdAt updatedAt total { minorUnits currency formatted __typename } items { sku quantity unitPrice { formatted } stock { sku name available reserved warehouseId updatedAt } } } }",
        r#"{"id": "o1"}"#,
    ),
    (
        "someone else's order",
        r#"{ order(id: "o3") { id customer { name } } }"#,
        "{}",
    ),
    ("no such order", r#"{ order(id: "nope") { id } }"#, "{}"),
    (
        "someone else's customer",
        r#"{ customer(id: "cus_2") { name } }"#,
        "{}",
    ),
    (
        "own customer by id",
        r#"{ customer(id: "cus_1") { id name orders(first: 1) { pageInfo { hasNextPage endCursor } } } }"#,
        "{}",
    ),
    (
        "fragments",
        "fragment O on Order { id ...I } fragment I on Order { items { sku } } query Q { viewer { ... on Customer { name } orders { nodes { ...O id } } } }",
        "{}",
    ),
    (
        "skip and include",
        "query($yes: Boolean!, $no: Boolean!) { viewer { name @include(if: $no) id @skip(if: $no) orders(first: 2) @include(if: $yes) { nodes { id @skip(if: $yes) status } } } }",
        r#"{"yes": true, "no": false}"#,
    ),
    (
        "fragment conditions",
        "query($no: Boolean!) { viewer { ... @include(if: $no) { name } ...F @skip(if: $no) } } fragment F on Customer { id }",
        r#"{"no": false}"#,
    ),
    (
        "edges and cursors",
        "query($n: Int) { orders(first: $n) { edges { cursor node { id } } pageInfo { endCursor hasNextPage } } }",
        r#"{"n": 3}"#,
    ),
    (
        "status filter and default page",
        "query($s: OrderStatus) { orders(status: $s) { nodes { id status } } }",
        r#"{"s": "SHIPPED"}"#,
    ),
    (
        "page too large",
        "{ orders(first: 101) { nodes { id } } }",
        "{}",
    ),
    (
        "bad cursor",
        r#"{ viewer { orders(after: "nope") { nodes { id } } } }"#,
        "{}",
    ),
    (
        "admin listing",
        r#"{ orders(customerId: "cus_2") { nodes { id customer { id name } } } }"#,
        "{}",
    ),
    (
        "stock",
        r#"{ stock(skus: ["SKU-A", "SKU-C"]) { sku available } }"#,
        "{}",
    ),
    (
        "stock by variable",
        "query($skus: [ID!]!) { stock(skus: $skus) { name } }",
        r#"{"skus": ["SKU-B"]}"#,
    ),
    (
        "nested connections",
        "{ viewer { orders(first: 2) { nodes { customer { orders(first: 1) { nodes { id } } } } } } }",
        "{}",
    ),
    (
        "two roots one failing",
        r#"{ viewer { name } order(id: "o3") { id } }"#,
        "{}",
    ),
    ("masked pii", "{ viewer { email phone } }", "{}"),
];

const SCOPES: &[(&str, &str)] = &[
    (
        "reader",
        "data:orders:read data:customers:read data:inventory:read",
    ),
    ("orders only", "data:orders:read"),
    (
        "admin with pii",
        "data:orders:read data:customers:read data:inventory:read data:admin data:customers:pii",
    ),
];

#[derive(Clone, Copy, Debug)]
enum Scenario {
    Healthy,
    CustomersDown,
    OrdersDown,
    InventoryDown,
    Empty,
}

const SCENARIOS: &[Scenario] = &[
    Scenario::Healthy,
    Scenario::CustomersDown,
    Scenario::InventoryDown,
    Scenario::OrdersDown,
    Scenario::Empty,
];

async fn down(server: &MockServer) {
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(server)
        .await;
}

async fn stage(mocks: &MockUpstreams, scenario: Scenario) {
    for server in [&mocks.customers, &mocks.orders, &mocks.inventory] {
        server.reset().await;
    }
    let skus = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let customers = [customer_json("cus_1"), customer_json("cus_2")];
    let orders = [
        order_json("o1", "cus_1", &skus(&["SKU-A", "SKU-B"])),
        order_json("o2", "cus_1", &skus(&["SKU-C"])),
        order_json("o3", "cus_2", &skus(&["SKU-A"])),
    ];
    let stock = [stock_json("SKU-A", 3), stock_json("SKU-B", 0)];
    match scenario {
        Scenario::Empty => {
            mocks.serve_customers(&[]).await;
            mocks.serve_orders(&[]).await;
            mocks.serve_stock(&[]).await;
        }
        _ => {
            match scenario {
                Scenario::CustomersDown => down(&mocks.customers).await,
                _ => mocks.serve_customers(&customers).await,
            }
            match scenario {
                Scenario::OrdersDown => down(&mocks.orders).await,
                _ => mocks.serve_orders(&orders).await,
            }
            match scenario {
                Scenario::InventoryDown => down(&mocks.inventory).await,
                _ => mocks.serve_stock(&stock).await,
            }
        }
    }
}

/// Calls received by each mock so far, as `service METHOD path?query`.
async fn calls(mocks: &MockUpstreams) -> [Vec<String>; 3] {
    let mut calls: [Vec<String>; 3] = Default::default();
    let servers = [
        ("customers", &mocks.customers),
        ("orders", &mocks.orders),
        ("inventory", &mocks.inventory),
    ];
    for (i, (service, server)) in servers.into_iter().enumerate() {
        for request in server.received_requests().await.unwrap_or_default() {
            let query = request
                .url
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            calls[i].push(format!(
                "{service} {} {}{query}",
                request.method,
                request.url.path()
            ));
        }
    }
    calls
}

/// The calls in `after` that were not in `before`, service by service.
fn made_since(before: &[Vec<String>; 3], after: [Vec<String>; 3]) -> Vec<String> {
    after
        .into_iter()
        .zip(before)
        .flat_map(|(mut after, before)| after.split_off(before.len()))
        .collect()
}

/// The response with its errors sorted by path and message.
fn normalised(mut response: Value) -> Value {
    if let Some(errors) = response.get_mut("errors").and_then(Value::as_array_mut) {
        errors.sort_by_key(|e| format!("{}|{}", e["path"], e["message"]));
    }
    response
}

/// One app with the prepared path `on` or off, its mocks shared with the other.
async fn app(mocks: &MockUpstreams, on: bool) -> WebApp {
    let mut config = WebConfig {
        upstreams: mocks.upstreams_config(),
        auth: mocks.auth_config(),
        ..WebConfig::default()
    };
    config.graphql.prepared_executor = on;
    // What is compared is the executor: nothing whose state depends on timing (a stale
    // entity's age, a breaker's cool-down, a retry budget, a usage plan's bucket) may
    // differ between the two apps, so no entity cache, no breaker, no retries and no usage
    // plans (the corpus is some 1,200 requests per app; on a fast machine they outrun the
    // pro tier's 100/s with its burst of 500, and which ones get a 429 is timing).
    config.ratelimit.enabled = false;
    for service in [
        &mut config.upstreams.customers,
        &mut config.upstreams.orders,
        &mut config.upstreams.inventory,
    ] {
        service.cache.ttl_ms = 0;
        service.cache.stale_for_ms = 0;
        service.breaker.consecutive_failures = u32::MAX;
        service.breaker.min_requests = u32::MAX;
        service.retry.enabled = false;
    }
    WebApp(TestApp::<WebBff>::with_config(&config, MockUpstreams::start().await).await)
}

#[tokio::test]
async fn the_prepared_path_answers_the_corpus_exactly_as_async_graphql_does() {
    let mocks = MockUpstreams::start().await;
    let reference = app(&mocks, false).await;
    let prepared = app(&mocks, true).await;
    let mut compared = 0;
    let mut mismatches = Vec::new();
    for &scenario in SCENARIOS {
        for &(scope_name, scope) in SCOPES {
            let token = Token::customer("cus_1").scope(scope).sign(&mocks.rsa);
            for &(name, query, variables) in CORPUS {
                let variables: Value = serde_json::from_str(variables).expect("variables");
                let body = json!({"query": query, "variables": variables});
                let mut answers = BTreeMap::new();
                for (label, app) in [("async-graphql", &reference), ("prepared", &prepared)] {
                    stage(&mocks, scenario).await;
                    app.post(Some(&token), &body).await;
                    let before = calls(&mocks).await;
                    let response = app.post(Some(&token), &body).await;
                    let made = made_since(&before, calls(&mocks).await);
                    answers.insert(label, (response.status, normalised(response.json), made));
                }
                let (a, b) = (&answers["async-graphql"], &answers["prepared"]);
                compared += 1;
                if a != b {
                    mismatches.push(format!(
                        "{name} / {scenario:?} / {scope_name}:\n  async-graphql: {} {} {:?}\n  prepared:      {} {} {:?}",
                        a.0, a.1, a.2, b.0, b.1, b.2
                    ));
                }
            }
        }
    }
    // Every request of the app with the path on ran on it but the first of each document
    // (which parses and validates it), and none of the other's.
    assert_eq!(
        prepared.state.prepared_runs(),
        (2 * compared - CORPUS.len()) as u64,
        "every document of the corpus is planned"
    );
    assert_eq!(reference.state.prepared_runs(), 0);
    assert!(
        mismatches.is_empty(),
        "{} of {compared} answers differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
