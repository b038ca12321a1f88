//! Integration tests of the web BFF: its router in-process, wiremock upstreams, real JWTs.

mod auth;
mod authorization;
mod batching;
mod config;
mod graphql_http;
mod limits;
mod resilience;
mod schema_contract;
mod upstream_errors;

use axum::Router;
use axum::body::Body;
use http::Request;
use serde_json::{Value, json};
use switchyard_tests::{TestResponse, Upstreams, graphql_post, send};
use web_bff::WebConfig;

/// A web BFF wired to fresh wiremock upstreams.
pub(crate) struct WebApp {
    pub(crate) router: Router,
    pub(crate) up: Upstreams,
}

pub(crate) async fn spawn_app() -> WebApp {
    spawn_app_with(|_| {}).await
}

pub(crate) async fn spawn_app_with(adjust: impl FnOnce(&mut WebConfig)) -> WebApp {
    let up = Upstreams::start().await;
    let mut config = WebConfig {
        upstreams: up.upstreams_config(),
        auth: up.auth_config(),
        ..WebConfig::default()
    };
    adjust(&mut config);
    let state = web_bff::build_state(&config).expect("test config is valid");
    state.prime().await;
    WebApp {
        router: web_bff::router(state),
        up,
    }
}

impl WebApp {
    /// POSTs `query` with `token`.
    pub(crate) async fn query(&self, token: Option<&str>, query: &str) -> TestResponse {
        send(
            &self.router,
            graphql_post(token, &json!({ "query": query })),
        )
        .await
    }

    /// POSTs a raw JSON body with `token`.
    pub(crate) async fn post(&self, token: Option<&str>, body: &Value) -> TestResponse {
        send(&self.router, graphql_post(token, body)).await
    }

    /// GETs `uri` without a token (health routes).
    pub(crate) async fn get(&self, uri: &str) -> TestResponse {
        let request = Request::get(uri)
            .body(Body::empty())
            .expect("valid request");
        send(&self.router, request).await
    }

    /// Sends any request.
    pub(crate) async fn send(&self, request: Request<Body>) -> TestResponse {
        send(&self.router, request).await
    }

    /// Requests the upstream mocks received, across all three services.
    pub(crate) async fn upstream_calls(&self) -> usize {
        let mut total = 0;
        for server in [&self.up.customers, &self.up.orders, &self.up.inventory] {
            total += server.received_requests().await.map_or(0, |r| r.len());
        }
        total
    }
}
