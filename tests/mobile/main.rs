//! Integration tests of the mobile BFF: its router in-process, wiremock upstreams, real
//! JWTs. Every response these tests receive is checked against
//! `schema/mobile.openapi.yaml` by [`MobileApp::get`], so the document cannot drift.

mod auth;
mod conditional;
mod config;
mod contract;
mod dashboard;
mod legacy;
mod metrics;
mod orders;

use std::ops::Deref;

use axum::body::Body;
use http::Request;
use mobile_bff::{MobileBff, MobileConfig};
use serde_json::Value;
use switchyard_tests::{TestApp, TestResponse, customer_json, order_json};

/// A mobile BFF wired to fresh wiremock upstreams, whose responses are checked against the
/// OpenAPI document.
pub(crate) struct MobileApp(TestApp<MobileBff>);

impl Deref for MobileApp {
    type Target = TestApp<MobileBff>;

    fn deref(&self) -> &TestApp<MobileBff> {
        &self.0
    }
}

pub(crate) async fn spawn_app() -> MobileApp {
    spawn_app_with(|_| {}).await
}

pub(crate) async fn spawn_app_with(adjust: impl FnOnce(&mut MobileConfig)) -> MobileApp {
    MobileApp(TestApp::spawn_with(adjust).await)
}

impl MobileApp {
    /// GETs `uri` with `token` and extra headers; the response is validated against the
    /// OpenAPI document before it is returned.
    pub(crate) async fn get_with(
        &self,
        uri: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut builder = Request::get(uri);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder.body(Body::empty()).expect("valid request");
        let response = self.send(request).await;
        contract::assert_conforms("get", uri, &response);
        response
    }

    /// GETs `uri` with `token` (validated against the document).
    pub(crate) async fn get(&self, uri: &str, token: Option<&str>) -> TestResponse {
        self.get_with(uri, token, &[]).await
    }

    /// A valid customer token for `sub`.
    pub(crate) fn token(&self, sub: &str) -> String {
        self.mocks.token(sub)
    }
}

/// Five orders of `customer`, newest first, each with `items` distinct SKUs.
pub(crate) fn orders_of(customer: &str, count: usize, items: usize) -> Vec<Value> {
    (0..count)
        .map(|n| {
            let skus: Vec<String> = (0..items).map(|i| format!("sku-{n}-{i}")).collect();
            order_json(&format!("ord-{customer}-{n}"), customer, &skus)
        })
        .collect()
}

/// The customers service body for one customer.
pub(crate) fn customers_body(id: &str) -> Value {
    serde_json::json!({ "data": [customer_json(id)] })
}
