//! The limit per client address before authentication, over real sockets (the peer
//! address comes from the connection) and behind trusted proxies.

use std::net::SocketAddr;

use mobile_bff::{MobileBff, MobileConfig};
use switchyard_core::bff::App;
use switchyard_tests::MockUpstreams;

async fn serve(adjust: impl FnOnce(&mut MobileConfig)) -> (String, MockUpstreams) {
    let mocks = MockUpstreams::start().await;
    let mut config = MobileConfig {
        upstreams: mocks.upstreams_config(),
        auth: mocks.auth_config(),
        ..MobileConfig::default()
    };
    config.ratelimit.anonymous.rate_per_sec = 0.001;
    config.ratelimit.anonymous.burst = 3;
    adjust(&mut config);
    let app = App::<MobileBff>::new(&config).expect("valid config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    tokio::spawn(app.serve(listener, std::future::pending()));
    (format!("http://{addr}"), mocks)
}

#[tokio::test]
async fn a_flood_of_bad_tokens_from_one_address_is_refused_before_verification() {
    let (base, mocks) = serve(|_| {}).await;
    let http = reqwest::Client::new();
    let call = || {
        http.get(format!("{base}/v2/orders"))
            .bearer_auth("not-a-token")
            .send()
    };
    for _ in 0..3 {
        assert_eq!(call().await.expect("answered").status(), 401);
    }
    let refused = call().await.expect("answered");
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1000")
    );
    let body: serde_json::Value = refused.json().await.expect("problem");
    assert_eq!(body["code"], "RATE_LIMITED");
    assert_eq!(body["detail"], "too many requests from this address");
    // Probes from the same address are never limited.
    let probe = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("answered");
    assert_eq!(probe.status(), 200);
    let upstream = mocks.orders.received_requests().await.map(|r| r.len());
    assert_eq!(upstream, Some(0));
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit() {
    let (base, _mocks) = serve(|config| config.ratelimit.anonymous.trusted_proxy_hops = 1).await;
    let http = reqwest::Client::new();
    let call = |client: &str| {
        http.get(format!("{base}/v2/orders"))
            // The proxy appends the address it saw; what the client wrote is not trusted.
            .header("x-forwarded-for", format!("198.51.100.99, {client}"))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(call("203.0.113.1").await.expect("answered").status(), 401);
    }
    assert_eq!(call("203.0.113.1").await.expect("answered").status(), 429);
    assert_eq!(call("203.0.113.2").await.expect("answered").status(), 401);
}
