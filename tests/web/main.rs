//! Integration tests of the web BFF: its router in-process, wiremock upstreams, real JWTs.

mod auth;
mod authorization;
mod batching;
mod config;
mod graphql_http;
mod limits;
mod observability;
mod persisted;
mod prepared;
mod profile;
mod resilience;
mod schema_contract;
mod upstream_errors;

use axum::body::Body;
use http::Request;
use serde_json::{Value, json};
use switchyard_tests::{TestApp, TestResponse, graphql_post};
use web_bff::{WebBff, WebConfig};

/// A web BFF wired to fresh wiremock upstreams, with GraphQL helpers.
pub(crate) struct WebApp(pub(crate) TestApp<WebBff>);

impl std::ops::Deref for WebApp {
    type Target = TestApp<WebBff>;

    fn deref(&self) -> &TestApp<WebBff> {
        &self.0
    }
}

pub(crate) async fn spawn_app() -> WebApp {
    spawn_app_with(|_| {}).await
}

pub(crate) async fn spawn_app_with(adjust: impl FnOnce(&mut WebConfig)) -> WebApp {
    WebApp(TestApp::spawn_with(adjust).await)
}

impl WebApp {
    /// POSTs `query` with `token`.
    pub(crate) async fn query(&self, token: Option<&str>, query: &str) -> TestResponse {
        self.post(token, &json!({ "query": query })).await
    }

    /// POSTs a raw JSON body with `token`.
    pub(crate) async fn post(&self, token: Option<&str>, body: &Value) -> TestResponse {
        self.send(graphql_post(token, body)).await
    }

    /// GETs `uri` without a token (health routes).
    pub(crate) async fn get(&self, uri: &str) -> TestResponse {
        let request = Request::get(uri)
            .body(Body::empty())
            .expect("valid request");
        self.send(request).await
    }
}
