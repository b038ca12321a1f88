//! Own-data-only access and PII masking.

use switchyard_tests::{Token, customer_json, order_json};

use crate::spawn_app;

#[tokio::test]
async fn another_customers_order_is_forbidden_and_nothing_of_it_leaks() {
    let app = spawn_app().await;
    app.mocks
        .serve_orders(&[order_json(
            "ord_secret",
            "cus_2",
            &["SKU-SECRET".to_owned()],
        )])
        .await;
    let response = app
        .query(
            Some(&app.mocks.token("cus_1")),
            r#"{ order(id: "ord_secret") { id status items { sku } customer { name email } } }"#,
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json["data"].get("order"),
        Some(&serde_json::Value::Null)
    );
    assert_eq!(response.error_codes(), vec!["FORBIDDEN"]);
    let body = String::from_utf8_lossy(&response.body);
    for secret in ["SKU-SECRET", "cus_2", "SHIPPED"] {
        assert!(!body.contains(secret), "{secret} leaked: {body}");
    }
    // The customer behind the order was never fetched.
    assert_eq!(
        app.mocks
            .customers
            .received_requests()
            .await
            .map(|r| r.len()),
        Some(0)
    );
}

#[tokio::test]
async fn another_customer_is_forbidden_without_any_upstream_call() {
    let app = spawn_app().await;
    let response = app
        .query(
            Some(&app.mocks.token("cus_1")),
            r#"{ customer(id: "cus_2") { name } }"#,
        )
        .await;
    assert_eq!(response.error_codes(), vec!["FORBIDDEN"]);
    assert_eq!(
        response.json["data"].get("customer"),
        Some(&serde_json::Value::Null)
    );
    let response = app
        .query(
            Some(&app.mocks.token("cus_1")),
            r#"{ orders(customerId: "cus_2") { nodes { id } } }"#,
        )
        .await;
    assert_eq!(response.error_codes(), vec!["FORBIDDEN"]);
    assert_eq!(app.upstream_calls().await, 0);
}

#[tokio::test]
async fn admins_see_any_customers_orders() {
    let app = spawn_app().await;
    app.mocks
        .serve_orders(&[order_json("ord_x", "cus_2", &[])])
        .await;
    let admin = Token::customer("support-1").scope("data:orders:read data:admin");
    let response = app
        .query(
            Some(&admin.sign(&app.mocks.ec)),
            r#"{ order(id: "ord_x") { id } }"#,
        )
        .await;
    assert_eq!(
        response.json["data"]["order"]["id"], "ord_x",
        "{}",
        response.json
    );
}

#[tokio::test]
async fn email_and_phone_are_masked_without_the_pii_scope() {
    let app = spawn_app().await;
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    let query = "{ viewer { email phone } }";

    let masked = app.query(Some(&app.mocks.token("cus_1")), query).await;
    assert_eq!(masked.json["data"]["viewer"]["email"], "c***@example.com");
    assert_eq!(masked.json["data"]["viewer"]["phone"], "+* *** **** **34");
    assert!(!String::from_utf8_lossy(&masked.body).contains("cus_1@example.com"));

    let pii = Token::customer("cus_1").scope("data:customers:read data:customers:pii");
    let clear = app.query(Some(&pii.sign(&app.mocks.rsa)), query).await;
    assert_eq!(clear.json["data"]["viewer"]["email"], "cus_1@example.com");
    assert_eq!(clear.json["data"]["viewer"]["phone"], "+1 555 0100 1234");
}

#[tokio::test]
async fn a_field_needing_a_scope_the_token_lacks_is_forbidden_while_others_resolve() {
    let app = spawn_app().await;
    app.mocks.serve_customers(&[customer_json("cus_1")]).await;
    let token = Token::customer("cus_1").scope("data:customers:read");
    let response = app
        .query(
            Some(&token.sign(&app.mocks.rsa)),
            r#"{ viewer { name } order(id: "ord_1") { id } }"#,
        )
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json["data"]["viewer"]["name"], "Name of cus_1");
    assert_eq!(
        response.json["data"].get("order"),
        Some(&serde_json::Value::Null)
    );
    assert_eq!(response.error_codes(), vec!["FORBIDDEN"]);
    assert_eq!(
        app.mocks.orders.received_requests().await.map(|r| r.len()),
        Some(0)
    );
}
