//! The configuration section of authentication (`auth.*`): where signing keys come from,
//! which tokens are acceptable, and the API keys of internal services.

use std::collections::HashSet;
use std::path::PathBuf;

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};

use super::principal::Scope;
use crate::config::{
    ConfigError, DEFAULT_AUDIENCE, Profile, SANDBOX_ISSUER, SANDBOX_ISSUER_ADDR, Validate,
    require_positive, validate_http_url,
};
use crate::domain::Tier;

/// How bearer tokens are verified.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// JWKS endpoint; fetched at start-up and again when a token names an unknown `kid`.
    pub jwks_url: Option<String>,
    /// JWKS file, read once at start-up; takes precedence over `jwks_url`.
    pub jwks_file: Option<PathBuf>,
    /// Accepted `iss` values.
    pub issuers: Vec<String>,
    /// Accepted `aud` values (a token must carry one of them).
    pub audiences: Vec<String>,
    /// Accepted signing algorithms (asymmetric only: HMAC and `none` are never accepted).
    pub algorithms: Vec<String>,
    /// Clock-skew allowance for `exp` and `nbf`.
    pub leeway_secs: u64,
    /// Minimum time between two JWKS fetches triggered by unknown `kid`s.
    pub jwks_refresh_cooldown_secs: u64,
    /// Timeout of one JWKS fetch.
    pub jwks_timeout_ms: u64,
    /// How long a token that verified is answered from memory (never past its `exp`, and
    /// forgotten when the signing keys change); 0 verifies every request.
    pub token_cache_secs: u64,
    /// How many verified tokens are remembered at most.
    pub token_cache_entries: u64,
    /// API keys of internal services (`Authorization: ApiKey <key>`), stored only as
    /// SHA-256 digests. Empty (the default): API keys are not accepted.
    pub api_keys: Vec<ApiKeyConfig>,
}

/// One API key: who it stands for and what it may do. The key itself is never configured,
/// only its SHA-256 digest (`printf %s "$KEY" | sha256sum`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The consumer the key authenticates as (the principal's subject and client id).
    pub id: String,
    /// SHA-256 of the key, 64 hex digits.
    pub sha256: String,
    /// Scopes granted, e.g. `["data:orders:read", "data:admin"]`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Usage-plan tier of the consumer.
    #[serde(default = "default_api_key_tier")]
    pub tier: Tier,
}

fn default_api_key_tier() -> Tier {
    Tier::Free
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwks_url: Some(format!(
                "http://{SANDBOX_ISSUER_ADDR}/.well-known/jwks.json"
            )),
            jwks_file: None,
            issuers: vec![SANDBOX_ISSUER.to_owned()],
            audiences: vec![DEFAULT_AUDIENCE.to_owned()],
            algorithms: vec!["RS256".into(), "ES256".into(), "EdDSA".into()],
            leeway_secs: 30,
            jwks_refresh_cooldown_secs: 30,
            jwks_timeout_ms: 2_000,
            token_cache_secs: 60,
            token_cache_entries: 10_000,
            api_keys: Vec::new(),
        }
    }
}

impl Validate for AuthConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        match (&self.jwks_file, &self.jwks_url) {
            (Some(_), _) => {}
            (None, Some(url)) => {
                validate_http_url("auth.jwks_url", url)?;
            }
            (None, None) => {
                return Err(ConfigError::invalid(
                    "auth.jwks_url",
                    "one of auth.jwks_url or auth.jwks_file must be set",
                ));
            }
        }
        if self.issuers.is_empty() {
            return Err(ConfigError::invalid(
                "auth.issuers",
                "expected at least one issuer",
            ));
        }
        if self.audiences.is_empty() {
            return Err(ConfigError::invalid(
                "auth.audiences",
                "expected at least one audience",
            ));
        }
        parse_algorithms(&self.algorithms)?;
        validate_api_keys(&self.api_keys)?;
        require_positive("auth.jwks_timeout_ms", self.jwks_timeout_ms)
    }
}

/// Parses configured algorithm names, refusing anything but asymmetric signatures.
pub fn parse_algorithms(names: &[String]) -> Result<Vec<Algorithm>, ConfigError> {
    if names.is_empty() {
        return Err(ConfigError::invalid(
            "auth.algorithms",
            "expected at least one algorithm",
        ));
    }
    names
        .iter()
        .map(|name| {
            let alg: Algorithm = name.parse().map_err(|_| {
                ConfigError::invalid("auth.algorithms", format!("unknown algorithm {name:?}"))
            })?;
            if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
                return Err(ConfigError::invalid(
                    "auth.algorithms",
                    format!("{name} is symmetric; only RS*, PS*, ES* and EdDSA are accepted"),
                ));
            }
            Ok(alg)
        })
        .collect()
}

impl AuthConfig {
    /// What `profile` adds to validation: production refuses a JWKS on loopback, which is
    /// where the sandbox's issuer runs.
    pub fn validate_for(&self, profile: Profile) -> Result<(), ConfigError> {
        if !profile.is_production() || self.jwks_file.is_some() {
            return Ok(());
        }
        let Some(url) = &self.jwks_url else {
            return Ok(());
        };
        let url = validate_http_url("auth.jwks_url", url)?;
        let host = url.host_str().unwrap_or_default();
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            return Err(ConfigError::invalid(
                "auth.jwks_url",
                "profile \"production\" refuses a JWKS on loopback (the sandbox's issuer); point it at your identity provider",
            ));
        }
        Ok(())
    }
}

fn validate_api_keys(keys: &[ApiKeyConfig]) -> Result<(), ConfigError> {
    let mut ids = HashSet::new();
    for (index, key) in keys.iter().enumerate() {
        let at = |field: &str| format!("auth.api_keys[{index}].{field}");
        if key.id.is_empty() || key.id.len() > 64 || !key.id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::invalid(
                at("id"),
                "expected 1 to 64 printable characters",
            ));
        }
        if !ids.insert(key.id.as_str()) {
            return Err(ConfigError::invalid(
                at("id"),
                format!("{:?} is used by another key", key.id),
            ));
        }
        if parse_digest(&key.sha256).is_none() {
            return Err(ConfigError::invalid(
                at("sha256"),
                "expected the key's SHA-256 digest as 64 hex digits",
            ));
        }
        if let Some(unknown) = key.scopes.iter().find(|name| Scope::parse(name).is_none()) {
            let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            return Err(ConfigError::invalid(
                at("scopes"),
                format!("unknown scope {unknown:?}; known: {}", known.join(", ")),
            ));
        }
    }
    Ok(())
}

/// The 32 bytes of a 64-hex-digit SHA-256 digest, or `None` if `hex` is not one.
pub(crate) fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0; 32];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let high = (pair[0] as char).to_digit(16)?;
        let low = (pair[1] as char).to_digit(16)?;
        *byte = (high * 16 + low) as u8;
    }
    Some(out)
}
