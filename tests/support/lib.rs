//! Helpers shared by the integration tests: test signing keys, token building, and one
//! `spawn_app`-style harness ([`TestApp`]) running any BFF in-process against wiremock
//! upstreams ([`MockUpstreams`]).
//!
//! The keys in `support/keys/` are throwaway test keys, checked in so tests need no key
//! generation at run time.

mod openapi;
mod scratch;
pub mod stream;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode};
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use switchyard_core::bff::{App, Bff, BffConfig as _};
use tower::ServiceExt as _;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub use crate::openapi::OpenApiContract;
pub use crate::scratch::ScratchDir;
pub use switchyard_sandbox::redis::{RedisCluster, RedisServer};

/// Issuer the test tokens name and the test apps trust.
pub const TEST_ISSUER: &str = "https://issuer.test";
/// Audience the test tokens name and the test apps expect.
pub const TEST_AUDIENCE: &str = "switchyard";

/// A signing key with its public JWK.
pub struct TestKey {
    /// `kid` of the key.
    pub kid: &'static str,
    /// Its signature algorithm.
    pub alg: Algorithm,
    /// The private key.
    pub encoding: EncodingKey,
    /// The public key as published in the JWKS.
    pub jwk: Jwk,
}

impl TestKey {
    fn load(kid: &'static str, alg: Algorithm, encoding: EncodingKey) -> Arc<Self> {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).expect("test keys have a JWK form");
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(
            format!("{alg:?}")
                .parse::<KeyAlgorithm>()
                .expect("signature algorithms are key algorithms"),
        );
        Arc::new(Self {
            kid,
            alg,
            encoding,
            jwk,
        })
    }

    /// The RS256 test key.
    pub fn rsa() -> Arc<Self> {
        let pem = include_bytes!("keys/rsa.pem");
        Self::load(
            "test-rsa",
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(pem).expect("valid RSA test key"),
        )
    }

    /// The ES256 test key.
    pub fn ec() -> Arc<Self> {
        let pem = include_bytes!("keys/ec.pem");
        Self::load(
            "test-ec",
            Algorithm::ES256,
            EncodingKey::from_ec_pem(pem).expect("valid EC test key"),
        )
    }

    /// An ES256 key that is *not* published but claims the published EC key's `kid`.
    pub fn ec_other() -> Arc<Self> {
        let pem = include_bytes!("keys/ec-other.pem");
        Self::load(
            "test-ec",
            Algorithm::ES256,
            EncodingKey::from_ec_pem(pem).expect("valid EC test key"),
        )
    }

    /// The EdDSA test key.
    pub fn ed() -> Arc<Self> {
        let pem = include_bytes!("keys/ed25519.pem");
        Self::load(
            "test-ed",
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(pem).expect("valid Ed25519 test key"),
        )
    }

    /// The RSA public key in PEM form (what an attacker would use as an HMAC secret).
    pub fn rsa_public_pem() -> &'static [u8] {
        include_bytes!("keys/rsa.pub.pem")
    }
}

/// A JWKS document publishing `keys`.
pub fn jwks(keys: &[&TestKey]) -> Value {
    json!({ "keys": keys.iter().map(|k| &k.jwk).collect::<Vec<_>>() })
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

/// Builds test tokens; every field can be bent to make a bad one.
#[derive(Clone, Debug)]
pub struct Token {
    /// `sub`.
    pub sub: String,
    /// Space-separated scopes.
    pub scope: String,
    /// `tier`.
    pub tier: Option<String>,
    /// `iss`.
    pub iss: String,
    /// `aud`.
    pub aud: String,
    /// `exp` relative to now, in seconds.
    pub exp_in: i64,
    /// `nbf` relative to now, in seconds.
    pub nbf_in: i64,
    /// `kid` override (default: the signing key's).
    pub kid: Option<String>,
    /// `iat` relative to now, in seconds.
    pub iat_in: i64,
}

/// The scopes of an ordinary customer token.
pub const CUSTOMER_SCOPES: &str = "data:orders:read data:customers:read data:inventory:read";

impl Token {
    /// A valid customer token for `sub` with the ordinary read scopes.
    pub fn customer(sub: &str) -> Self {
        Self {
            sub: sub.to_owned(),
            scope: CUSTOMER_SCOPES.to_owned(),
            tier: Some("pro".to_owned()),
            iss: TEST_ISSUER.to_owned(),
            aud: TEST_AUDIENCE.to_owned(),
            exp_in: 600,
            nbf_in: -10,
            kid: None,
            iat_in: 0,
        }
    }

    /// Replaces the scopes.
    pub fn scope(mut self, scope: &str) -> Self {
        scope.clone_into(&mut self.scope);
        self
    }

    fn claims(&self) -> Value {
        let now = now();
        let mut claims = json!({
            "sub": self.sub, "scope": self.scope, "iss": self.iss, "aud": self.aud,
            "iat": now + self.iat_in, "exp": now + self.exp_in, "nbf": now + self.nbf_in,
        });
        if let Some(tier) = &self.tier {
            claims["tier"] = json!(tier);
        }
        claims
    }

    /// Signs with `key`.
    pub fn sign(&self, key: &TestKey) -> String {
        self.sign_with_header(key, |_| {})
    }

    /// Signs with `key`, after `bend` has changed the header (`typ`, `crit`, …).
    pub fn sign_with_header(&self, key: &TestKey, bend: impl FnOnce(&mut Header)) -> String {
        let mut header = Header::new(key.alg);
        header.kid = Some(self.kid.clone().unwrap_or_else(|| key.kid.to_owned()));
        bend(&mut header);
        jsonwebtoken::encode(&header, &self.claims(), &key.encoding)
            .expect("signing test tokens works")
    }

    /// An unsigned `alg: none` token with these claims.
    pub fn unsigned(&self) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT","kid":"test-rsa"}"#);
        let claims = b64.encode(self.claims().to_string());
        format!("{header}.{claims}.")
    }

    /// An HS256 token whose HMAC secret is the RSA public key (the classic key-confusion attack).
    pub fn hs256_with_public_key(&self) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("test-rsa".to_owned());
        let key = EncodingKey::from_secret(TestKey::rsa_public_pem());
        jsonwebtoken::encode(&header, &self.claims(), &key).expect("HMAC signing works")
    }
}

/// A test customer as the customers service returns it.
pub fn customer_json(id: &str) -> Value {
    json!({
        "id": id, "name": format!("Name of {id}"), "email": format!("{id}@example.com"),
        "phone": "+1 555 0100 1234", "tier": "pro",
        "avatar_url": format!("https://img.test/{id}.png"),
        "avatar_thumb_url": format!("https://img.test/{id}_64.png"),
        "created_at": "2025-01-01T00:00:00Z"
    })
}

/// A test order with one item per SKU (quantity 1, 100 cents each).
pub fn order_json(id: &str, customer_id: &str, skus: &[String]) -> Value {
    let items: Vec<Value> = skus
        .iter()
        .map(|sku| json!({"sku": sku, "quantity": 1, "unit_price_cents": 100}))
        .collect();
    json!({
        "id": id, "customer_id": customer_id, "status": "shipped", "items": items,
        "total_cents": 100 * skus.len(), "currency": "EUR",
        "created_at": "2025-06-01T00:00:00Z", "updated_at": "2025-06-02T00:00:00Z"
    })
}

/// A test stock level.
pub fn stock_json(sku: &str, available: i64) -> Value {
    json!({
        "sku": sku, "name": format!("Product {sku}"), "available": available, "reserved": 0,
        "warehouse_id": "wh-1", "updated_at": "2025-06-01T00:00:00Z"
    })
}

/// One wiremock server per upstream plus an issuer serving the test JWKS.
pub struct MockUpstreams {
    /// The customers service.
    pub customers: MockServer,
    /// The orders service.
    pub orders: MockServer,
    /// The inventory service.
    pub inventory: MockServer,
    /// The JWKS endpoint (`/.well-known/jwks.json`).
    pub issuer: MockServer,
    /// RS256 key published in the JWKS.
    pub rsa: Arc<TestKey>,
    /// ES256 key published in the JWKS.
    pub ec: Arc<TestKey>,
    /// EdDSA key published in the JWKS.
    pub ed: Arc<TestKey>,
}

impl MockUpstreams {
    /// Starts the mock servers; the issuer publishes all three test keys.
    pub async fn start() -> Self {
        let (rsa, ec, ed) = (TestKey::rsa(), TestKey::ec(), TestKey::ed());
        let issuer = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/.well-known/jwks.json"))
            .respond_with(ResponseTemplate::new(200).set_body_json(jwks(&[&rsa, &ec, &ed])))
            .named("JWKS")
            .mount(&issuer)
            .await;
        Self {
            customers: MockServer::start().await,
            orders: MockServer::start().await,
            inventory: MockServer::start().await,
            issuer,
            rsa,
            ec,
            ed,
        }
    }

    /// A core upstream config pointing at the mocks.
    pub fn upstreams_config(&self) -> switchyard_core::upstream::UpstreamsConfig {
        let mut config = switchyard_core::upstream::UpstreamsConfig::default();
        config.customers.url = self.customers.uri();
        config.orders.url = self.orders.uri();
        config.inventory.url = self.inventory.uri();
        config
    }

    /// A core auth config trusting the mock issuer.
    pub fn auth_config(&self) -> switchyard_core::auth::AuthConfig {
        switchyard_core::auth::AuthConfig {
            jwks_url: Some(format!("{}/.well-known/jwks.json", self.issuer.uri())),
            issuers: vec![TEST_ISSUER.to_owned()],
            audiences: vec![TEST_AUDIENCE.to_owned()],
            ..Default::default()
        }
    }

    /// Answers every `GET /customers…` with `{"data": customers}`.
    pub async fn serve_customers(&self, customers: &[Value]) {
        serve_json(&self.customers, "/customers", json!({ "data": customers })).await;
    }

    /// Answers every `GET /orders…` with `{"data": orders, "next_cursor": null}`.
    pub async fn serve_orders(&self, orders: &[Value]) {
        serve_json(
            &self.orders,
            "/orders",
            json!({ "data": orders, "next_cursor": null }),
        )
        .await;
    }

    /// Answers every `GET /inventory…` with `{"data": levels}`.
    pub async fn serve_stock(&self, levels: &[Value]) {
        serve_json(&self.inventory, "/inventory", json!({ "data": levels })).await;
    }

    /// A valid RS256 customer token for `sub`.
    pub fn token(&self, sub: &str) -> String {
        Token::customer(sub).sign(&self.rsa)
    }
}

/// A BFF of type `B` wired to fresh wiremock upstreams and served without a socket.
pub struct TestApp<B: Bff> {
    /// The whole router, as a client reaches it (common layers and health routes included).
    pub router: Router,
    /// The upstreams and issuer it talks to.
    pub mocks: MockUpstreams,
    /// Its state.
    pub state: B::State,
}

impl<B: Bff> TestApp<B> {
    /// `B` with its default config pointed at fresh mocks.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// `B` with its default config pointed at fresh mocks, then changed by `adjust`.
    pub async fn spawn_with(adjust: impl FnOnce(&mut B::Config)) -> Self {
        let mocks = MockUpstreams::start().await;
        let mut config = B::Config::default();
        *config.upstreams_mut() = mocks.upstreams_config();
        *config.auth_mut() = mocks.auth_config();
        adjust(&mut config);
        Self::with_config(&config, mocks).await
    }

    /// Two replicas of `B` sharing the Redis at `redis_url` (300 ms per command) and one
    /// set of mocks: the first replica's (the second holds fresh, unused ones).
    pub async fn two_replicas_sharing(redis_url: &str) -> (Self, Self) {
        let share = |config: &mut B::Config| {
            let redis = config.redis_mut();
            redis.url = Some(redis_url.to_owned());
            redis.timeout_ms = 300;
        };
        let first = Self::spawn_with(share).await;
        let mut config = B::Config::default();
        *config.upstreams_mut() = first.mocks.upstreams_config();
        *config.auth_mut() = first.mocks.auth_config();
        share(&mut config);
        let second = Self::with_config(&config, MockUpstreams::start().await).await;
        (first, second)
    }

    /// `B` with exactly `config`, talking to `mocks`; the signing keys are loaded first.
    pub async fn with_config(config: &B::Config, mocks: MockUpstreams) -> Self {
        let app = App::<B>::new(config).expect("test config is valid");
        app.prime().await;
        Self::from_app(&app, mocks)
    }

    /// Like [`TestApp::with_config`], without loading the signing keys first: the first
    /// request that needs them fetches them.
    pub fn unprimed(config: &B::Config, mocks: MockUpstreams) -> Self {
        let app = App::<B>::new(config).expect("test config is valid");
        Self::from_app(&app, mocks)
    }

    fn from_app(app: &App<B>, mocks: MockUpstreams) -> Self {
        Self {
            router: app.router(),
            state: app.state().clone(),
            mocks,
        }
    }

    /// Sends any request through the router.
    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        send(&self.router, request).await
    }

    /// Requests the upstream mocks received, across all three services.
    pub async fn upstream_calls(&self) -> usize {
        let mut total = 0;
        for server in [
            &self.mocks.customers,
            &self.mocks.orders,
            &self.mocks.inventory,
        ] {
            total += server.received_requests().await.map_or(0, |r| r.len());
        }
        total
    }
}

async fn serve_json(server: &MockServer, route: &str, body: Value) {
    Mock::given(method("GET"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

/// A response read whole.
pub struct TestResponse {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body parsed as JSON (`Value::Null` when empty or not JSON).
    pub json: Value,
    /// Raw body.
    pub body: Vec<u8>,
}

impl TestResponse {
    /// `errors[i].extensions.code` of a GraphQL response.
    pub fn error_codes(&self) -> Vec<String> {
        self.json["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["extensions"]["code"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `request` through `router` without a socket.
pub async fn send(router: &Router, request: Request<Body>) -> TestResponse {
    let response = router
        .clone()
        .oneshot(request)
        .await
        .expect("routers are infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("bodies can be read")
        .to_vec();
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    TestResponse {
        status,
        headers,
        json,
        body,
    }
}

/// A `POST /graphql` request with a JSON body and an optional bearer token.
pub fn graphql_post(token: Option<&str>, body: &Value) -> Request<Body> {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri("/graphql")
        .header("content-type", "application/json")
        .header("accept", "application/graphql-response+json");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder
        .body(Body::from(body.to_string()))
        .expect("valid request")
}

/// Loads a BFF config from its defaults, an optional TOML `file` and the given `SWITCHYARD_…`
/// variables (instead of the process environment).
pub fn load_config<T>(
    file: Option<&std::path::Path>,
    env: &[(&str, &str)],
) -> Result<T, switchyard_core::config::ConfigError>
where
    T: serde::de::DeserializeOwned + serde::Serialize + Default + switchyard_core::config::Validate,
{
    switchyard_core::config::load_from_sources(
        file,
        env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
}

/// A `/metrics` response, parsed as Prometheus text (with a parser, not patterns).
pub struct MetricsScrape(pub prometheus_parse::Scrape);

impl MetricsScrape {
    /// Parses `response`, which must be a 200 in the Prometheus text format.
    pub fn of(response: &TestResponse) -> Self {
        assert_eq!(response.status, StatusCode::OK, "/metrics answered");
        assert!(
            response
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
            "{:?}",
            response.header("content-type")
        );
        let text = String::from_utf8(response.body.to_vec()).expect("utf-8");
        Self(
            prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
                .expect("Prometheus text"),
        )
    }

    /// Scrapes `url` (a running BFF's `/metrics`).
    pub async fn fetch(url: &str) -> Self {
        let text = reqwest::get(url)
            .await
            .expect("/metrics answers")
            .text()
            .await
            .expect("a body");
        Self(
            prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
                .expect("Prometheus text"),
        )
    }

    /// The sum of the counter or gauge samples of `metric` whose labels include `labels`;
    /// `None` when there is no such sample.
    pub fn value(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let values: Vec<f64> = self
            .0
            .samples
            .iter()
            .filter(|s| s.metric == metric)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .filter_map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => Some(v),
                _ => None,
            })
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    }

    /// The number of observations of histogram `metric` whose labels include `labels`.
    pub fn histogram_count(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0
            .samples
            .iter()
            .filter(|s| s.metric == metric)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .find_map(|s| match &s.value {
                prometheus_parse::Value::Histogram(buckets) => buckets.last().map(|b| b.count),
                _ => None,
            })
    }
}
