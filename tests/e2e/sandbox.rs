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

/// Orders the demo customer has that can still advance, and one of another customer.
fn advanceable(sandbox: &Sandbox, customer: &str) -> Vec<String> {
    use switchyard_core::domain::OrderStatus;
    sandbox
        .data
        .orders_of(customer)
        .iter()
        .map(|&i| &sandbox.data.orders[i])
        .filter(|o| matches!(o.status, OrderStatus::Pending | OrderStatus::Paid))
        .map(|o| o.id.clone())
        .collect()
}

/// An SSE stream read over a raw socket, so that what the service sends is seen as it
/// is sent.
struct EventStream(tokio::net::TcpStream, String);

impl EventStream {
    async fn open(base: &str, path_and_query: &str, last_event_id: Option<u64>) -> Self {
        use tokio::io::AsyncWriteExt as _;
        let addr = base.strip_prefix("http://").expect("http URL");
        let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let resume = last_event_id.map_or(String::new(), |id| format!("last-event-id: {id}\r\n"));
        let head = format!(
            "GET {path_and_query} HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n{resume}\r\n"
        );
        socket.write_all(head.as_bytes()).await.expect("write");
        Self(socket, String::new())
    }

    /// The next `count` `event: order` payloads.
    async fn orders(&mut self, count: usize) -> Vec<Value> {
        use tokio::io::AsyncReadExt as _;
        let mut events = Vec::new();
        let mut buffer = [0u8; 4096];
        while events.len() < count {
            while let Some(end) = self.1.find("\n\n") {
                let block: String = self.1.drain(..end + 2).collect();
                if block.lines().any(|l| l == "event: order") {
                    let data = block
                        .lines()
                        .find_map(|l| l.strip_prefix("data: "))
                        .expect("a data line");
                    events.push(serde_json::from_str(data).expect("JSON event"));
                }
            }
            if events.len() == count {
                break;
            }
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(5), self.0.read(&mut buffer))
                    .await
                    .unwrap_or_else(|_| panic!("an event within 5 s; so far: {:?}", self.1))
                    .expect("read");
            assert!(read > 0, "the stream ended");
            self.1.push_str(&String::from_utf8_lossy(&buffer[..read]));
        }
        events
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advanced_orders_stream_as_events_and_a_reconnect_replays_exactly_what_was_missed() {
    let (sandbox, http) = start().await;
    let orders_url = &sandbox.orders.url;
    // A customer with two orders that can advance twice, and another with one.
    let customers: Vec<String> = sandbox
        .data
        .customers
        .iter()
        .map(|c| c.id.clone())
        .collect();
    let me = customers
        .iter()
        .find(|c| advanceable(&sandbox, c).len() >= 2)
        .expect("a customer with two pending or paid orders")
        .clone();
    let mine = advanceable(&sandbox, &me);
    let theirs = customers
        .iter()
        .filter(|c| **c != me)
        .map(|c| advanceable(&sandbox, c))
        .find(|orders| !orders.is_empty())
        .expect("another customer with an open order");

    let path = format!("/orders/events?customer_id={me}");
    let mut stream = EventStream::open(orders_url, &path, None).await;

    let advance = |id: String| {
        let http = http.clone();
        let url = format!("{orders_url}/orders/{id}/advance");
        async move {
            let response = http.post(url).send().await.expect("advance");
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.expect("the event")
        }
    };
    if let Some(id) = theirs.first() {
        advance(id.clone()).await; // another customer's: never on this stream
    }
    let first = advance(mine[0].clone()).await;
    let live = stream.orders(1).await;
    assert_eq!(live[0], first);
    assert_eq!(live[0]["customer_id"], me.as_str());
    assert!(live[0]["previous_status"].as_str().is_some());
    // The order itself now says so.
    let (_, order) = get(&http, format!("{orders_url}/orders/{}", mine[0])).await;
    assert_eq!(order["status"], first["status"]);
    drop(stream);

    // Missed while away: three more of the customer's, one of another's.
    let mut missed = Vec::new();
    for id in [&mine[1], &mine[0], &mine[1]] {
        missed.push(advance(id.clone()).await);
    }
    if let Some(id) = theirs.first() {
        let _ = http
            .post(format!("{orders_url}/orders/{id}/advance"))
            .send()
            .await;
    }
    let mut resumed = EventStream::open(orders_url, &path, first["event_id"].as_u64()).await;
    let replayed = resumed.orders(3).await;
    assert_eq!(replayed, missed, "exactly the missed events, in order");

    // Orders that cannot advance any more say why.
    let response = http
        .post(format!("{orders_url}/orders/no-such-order/advance"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 404);
    for _ in 0..3 {
        let _ = http
            .post(format!("{orders_url}/orders/{}/advance", mine[0]))
            .send()
            .await;
    }
    let response = http
        .post(format!("{orders_url}/orders/{}/advance", mine[0]))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 409);
}
