//! Fuzzes the web BFF's GraphQL request path through its real router: body → JSON →
//! pre-parse scan (tokens, nesting) → parser → cost limits → validation, authenticated
//! with a real token. The upstreams are a closed port, so nothing leaves the process.
//!
//! The first byte picks what the rest is: `0`, a whole `POST /graphql` body; otherwise a
//! GraphQL document, sent as `{"query": …}`. Every request must be answered, in JSON, and
//! never with a 500 (core turns a panic into a 500 `INTERNAL`, so a 500 is a bug).

#![no_main]

use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use jsonwebtoken::{Algorithm, Header};
use libfuzzer_sys::fuzz_target;
use switchyard_core::bff::{App, BffConfig as _};
use tower::ServiceExt as _;
use web_bff::{WebBff, WebConfig};

#[path = "common.rs"]
mod common;

struct Target {
    runtime: tokio::runtime::Runtime,
    router: Router,
    authorization: String,
}

static TARGET: LazyLock<Target> = LazyLock::new(|| {
    let key = common::signing_key();
    let path = common::jwks_file("web");

    let mut config = WebConfig::default();
    config.auth_mut().jwks_file = Some(path);
    let upstreams = config.upstreams_mut();
    for upstream in [
        &mut upstreams.customers,
        &mut upstreams.orders,
        &mut upstreams.inventory,
    ] {
        // The discard port: connections are refused at once.
        upstream.url = "http://127.0.0.1:9".to_owned();
    }
    config.ratelimit.enabled = false;

    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({
        "iss": "switchyard-sandbox", "aud": "switchyard", "sub": "cus_1",
        "scope": "data:orders:read data:customers:read data:inventory:read",
        "iat": now, "nbf": now, "exp": now + 365 * 24 * 3600,
    });
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(common::DEV_KEY_ID.to_owned());
    let token = jsonwebtoken::encode(&header, &claims, &key).expect("token");

    let runtime = common::runtime();
    let router = runtime.block_on(async {
        App::<WebBff>::new(&config).expect("web app").router()
    });
    Target { runtime, router, authorization: format!("Bearer {token}") }
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let target = &*TARGET;
    let body = if mode == 0 {
        rest.to_vec()
    } else {
        let query = String::from_utf8_lossy(rest);
        serde_json::to_vec(&serde_json::json!({ "query": query })).expect("json")
    };
    let request = http::Request::post("/graphql")
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json")
        .header("authorization", &target.authorization)
        .body(Body::from(body))
        .expect("request");
    let response = target
        .runtime
        .block_on(target.router.clone().oneshot(request))
        .expect("infallible");
    let status = response.status();
    let bytes = target
        .runtime
        .block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
        .expect("body");
    assert_ne!(status, 500, "{}", String::from_utf8_lossy(&bytes));
    assert!(
        serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
        "{status}: not JSON: {}",
        String::from_utf8_lossy(&bytes)
    );
});
