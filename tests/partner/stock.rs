//! `GET /partner/v1/stock`: one batched inventory call, unknown SKUs named, bad lists refused.

use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

use switchyard_tests::stock_json;

use crate::spawn_app;

#[tokio::test]
async fn stock_of_many_skus_is_one_inventory_call_and_unknown_skus_are_named() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .and(path("/inventory"))
        .and(query_param("skus", "SKU-1,SKU-2,SKU-3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "data": [stock_json("SKU-1", 7), stock_json("SKU-3", 0)]
        })))
        .expect(1)
        .mount(&app.mocks.inventory)
        .await;
    let response = app
        .get(
            "/partner/v1/stock?skus=SKU-1,SKU-2,SKU-3,SKU-1",
            Some(&app.partner()),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.json);
    assert_eq!(response.json["data"][0]["sku"], "SKU-1");
    assert_eq!(response.json["data"][0]["available"], 7);
    assert_eq!(response.json["data"][0]["warehouseId"], "wh-1");
    assert_eq!(response.json["data"][1]["sku"], "SKU-3");
    assert_eq!(response.json["unknownSkus"], serde_json::json!(["SKU-2"]));
}

#[tokio::test]
async fn missing_empty_oversized_and_malformed_sku_lists_are_400s_without_upstream_calls() {
    let app = spawn_app().await;
    let many: Vec<String> = (0..101).map(|n| format!("S{n}")).collect();
    let long = "S".repeat(65);
    let cases = [
        "/partner/v1/stock".to_owned(),
        "/partner/v1/stock?skus=".to_owned(),
        "/partner/v1/stock?skus=a,,b".to_owned(),
        format!("/partner/v1/stock?skus={}", many.join(",")),
        format!("/partner/v1/stock?skus={long}"),
        "/partner/v1/stock?skus=a%20b".to_owned(),
        "/partner/v1/stock?skus=a&warehouse=1".to_owned(),
    ];
    for uri in &cases {
        let response = app.get(uri, Some(&app.partner())).await;
        assert_eq!(response.status, 400, "{uri}: {}", response.json);
        assert_eq!(response.json["code"], "BAD_USER_INPUT", "{uri}");
    }
    assert_eq!(app.upstream_calls().await, 0);
}

#[tokio::test]
async fn an_inventory_outage_is_a_503_problem_naming_the_service() {
    let app = spawn_app().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&app.mocks.inventory)
        .await;
    let response = app
        .get("/partner/v1/stock?skus=SKU-1", Some(&app.partner()))
        .await;
    assert_eq!(response.status, 503);
    assert_eq!(response.json["code"], "UPSTREAM_UNAVAILABLE");
    assert_eq!(response.json["service"], "inventory");
}
