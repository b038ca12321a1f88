//! Signing keys: a JWKS loaded from a file, or fetched from a URL and cached.
//!
//! A token naming an unknown `kid` triggers a refetch (keys rotate), but at most once per
//! cooldown: a flood of tokens with made-up `kid`s costs the issuer one request per
//! cooldown, not one per token. Concurrent refreshes are collapsed into one fetch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::Url;
use tokio::time::Instant;

use super::config::AuthConfig;
use super::error::AuthError;
use crate::config::{ConfigError, validate_http_url};

/// A verification key and the algorithm its JWK pins, if any.
pub(super) struct VerificationKey {
    pub(super) decoding: DecodingKey,
    pub(super) algorithm: Option<Algorithm>,
}

/// Keys by `kid`. Keys without a `kid` are stored under the empty string.
type KeyMap = HashMap<String, Arc<VerificationKey>>;

/// Why the JWKS could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum JwksFetchError {
    /// The request failed or the issuer answered non-2xx.
    #[error("fetching the JWKS failed: {0}")]
    Http(String),
    /// The body is not a JWKS with at least one usable key.
    #[error("the JWKS is invalid: {0}")]
    Invalid(String),
    /// The JWKS holds the sandbox's checked-in development key, which anyone can sign
    /// with (refused by the production profile).
    #[error("the JWKS holds the sandbox's development signing key, which anyone can sign with")]
    SandboxKey,
}

impl JwksFetchError {
    /// Whether the BFF must not start with it (a retry cannot fix it).
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::SandboxKey)
    }
}

/// The `x` coordinate of the sandbox's checked-in P-256 development key
/// (`tests/sandbox/keys/dev-es256.pem`), by which the production profile recognises it.
const SANDBOX_KEY_X: &str = "1eiM0mpeANC8IFRnac4Aecf__pNDJogClDQ9xISXOY0";

struct Remote {
    url: Url,
    client: reqwest::Client,
    cooldown: Duration,
    /// When the last fetch started; held across the fetch to collapse concurrent ones.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

/// The current signing keys and where to get new ones.
pub struct KeyStore {
    keys: RwLock<Arc<KeyMap>>,
    /// Bumped by every JWKS fetch that replaced the keys, so that what was verified
    /// against the old ones can be told apart.
    generation: AtomicU64,
    remote: Option<Remote>,
    /// Whether a JWKS holding the sandbox's key is refused (production).
    refuse_sandbox_key: bool,
}

impl KeyStore {
    /// Loads `auth.jwks_file` now, or prepares to fetch `auth.jwks_url`; `production`
    /// refuses the sandbox's development key.
    pub fn from_config(config: &AuthConfig, production: bool) -> Result<Self, ConfigError> {
        if let Some(path) = &config.jwks_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError::invalid(
                    "auth.jwks_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let keys = parse_jwks(&text, production)
                .map_err(|e| ConfigError::invalid("auth.jwks_file", e.to_string()))?;
            return Ok(Self {
                keys: RwLock::new(Arc::new(keys)),
                generation: AtomicU64::new(0),
                remote: None,
                refuse_sandbox_key: production,
            });
        }
        let url = config
            .jwks_url
            .as_deref()
            .ok_or_else(|| ConfigError::invalid("auth.jwks_url", "not set"))?;
        let url = validate_http_url("auth.jwks_url", url)?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.jwks_timeout_ms))
            .build()
            .map_err(|e| ConfigError::invalid("auth.jwks_url", e.to_string()))?;
        Ok(Self {
            keys: RwLock::new(Arc::new(KeyMap::new())),
            generation: AtomicU64::new(0),
            remote: Some(Remote {
                url,
                client,
                cooldown: Duration::from_secs(config.jwks_refresh_cooldown_secs),
                last_fetch: tokio::sync::Mutex::new(None),
            }),
            refuse_sandbox_key: production,
        })
    }

    /// Whether at least one key is loaded.
    pub fn has_keys(&self) -> bool {
        !self.snapshot().is_empty()
    }

    /// Changes whenever the keys are replaced.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn snapshot(&self) -> Arc<KeyMap> {
        // A poisoned lock only means a writer panicked mid-swap of an Arc; the map is intact.
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn lookup(&self, kid: Option<&str>) -> Option<Arc<VerificationKey>> {
        let keys = self.snapshot();
        match kid {
            Some(kid) => keys.get(kid).cloned(),
            // Without a `kid`, only an unambiguous single key may be used.
            None if keys.len() == 1 => keys.values().next().cloned(),
            None => None,
        }
    }

    /// The key for `kid`, refetching the JWKS once per cooldown when it is unknown.
    pub(super) async fn key_for(
        &self,
        kid: Option<&str>,
    ) -> Result<Arc<VerificationKey>, AuthError> {
        if let Some(key) = self.lookup(kid) {
            return Ok(key);
        }
        let Some(remote) = &self.remote else {
            return Err(AuthError::Invalid("unknown signing key"));
        };
        let mut last_fetch = remote.last_fetch.lock().await;
        // Another request may have refreshed while this one waited for the lock.
        if let Some(key) = self.lookup(kid) {
            return Ok(key);
        }
        if last_fetch.is_some_and(|at| at.elapsed() < remote.cooldown) {
            return Err(AuthError::Invalid("unknown signing key"));
        }
        *last_fetch = Some(Instant::now());
        if let Err(error) = self.fetch(remote).await {
            tracing::warn!(%error, "JWKS refresh failed");
        }
        drop(last_fetch);
        self.lookup(kid)
            .ok_or(AuthError::Invalid("unknown signing key"))
    }

    /// Fetches the JWKS unless a fetch started within the cooldown (readiness retries).
    pub async fn refresh_if_due(&self) -> Result<(), JwksFetchError> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let mut last_fetch = remote.last_fetch.lock().await;
        if last_fetch.is_some_and(|at| at.elapsed() < remote.cooldown) {
            return Ok(());
        }
        *last_fetch = Some(Instant::now());
        self.fetch(remote).await
    }

    /// Fetches the JWKS now, regardless of the cooldown (start-up priming).
    pub async fn refresh_now(&self) -> Result<(), JwksFetchError> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let mut last_fetch = remote.last_fetch.lock().await;
        *last_fetch = Some(Instant::now());
        self.fetch(remote).await
    }

    async fn fetch(&self, remote: &Remote) -> Result<(), JwksFetchError> {
        let response = remote
            .client
            .get(remote.url.clone())
            .send()
            .await
            .map_err(|e| JwksFetchError::Http(e.to_string()))?;
        if !response.status().is_success() {
            return Err(JwksFetchError::Http(format!(
                "status {}",
                response.status()
            )));
        }
        let text = response
            .text()
            .await
            .map_err(|e| JwksFetchError::Http(e.to_string()))?;
        let keys = parse_jwks(&text, self.refuse_sandbox_key)?;
        tracing::info!(keys = keys.len(), url = %remote.url, "JWKS loaded");
        *self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}

/// Parses a JWKS, keeping the asymmetric signature keys and skipping others; with
/// `refuse_sandbox_key`, a set holding the sandbox's development key is refused whole.
fn parse_jwks(text: &str, refuse_sandbox_key: bool) -> Result<KeyMap, JwksFetchError> {
    let set: JwkSet =
        serde_json::from_str(text).map_err(|e| JwksFetchError::Invalid(e.to_string()))?;
    if refuse_sandbox_key && set.keys.iter().any(is_sandbox_key) {
        return Err(JwksFetchError::SandboxKey);
    }
    let mut keys = KeyMap::new();
    for jwk in &set.keys {
        if let Some(key) = verification_key(jwk) {
            keys.insert(jwk.common.key_id.clone().unwrap_or_default(), Arc::new(key));
        }
    }
    if keys.is_empty() {
        return Err(JwksFetchError::Invalid("no usable signature keys".into()));
    }
    Ok(keys)
}

fn is_sandbox_key(jwk: &Jwk) -> bool {
    use jsonwebtoken::jwk::AlgorithmParameters;
    matches!(&jwk.algorithm, AlgorithmParameters::EllipticCurve(ec) if ec.x == SANDBOX_KEY_X)
}

fn verification_key(jwk: &Jwk) -> Option<VerificationKey> {
    use jsonwebtoken::jwk::AlgorithmParameters;
    // Symmetric keys in a JWKS would let anyone holding the (public) set forge tokens.
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        return None;
    }
    if matches!(&jwk.common.public_key_use, Some(usage) if *usage != PublicKeyUse::Signature) {
        return None;
    }
    let algorithm = match jwk.common.key_algorithm {
        Some(alg) => Some(alg.to_string().parse::<Algorithm>().ok()?),
        None => None,
    };
    let decoding = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerificationKey {
        decoding,
        algorithm,
    })
}
