//! One upstream call per entity type per resolver level, however many entities a query lists.

use serde_json::{Value, json};
use switchyard_tests::{Token, customer_json, order_json, stock_json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use crate::spawn_app;

fn sku(order: usize, item: usize) -> String {
    format!("SKU-{order:02}-{item}")
}

#[tokio::test]
async fn listing_20_orders_with_60_items_makes_one_call_per_entity_type() {
    let app = spawn_app().await;
    // 20 orders of 5 customers, 3 distinct items each: 60 SKUs.
    let orders: Vec<Value> = (0..20)
        .map(|o| {
            let skus: Vec<String> = (0..3).map(|i| sku(o, i)).collect();
            order_json(&format!("ord_{o:02}"), &format!("cus_{}", o % 5), &skus)
        })
        .collect();
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param("limit", "20"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"data": orders, "next_cursor": "ord_19"})),
        )
        .expect(1)
        .mount(&app.mocks.orders)
        .await;
    let customers: Vec<Value> = (0..5).map(|c| customer_json(&format!("cus_{c}"))).collect();
    Mock::given(method("GET"))
        .and(path("/customers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": customers})))
        .expect(1)
        .mount(&app.mocks.customers)
        .await;
    let stock: Vec<Value> = (0..20)
        .flat_map(|o| (0..3).map(move |i| stock_json(&sku(o, i), (o * 3 + i) as i64)))
        .collect();
    Mock::given(method("GET"))
        .and(path("/inventory"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": stock})))
        .expect(1)
        .mount(&app.mocks.inventory)
        .await;

    let admin = Token::customer("ops")
        .scope("data:orders:read data:customers:read data:inventory:read data:admin");
    let response = app
        .query(
            Some(&admin.sign(&app.mocks.rsa)),
            "{ orders(first: 20) { pageInfo { hasNextPage } nodes { id customer { id name } items { sku stock { sku available } } } } }",
        )
        .await;

    assert_eq!(response.status, 200, "{}", response.json);
    assert!(response.json.get("errors").is_none(), "{}", response.json);
    let nodes = response.json["data"]["orders"]["nodes"]
        .as_array()
        .expect("nodes");
    assert_eq!(nodes.len(), 20);
    assert_eq!(
        response.json["data"]["orders"]["pageInfo"]["hasNextPage"],
        true
    );
    for (o, node) in nodes.iter().enumerate() {
        let customer_id = format!("cus_{}", o % 5);
        assert_eq!(node["customer"]["id"], customer_id);
        assert_eq!(node["customer"]["name"], format!("Name of {customer_id}"));
        let items = node["items"].as_array().expect("items");
        assert_eq!(items.len(), 3);
        for (i, item) in items.iter().enumerate() {
            assert_eq!(item["stock"]["sku"], sku(o, i));
            assert_eq!(item["stock"]["available"], (o * 3 + i) as i64);
        }
    }
    // The batch calls asked for each entity exactly once.
    let customer_calls = app
        .mocks
        .customers
        .received_requests()
        .await
        .expect("recording");
    let ids = query_value(&customer_calls[0], "ids");
    assert_eq!(
        sorted(ids.split(',')),
        sorted((0..5).map(|c| format!("cus_{c}")))
    );
    let inventory_calls = app
        .mocks
        .inventory
        .received_requests()
        .await
        .expect("recording");
    assert_eq!(
        query_value(&inventory_calls[0], "skus").split(',').count(),
        60
    );
}

#[tokio::test]
async fn the_dashboard_query_costs_one_call_per_service() {
    let app = spawn_app().await;
    let orders: Vec<Value> = (0..5)
        .map(|o| order_json(&format!("ord_{o}"), "cus_1", &[sku(o, 0), sku(o, 1)]))
        .collect();
    Mock::given(method("GET"))
        .and(path("/orders"))
        .and(query_param("customer_id", "cus_1"))
        .and(query_param("limit", "5"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": orders, "next_cursor": null})),
        )
        .expect(1)
        .mount(&app.mocks.orders)
        .await;
    Mock::given(method("GET"))
        .and(path("/customers"))
        .and(query_param("ids", "cus_1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [customer_json("cus_1")]})),
        )
        .expect(1)
        .mount(&app.mocks.customers)
        .await;
    let stock: Vec<Value> = (0..5)
        .flat_map(|o| [stock_json(&sku(o, 0), 3), stock_json(&sku(o, 1), 0)])
        .collect();
    Mock::given(method("GET"))
        .and(path("/inventory"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": stock})))
        .expect(1)
        .mount(&app.mocks.inventory)
        .await;

    // `customer` under each order is the viewer again: served from the request's cache.
    let response = app
        .query(
            Some(&app.mocks.token("cus_1")),
            "{ viewer { name orders(first: 5) { edges { cursor node { id total { formatted } customer { name } items { stock { available } } } } pageInfo { hasNextPage endCursor } } } }",
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.json);
    assert!(response.json.get("errors").is_none(), "{}", response.json);
    let viewer = &response.json["data"]["viewer"];
    assert_eq!(viewer["name"], "Name of cus_1");
    let edges = viewer["orders"]["edges"].as_array().expect("edges");
    assert_eq!(edges.len(), 5);
    assert_eq!(edges[0]["node"]["total"]["formatted"], "€2.00");
    assert_eq!(edges[0]["node"]["customer"]["name"], "Name of cus_1");
    assert_eq!(edges[4]["node"]["items"][1]["stock"]["available"], 0);
    assert_eq!(viewer["orders"]["pageInfo"]["hasNextPage"], false);
    assert_eq!(
        viewer["orders"]["pageInfo"]["endCursor"],
        edges[4]["cursor"]
    );
}

#[tokio::test]
async fn aliased_order_lookups_are_batched_into_one_call() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path("/orders"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            order_json("ord_a", "cus_1", &[]), order_json("ord_b", "cus_1", &[])
        ]})))
        .expect(1)
        .mount(&app.mocks.orders)
        .await;
    let response = app
        .query(
            Some(&app.mocks.token("cus_1")),
            r#"{ a: order(id: "ord_a") { id } b: order(id: "ord_b") { id } again: order(id: "ord_a") { status } }"#,
        )
        .await;
    assert_eq!(response.json["data"]["a"]["id"], "ord_a");
    assert_eq!(response.json["data"]["b"]["id"], "ord_b");
    assert_eq!(response.json["data"]["again"]["status"], "SHIPPED");
    let calls = app
        .mocks
        .orders
        .received_requests()
        .await
        .expect("recording");
    assert_eq!(
        sorted(query_value(&calls[0], "ids").split(',')),
        vec!["ord_a", "ord_b"]
    );
}

fn query_value(request: &wiremock::Request, name: &str) -> String {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn sorted<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Vec<String> {
    let mut items: Vec<String> = items.into_iter().map(Into::into).collect();
    items.sort();
    items
}
