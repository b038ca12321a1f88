//! The sandbox's dev token issuer: a JWKS endpoint and token minting with a real key pair.
//!
//! The ES256 key in `keys/dev-es256.pem` is a development key, checked in so that tokens
//! printed by `switchyard-sandbox token` verify against any running sandbox. It must never
//! be trusted outside development: production BFFs point `auth.jwks_url` at a real issuer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use switchyard_core::auth::{ApiKeyConfig, api_key_digest};
use switchyard_core::config::{DEFAULT_AUDIENCE, SANDBOX_ISSUER};
use switchyard_core::domain::Tier;

use crate::data::DEMO_CUSTOMER_ID;

const DEV_KEY_PEM: &str = include_str!("../keys/dev-es256.pem");
/// `kid` of the dev signing key.
pub const DEV_KEY_ID: &str = "sandbox-es256-1";
/// Scopes of the default token: a customer reading its own data.
pub const DEFAULT_SCOPES: &str = "data:orders:read data:customers:read data:inventory:read";

/// The development API key of an internal service. The launcher configures the partner
/// BFF to accept it (as its SHA-256 digest, like any key) and `switchyard-sandbox api-key`
/// prints it. Like the dev signing key it is public: never trust it outside development.
pub const DEV_API_KEY: &str = "sy_dev_internal_3f9c1a7e5b2d4c68a0e1";
/// The consumer the development API key authenticates as.
pub const DEV_API_KEY_ID: &str = "sandbox-internal";
/// Scopes of the development API key: an internal service reading everything.
pub const DEV_API_KEY_SCOPES: &str =
    "data:orders:read data:customers:read data:inventory:read data:admin";

/// The `auth.api_keys` entry of the development API key.
pub fn dev_api_key() -> ApiKeyConfig {
    ApiKeyConfig {
        id: DEV_API_KEY_ID.to_owned(),
        sha256: api_key_digest(DEV_API_KEY),
        scopes: DEV_API_KEY_SCOPES
            .split_ascii_whitespace()
            .map(str::to_owned)
            .collect(),
        tier: Tier::Enterprise,
    }
}

/// What to put in a token.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenRequest {
    /// `sub`: a customer id, a device id or a service name.
    pub sub: String,
    /// Space-separated scopes.
    pub scope: String,
    /// Lifetime in seconds.
    pub ttl: u64,
    /// `tier` claim: free, pro or enterprise.
    pub tier: String,
}

impl Default for TokenRequest {
    fn default() -> Self {
        Self {
            sub: DEMO_CUSTOMER_ID.to_owned(),
            scope: DEFAULT_SCOPES.to_owned(),
            ttl: 3600,
            tier: "pro".to_owned(),
        }
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    scope: &'a str,
    tier: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// Mints tokens and serves the JWKS; counts both for `/__stats`.
pub struct Issuer {
    key: EncodingKey,
    jwks: JwkSet,
    jwks_fetches: AtomicU64,
    tokens_minted: AtomicU64,
}

impl Issuer {
    /// The issuer with the checked-in dev key.
    pub fn dev() -> Self {
        let key = EncodingKey::from_ec_pem(DEV_KEY_PEM.as_bytes())
            .expect("the checked-in dev key is a valid PKCS#8 P-256 key");
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256)
            .expect("a P-256 key has a public JWK form");
        jwk.common.key_id = Some(DEV_KEY_ID.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
        Self {
            key,
            jwks: JwkSet { keys: vec![jwk] },
            jwks_fetches: AtomicU64::new(0),
            tokens_minted: AtomicU64::new(0),
        }
    }

    /// The public keys, as served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// A signed ES256 token for `request`, issued by the sandbox for the `switchyard` audience.
    pub fn mint(&self, request: &TokenRequest) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            iss: SANDBOX_ISSUER,
            aud: DEFAULT_AUDIENCE,
            sub: &request.sub,
            scope: &request.scope,
            tier: &request.tier,
            iat: now,
            nbf: now,
            exp: now + request.ttl,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(DEV_KEY_ID.to_owned());
        self.tokens_minted.fetch_add(1, Ordering::Relaxed);
        jsonwebtoken::encode(&header, &claims, &self.key)
            .expect("signing with a valid EC key cannot fail")
    }

    /// Routes: `GET /.well-known/jwks.json`, `POST /token`, `GET|DELETE /__stats`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/.well-known/jwks.json", get(jwks))
            .route("/token", post(token))
            .route("/__stats", get(stats).delete(reset_stats))
            .with_state(self)
    }
}

async fn jwks(State(issuer): State<Arc<Issuer>>) -> Json<JwkSet> {
    issuer.jwks_fetches.fetch_add(1, Ordering::Relaxed);
    Json(issuer.jwks.clone())
}

async fn token(State(issuer): State<Arc<Issuer>>, body: axum::body::Bytes) -> Response {
    let request: TokenRequest = if body.is_empty() {
        TokenRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(serde_json::json!({"error": e.to_string()})),
                )
                    .into_response();
            }
        }
    };
    Json(serde_json::json!({
        "access_token": issuer.mint(&request),
        "token_type": "Bearer",
        "expires_in": request.ttl,
    }))
    .into_response()
}

/// What the issuer's `GET /__stats` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerStats {
    /// JWKS downloads.
    pub jwks_fetches: u64,
    /// Tokens minted over HTTP or by [`Issuer::mint`].
    pub tokens_minted: u64,
}

async fn stats(State(issuer): State<Arc<Issuer>>) -> Json<IssuerStats> {
    Json(IssuerStats {
        jwks_fetches: issuer.jwks_fetches.load(Ordering::Relaxed),
        tokens_minted: issuer.tokens_minted.load(Ordering::Relaxed),
    })
}

async fn reset_stats(State(issuer): State<Arc<Issuer>>) -> StatusCode {
    issuer.jwks_fetches.store(0, Ordering::Relaxed);
    issuer.tokens_minted.store(0, Ordering::Relaxed);
    StatusCode::NO_CONTENT
}
