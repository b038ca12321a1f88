//! The mobile BFF over a real socket against the sandbox, as the README runs it.

use std::collections::HashSet;

use serde_json::Value;
use switchyard_sandbox::data::DEMO_CUSTOMER_ID;
use switchyard_sandbox::{Sandbox, SandboxOptions, TokenRequest};

struct MobileFleet {
    sandbox: Sandbox,
    base: String,
    http: reqwest::Client,
    token: String,
}

async fn start() -> MobileFleet {
    let sandbox = Sandbox::start(&SandboxOptions::ephemeral())
        .await
        .expect("sandbox starts");
    let addr = sandbox
        .start_bff::<mobile_bff::MobileBff>(
            Default::default(),
            "127.0.0.1:0".parse().expect("address"),
        )
        .await
        .expect("the BFF starts");
    let base = format!("http://{addr}");
    let token = sandbox.issuer.mint(&TokenRequest::default());
    MobileFleet {
        sandbox,
        base,
        http: reqwest::Client::new(),
        token,
    }
}

impl MobileFleet {
    async fn get(&self, path: &str) -> (u16, Value, usize) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("mobile-bff answers");
        let status = response.status().as_u16();
        let body = response.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&body).unwrap_or(Value::Null),
            body.len(),
        )
    }
}

#[tokio::test]
async fn the_v2_dashboard_costs_one_customers_and_one_orders_call_and_fits_the_budget() {
    let fleet = start().await;
    let (status, body, bytes) = fleet.get("/v2/dashboard").await;
    assert_eq!(status, 200, "{body}");
    let data = &fleet.sandbox.data;
    let demo = data.customer(DEMO_CUSTOMER_ID).expect("demo customer");
    assert_eq!(body["user"]["name"], demo.name.as_str());
    assert_eq!(body["user"]["avatar"], demo.avatar_thumb_url.as_str());
    let recent = body["recentOrders"].as_array().expect("recent orders");
    let expected = &data.orders_of(DEMO_CUSTOMER_ID)[..5];
    for (row, &index) in recent.iter().zip(expected) {
        let order = &data.orders[index];
        assert_eq!(row["id"], order.id.as_str());
        assert_eq!(row["total"], order.total().formatted().as_str());
        assert_eq!(row["itemCount"], order.item_count());
    }
    assert!(bytes <= 2048, "{bytes} bytes");
    let calls = (
        fleet.sandbox.customers.admin.stats().total,
        fleet.sandbox.orders.admin.stats().total,
        fleet.sandbox.inventory.admin.stats().total,
    );
    assert_eq!(calls, (1, 1, 0), "customers, orders, inventory calls");
}

#[tokio::test]
async fn walking_v2_cursors_visits_every_order_once() {
    let fleet = start().await;
    let expected = fleet.sandbox.data.orders_of(DEMO_CUSTOMER_ID).len();
    let mut seen = HashSet::new();
    let mut path = "/v2/orders?limit=17".to_owned();
    loop {
        let (status, page, _) = fleet.get(&path).await;
        assert_eq!(status, 200, "{page}");
        for row in page["data"].as_array().expect("data") {
            assert!(seen.insert(row["id"].as_str().expect("id").to_owned()));
        }
        match page["pagination"]["cursor"].as_str() {
            Some(cursor) => path = format!("/v2/orders?limit=17&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), expected);
}

/// The sandbox's `/__requests` shows what the BFF sent: the request id the client chose,
/// the principal as `x-consumer-id` (never the client's), and the deadline.
#[tokio::test]
async fn upstreams_see_the_request_id_and_the_principal_never_what_the_client_claims() {
    let fleet = start().await;
    let response = fleet
        .http
        .get(format!("{}/v2/dashboard", fleet.base))
        .bearer_auth(&fleet.token)
        .header("x-request-id", "e2e-trace-1")
        .header(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )
        .header("x-consumer-id", "someone-else")
        .header("x-internal-user", "root")
        .send()
        .await
        .expect("mobile-bff answers");
    assert_eq!(response.status(), 200);
    let received: Value = fleet
        .http
        .get(format!("{}/__requests?limit=5", fleet.sandbox.orders.url))
        .send()
        .await
        .expect("the orders service answers")
        .json()
        .await
        .expect("JSON");
    let ours: Vec<&Value> = received
        .as_array()
        .expect("a list")
        .iter()
        .filter(|r| r["headers"]["x-request-id"] == "e2e-trace-1")
        .collect();
    assert_eq!(ours.len(), 1, "{received}");
    let headers = &ours[0]["headers"];
    assert_eq!(headers["x-consumer-id"], DEMO_CUSTOMER_ID, "{headers}");
    assert!(
        headers["x-switchyard-deadline-ms"].as_str().is_some(),
        "{headers}"
    );
    assert!(
        ours[0]["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/orders?"))
    );
    assert!(headers.get("x-internal-user").is_none());
    assert!(
        headers["traceparent"]
            .as_str()
            .is_some_and(|t| t.starts_with("00-0af7651916cd43dd8448eb211c80319c-")),
        "{headers}"
    );
}
