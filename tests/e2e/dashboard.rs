//! The README's promise: the dashboard query on the sandbox, one upstream call per service.

use serde_json::{Value, json};
use switchyard_sandbox::data::DEMO_CUSTOMER_ID;
use switchyard_sandbox::{Faults, Sandbox, SandboxOptions, TokenRequest};

/// The sandbox plus a web BFF on an ephemeral port.
pub(crate) struct Fleet {
    pub(crate) sandbox: Sandbox,
    pub(crate) web_url: String,
    pub(crate) http: reqwest::Client,
}

pub(crate) async fn start_fleet() -> Fleet {
    let sandbox = Sandbox::start(&SandboxOptions::ephemeral())
        .await
        .expect("sandbox starts");
    let addr = sandbox
        .start_bff::<web_bff::WebBff>(Default::default(), "127.0.0.1:0".parse().expect("address"))
        .await
        .expect("the BFF starts");
    let web_url = format!("http://{addr}/graphql");
    Fleet {
        sandbox,
        web_url,
        http: reqwest::Client::new(),
    }
}

impl Fleet {
    pub(crate) async fn graphql(&self, token: &str, query: &str) -> Value {
        self.http
            .post(&self.web_url)
            .bearer_auth(token)
            .json(&json!({ "query": query }))
            .send()
            .await
            .expect("web-bff answers")
            .json()
            .await
            .expect("JSON body")
    }

    pub(crate) async fn reset_stats(&self) {
        for service in [
            &self.sandbox.customers,
            &self.sandbox.orders,
            &self.sandbox.inventory,
        ] {
            self.http
                .delete(format!("{}/__stats", service.url))
                .send()
                .await
                .expect("stats reset");
        }
    }
}

const DASHBOARD: &str = "{ viewer { name orders(first: 5) { nodes { id status total { formatted } items { sku quantity stock { name available } } } } } }";

#[tokio::test]
async fn the_dashboard_query_aggregates_sandbox_data_with_one_call_per_service() {
    let fleet = start_fleet().await;
    let token = fleet.sandbox.issuer.mint(&TokenRequest::default());
    fleet.reset_stats().await;

    let response = fleet.graphql(&token, DASHBOARD).await;
    assert!(response.get("errors").is_none(), "{response}");

    let data = &fleet.sandbox.data;
    let viewer = &response["data"]["viewer"];
    let demo = data
        .customer(DEMO_CUSTOMER_ID)
        .expect("demo customer exists");
    assert_eq!(viewer["name"], demo.name.as_str());
    let nodes = viewer["orders"]["nodes"].as_array().expect("orders");
    assert_eq!(nodes.len(), 5);
    let expected: Vec<_> = data.orders_of(DEMO_CUSTOMER_ID)[..5]
        .iter()
        .map(|&i| &data.orders[i])
        .collect();
    for (node, order) in nodes.iter().zip(&expected) {
        assert_eq!(node["id"], order.id.as_str());
        assert_eq!(
            node["total"]["formatted"],
            order.total().formatted().as_str()
        );
        for (item, expected_item) in node["items"]
            .as_array()
            .expect("items")
            .iter()
            .zip(&order.items)
        {
            let level = data.stock_level(&expected_item.sku).expect("known SKU");
            assert_eq!(item["stock"]["available"], level.available);
            assert_eq!(item["stock"]["name"], level.name.as_str());
        }
    }

    // The whole aggregation cost exactly one call per upstream service.
    for (service, endpoint) in [
        (&fleet.sandbox.customers, "GET /customers"),
        (&fleet.sandbox.orders, "GET /orders"),
        (&fleet.sandbox.inventory, "GET /inventory"),
    ] {
        let stats = service.admin.stats();
        assert_eq!(stats.get(endpoint), 1, "{endpoint}: {stats:?}");
        assert_eq!(stats.total, 1, "{endpoint}: {stats:?}");
    }
}

#[tokio::test]
async fn inventory_down_still_serves_orders_with_stock_marked_unavailable() {
    let fleet = start_fleet().await;
    let token = fleet.sandbox.issuer.mint(&TokenRequest::default());
    fleet.sandbox.inventory.admin.set_faults(Faults {
        outage: true,
        ..Faults::default()
    });
    let response = fleet.graphql(&token, DASHBOARD).await;
    let nodes = response["data"]["viewer"]["orders"]["nodes"]
        .as_array()
        .expect("orders served");
    assert_eq!(nodes.len(), 5);
    assert_eq!(
        nodes[0]["items"][0].get("stock"),
        Some(&Value::Null),
        "present as null"
    );
    let errors = response["errors"].as_array().expect("errors");
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .all(|e| e["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
                && e["extensions"]["service"] == "inventory")
    );
    // One batch call, retried once (a 503 is transient) within the retry budget.
    assert_eq!(
        fleet.sandbox.inventory.admin.stats().get("GET /inventory"),
        2
    );
}
