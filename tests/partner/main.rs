//! Integration tests of the partner BFF: its router in-process, wiremock upstreams, real
//! JWTs and API keys. Every response these tests receive is checked against
//! `schema/partner.openapi.yaml` by [`PartnerApp::get`].

mod auth;
mod config;
mod orders;
mod stock;

use std::ops::Deref;
use std::sync::LazyLock;

use axum::body::Body;
use http::Request;
use partner_bff::{PartnerBff, PartnerConfig};
use switchyard_core::auth::{ApiKeyConfig, api_key_digest};
use switchyard_core::domain::Tier;
use switchyard_tests::{OpenApiContract, TestApp, TestResponse, Token};

static DOCUMENT: LazyLock<OpenApiContract> = LazyLock::new(|| {
    OpenApiContract::from_yaml("schema/partner.openapi.yaml", partner_bff::OPENAPI_YAML)
});

/// The API key the test apps accept, and the consumer it stands for.
pub(crate) const API_KEY: &str = "test-internal-key-0123456789";
pub(crate) const API_KEY_ID: &str = "stock-sync";

/// Scopes of a partner allowed everything the partner API offers.
pub(crate) const PARTNER_SCOPES: &str =
    "data:orders:read data:admin data:customers:read data:inventory:read";

/// A partner BFF wired to fresh wiremock upstreams, accepting [`API_KEY`] (with
/// `data:inventory:read` only).
pub(crate) struct PartnerApp(TestApp<PartnerBff>);

impl Deref for PartnerApp {
    type Target = TestApp<PartnerBff>;

    fn deref(&self) -> &TestApp<PartnerBff> {
        &self.0
    }
}

pub(crate) async fn spawn_app() -> PartnerApp {
    spawn_app_with(|_| {}).await
}

pub(crate) async fn spawn_app_with(adjust: impl FnOnce(&mut PartnerConfig)) -> PartnerApp {
    PartnerApp(
        TestApp::spawn_with(|config: &mut PartnerConfig| {
            config.auth.api_keys.push(ApiKeyConfig {
                id: API_KEY_ID.to_owned(),
                sha256: api_key_digest(API_KEY),
                scopes: vec!["data:inventory:read".to_owned()],
                tier: Tier::Enterprise,
            });
            adjust(config);
        })
        .await,
    )
}

impl PartnerApp {
    /// GETs `uri` with `authorization` as the whole `Authorization` header; the response is
    /// validated against the OpenAPI document before it is returned.
    pub(crate) async fn get(&self, uri: &str, authorization: Option<&str>) -> TestResponse {
        let mut builder = Request::get(uri);
        if let Some(authorization) = authorization {
            builder = builder.header("authorization", authorization);
        }
        let response = self
            .send(builder.body(Body::empty()).expect("valid request"))
            .await;
        DOCUMENT.assert_conforms("get", uri, &response);
        response
    }

    /// `Bearer <JWT>` of partner `sub` with `scope`.
    pub(crate) fn bearer(&self, sub: &str, scope: &str) -> String {
        format!(
            "Bearer {}",
            Token::customer(sub).scope(scope).sign(&self.mocks.ec)
        )
    }

    /// `Bearer <JWT>` of a partner allowed everything.
    pub(crate) fn partner(&self) -> String {
        self.bearer("partner-acme", PARTNER_SCOPES)
    }
}

#[test]
fn the_document_is_openapi_3_1_and_every_reference_resolves() {
    assert_eq!(DOCUMENT.document["openapi"], "3.1.0");
    DOCUMENT.assert_references_resolve();
    for template in ["/partner/v1/stock", "/partner/v1/orders"] {
        assert!(
            DOCUMENT.document["paths"][template]["get"].is_object(),
            "{template}"
        );
    }
}

#[tokio::test]
async fn openapi_json_serves_the_checked_in_document_without_a_credential() {
    let app = spawn_app().await;
    let response = app.get("/openapi.json", None).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json, DOCUMENT.document);
}
