//! Authentication shared by every BFF: bearer JWTs, and API keys for internal services.
//!
//! [`Authenticator`] verifies a JWT against keys from a JWKS (`jwks.rs`), enforcing the
//! algorithm allowlist, `iss`, `aud`, `exp` and `nbf`, or looks an API key up among the
//! configured digests (`api_key.rs`), and yields a [`Principal`]. The [`middleware`]
//! function wraps it as axum middleware that renders failures through the BFF's own
//! [`ErrorResponder`], so a GraphQL client gets GraphQL errors and a CBOR device CBOR.
//!
//! Files, bottom up: `error.rs` (`AuthError`), `principal.rs` (who is calling, scopes,
//! PII masking), `config.rs` (the `auth.*` section), `jwks.rs` (signing keys),
//! `verified.rs` (tokens verified recently), `api_key.rs`, and this file, which joins them.

mod api_key;
mod config;
mod error;
mod jwks;
mod principal;
mod verified;

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::HeaderMap;
use http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use self::api_key::ApiKeys;
pub use self::api_key::api_key_digest;
pub use self::config::{ApiKeyConfig, AuthConfig, parse_algorithms};
pub use self::error::AuthError;
pub use self::jwks::{JwksFetchError, KeyStore};
pub use self::principal::{Principal, Scope, mask_email, mask_phone};
use crate::config::{ConfigError, Profile};
use crate::domain::Tier;
use crate::metrics::RequestRecord;
use crate::response::{ErrorResponder, LayerFuture};

/// The claims Switchyard reads; `exp`, `nbf`, `iss` and `aud` are checked by the validator.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    azp: Option<String>,
}

/// Verifies bearer tokens and turns them into [`Principal`]s.
#[derive(Clone)]
pub struct Authenticator {
    keys: Arc<KeyStore>,
    /// Tokens that verified recently (`None` when `auth.token_cache_secs` is 0).
    verified: Option<Arc<verified::VerifiedTokens>>,
    /// One validation per accepted algorithm: jsonwebtoken requires all algorithms of a
    /// validation to belong to the key's family.
    validations: Arc<Vec<(Algorithm, Validation)>>,
    /// The configured API keys (empty: the `ApiKey` scheme is not accepted).
    api_keys: Arc<ApiKeys>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    leeway_secs: u64,
}

/// Longest token accepted; a longer one is refused before it is decoded or hashed.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

impl Authenticator {
    /// An authenticator for `config`. A JWKS file is read now; a JWKS URL is fetched by
    /// [`Authenticator::prime`] or on the first token.
    pub fn new(config: &AuthConfig) -> Result<Self, ConfigError> {
        Self::for_profile(config, Profile::Development)
    }

    /// Like [`Authenticator::new`]; the production profile refuses the sandbox's
    /// development signing key.
    pub fn for_profile(config: &AuthConfig, profile: Profile) -> Result<Self, ConfigError> {
        let algorithms = parse_algorithms(&config.algorithms)?;
        let keys = KeyStore::from_config(config, profile.is_production())?;
        let validations = algorithms
            .into_iter()
            .map(|alg| {
                let mut validation = Validation::new(alg);
                validation.set_issuer(&config.issuers);
                validation.set_audience(&config.audiences);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                validation.validate_nbf = true;
                validation.leeway = config.leeway_secs;
                (alg, validation)
            })
            .collect();
        Ok(Self {
            keys: Arc::new(keys),
            verified: verified::VerifiedTokens::new(
                config.token_cache_entries,
                std::time::Duration::from_secs(config.token_cache_secs),
            )
            .map(Arc::new),
            validations: Arc::new(validations),
            api_keys: Arc::new(ApiKeys::new(&config.api_keys)),
            leeway_secs: config.leeway_secs,
        })
    }

    /// Fetches the JWKS now (start-up), so the first request does not pay for it.
    pub async fn prime(&self) -> Result<(), JwksFetchError> {
        self.keys.refresh_now().await
    }

    /// [`Authenticator::prime`] at start-up: a failure is logged, not fatal, because the
    /// keys are fetched again on demand and `/readyz` reports them missing meanwhile.
    pub async fn prime_or_warn(&self) {
        if let Err(error) = self.prime().await {
            tracing::warn!(%error, "signing keys not loaded yet; /readyz reports not ready");
        }
    }

    /// Retries loading the keys, at most once per JWKS cooldown (for readiness checks).
    pub async fn retry_keys(&self) -> Result<(), JwksFetchError> {
        self.keys.refresh_if_due().await
    }

    /// Whether signing keys are loaded (part of readiness).
    pub fn has_keys(&self) -> bool {
        self.keys.has_keys()
    }

    /// Authenticates the credentials in `headers`: a bearer token, or an API key when any
    /// are configured.
    /// The request's [`RequestRecord`] notes the consumer.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        if let Some(answer) = self.authenticate_now(headers) {
            return answer;
        }
        // Only a bearer token whose signature is to be checked gets here.
        let Credentials::Bearer(token) = credentials(headers)? else {
            return Err(AuthError::Missing);
        };
        let principal = self.verify(token).await?;
        note_consumer(&principal);
        Ok(principal)
    }

    /// [`Authenticator::authenticate`] when it needs no signature check: credentials
    /// refused at sight, an API key, or a token verified recently. `None` when a signature
    /// is to be checked (which may wait for the signing keys).
    pub fn authenticate_now(&self, headers: &HeaderMap) -> Option<Result<Principal, AuthError>> {
        let answer = match credentials(headers) {
            Err(error) => Err(error),
            Ok(Credentials::Bearer(token)) => self.verify_now(token)?,
            Ok(Credentials::ApiKey(key)) if !self.api_keys.is_empty() => self.api_keys.verify(key),
            // Without configured keys the scheme means nothing here, like any other scheme.
            Ok(Credentials::ApiKey(_)) => Err(AuthError::Missing),
        };
        if let Ok(principal) = &answer {
            note_consumer(principal);
        }
        Some(answer)
    }

    /// [`Authenticator::verify`] without a signature check: a token refused at sight, or
    /// one verified recently. `None` when the signature is to be checked.
    fn verify_now(&self, token: &str) -> Option<Result<Principal, AuthError>> {
        if token.len() > MAX_TOKEN_BYTES {
            return Some(Err(AuthError::Invalid("token too large")));
        }
        let verified = self.verified.as_ref()?;
        verified
            .get(
                &verified::digest_of(token),
                self.keys.generation(),
                verified::unix_now(),
            )
            .map(Ok)
    }

    /// Verifies one compact JWT, or answers from the tokens verified recently.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if let Some(answer) = self.verify_now(token) {
            return answer;
        }
        let Some(verified) = &self.verified else {
            return self
                .verify_signature(token)
                .await
                .map(|(principal, _)| principal);
        };
        // The digest again: a signature check costs far more than it.
        let digest = verified::digest_of(token);
        let generation = self.keys.generation();
        let (principal, expires_at) = self.verify_signature(token).await?;
        verified.remember(
            digest,
            &principal,
            expires_at,
            generation,
            verified::unix_now(),
        );
        Ok(principal)
    }

    /// Whether `token` would be answered from the tokens verified recently, without a
    /// signature check (for diagnostics and tests).
    pub fn remembers(&self, token: &str) -> bool {
        self.verified.as_ref().is_some_and(|verified| {
            verified
                .get(
                    &verified::digest_of(token),
                    self.keys.generation(),
                    verified::unix_now(),
                )
                .is_some()
        })
    }

    /// Checks the token's signature and claims; returns its principal and `exp`.
    async fn verify_signature(&self, token: &str) -> Result<(Principal, u64), AuthError> {
        // Headers naming `none` or an unknown algorithm do not even parse.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("malformed token"))?;
        // RFC 8725: only the token types meant for us, and no critical extensions we would
        // have to understand.
        if header.typ.as_deref().is_some_and(|typ| {
            !typ.eq_ignore_ascii_case("JWT") && !typ.eq_ignore_ascii_case("at+jwt")
        }) {
            return Err(AuthError::Invalid("token type not accepted"));
        }
        if header.crit.is_some() {
            return Err(AuthError::Invalid(
                "critical header parameters not supported",
            ));
        }
        let validation = self
            .validations
            .iter()
            .find_map(|(alg, validation)| (*alg == header.alg).then_some(validation))
            .ok_or(AuthError::Invalid("signing algorithm not accepted"))?;
        let key = self.keys.key_for(header.kid.as_deref()).await?;
        if key.algorithm.is_some_and(|alg| alg != header.alg) {
            return Err(AuthError::Invalid(
                "signing algorithm does not match the key",
            ));
        }
        let data = jsonwebtoken::decode::<Claims>(token, &key.decoding, validation)
            .map_err(|e| AuthError::Invalid(describe_jwt_error(e.kind())))?;
        let now = jsonwebtoken::get_current_timestamp();
        if data
            .claims
            .iat
            .is_some_and(|iat| iat > now.saturating_add(self.leeway_secs))
        {
            return Err(AuthError::Invalid("token issued in the future"));
        }
        let expires_at = data.claims.exp;
        Ok((
            principal_from_claims(data.claims)?.with_expiry(expires_at),
            expires_at,
        ))
    }
}

fn principal_from_claims(claims: Claims) -> Result<Principal, AuthError> {
    if claims.sub.is_empty() {
        return Err(AuthError::Invalid("empty subject"));
    }
    let tier = match claims.tier.as_deref() {
        None => Tier::Free,
        Some(value) => Tier::parse(value).ok_or(AuthError::Invalid("unknown tier"))?,
    };
    Ok(Principal::new(
        claims.sub,
        claims.scope.split_ascii_whitespace(),
        tier,
        claims.client_id.or(claims.azp),
    ))
}

fn describe_jwt_error(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::ExpiredSignature => "token expired",
        K::ImmatureSignature => "token not yet valid",
        K::InvalidIssuer => "issuer not accepted",
        K::InvalidAudience => "audience not accepted",
        K::InvalidSignature => "bad signature",
        K::InvalidAlgorithm | K::InvalidAlgorithmName => "signing algorithm not accepted",
        K::MissingRequiredClaim(_) => "required claim missing",
        K::InvalidKeyFormat => "key does not fit the signing algorithm",
        _ => "malformed token",
    }
}

/// What the `Authorization` header carries.
enum Credentials<'a> {
    /// `Bearer <jwt>`.
    Bearer(&'a str),
    /// `ApiKey <key>`.
    ApiKey(&'a str),
}

/// The credentials of the single `Authorization` header (scheme case-insensitive).
///
/// Credentials are read from this header only, never from the query string or cookies.
/// Notes on the request's record whose request it is.
fn note_consumer(principal: &Principal) {
    RequestRecord::note_consumer(
        &principal.subject,
        principal.tier.as_str(),
        principal.client_id.as_deref(),
    );
}

fn credentials(headers: &HeaderMap) -> Result<Credentials<'_>, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthError::Missing)?;
    if values.next().is_some() {
        return Err(AuthError::Invalid("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::Invalid("malformed Authorization header"))?;
    let (scheme, credential) = value
        .split_once(' ')
        .ok_or(AuthError::Invalid("malformed Authorization header"))?;
    let credential = credential.trim();
    if credential.is_empty() {
        return Err(AuthError::Missing);
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Credentials::Bearer(credential))
    } else if scheme.eq_ignore_ascii_case("apikey") {
        Ok(Credentials::ApiKey(credential))
    } else {
        Err(AuthError::Missing)
    }
}

/// State of the [`middleware`]: the authenticator and how to render its failures.
#[derive(Clone)]
pub struct AuthState<R> {
    authenticator: Authenticator,
    responder: R,
}

impl<R: ErrorResponder> AuthState<R> {
    /// Middleware state rendering failures with `responder`.
    pub fn new(authenticator: Authenticator, responder: R) -> Self {
        Self {
            authenticator,
            responder,
        }
    }
}

/// Axum middleware that authenticates every request it wraps, stores the [`Principal`] in
/// the request extensions (handlers take `Principal` as an argument) and answers 401 with
/// `WWW-Authenticate` itself, rendered in the BFF's format:
///
/// `axum::middleware::from_fn_with_state(AuthState::new(auth, responder), auth::middleware)`
pub async fn middleware<R: ErrorResponder>(
    State(state): State<AuthState<R>>,
    mut request: Request,
    next: Next,
) -> Response {
    match state.authenticator.authenticate(request.headers()).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => reject(&state.responder, &error),
    }
}

/// The layer every authenticated route group of a BFF wears:
/// `router.route_layer(auth::layer(authenticator, responder))`. Like [`middleware`], it
/// stores the [`Principal`] for the handler, or answers 401 itself with
/// `WWW-Authenticate`, rendered by `responder` in the BFF's format; the handler (and so
/// every upstream) is never reached without a valid credential.
pub fn layer<R: ErrorResponder>(authenticator: Authenticator, responder: R) -> AuthLayer<R> {
    AuthLayer {
        state: Arc::new(AuthState::new(authenticator, responder)),
    }
}

/// See [`layer`]. One shared allocation, so a clone per request is one increment.
#[derive(Clone)]
pub struct AuthLayer<R> {
    state: Arc<AuthState<R>>,
}

impl<S, R> tower::Layer<S> for AuthLayer<R> {
    type Service = AuthService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            state: Arc::clone(&self.state),
        }
    }
}

/// The service [`AuthLayer`] wraps a route in.
#[derive(Clone)]
pub struct AuthService<S, R> {
    inner: S,
    state: Arc<AuthState<R>>,
}

impl<S, R> tower::Service<Request> for AuthService<S, R>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    R: ErrorResponder,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = LayerFuture<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    /// Most requests are decided here, at once: a token verified recently, an API key, or
    /// credentials refused at sight. Then the route is called directly and its future is
    /// this one's. Only a signature to check takes an async path, boxed so that the common
    /// path's future does not carry its state.
    fn call(&mut self, mut request: Request) -> Self::Future {
        match self.state.authenticator.authenticate_now(request.headers()) {
            Some(Ok(principal)) => {
                request.extensions_mut().insert(principal);
                LayerFuture::routed(self.inner.call(request))
            }
            Some(Err(error)) => LayerFuture::answered(reject(&self.state.responder, &error)),
            None => {
                // The clone that was polled ready serves this request (tower's usual dance).
                let fresh = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, fresh);
                let state = Arc::clone(&self.state);
                LayerFuture::waiting(Box::pin(async move {
                    match state.authenticator.authenticate(request.headers()).await {
                        Ok(principal) => {
                            request.extensions_mut().insert(principal);
                            inner.call(request).await
                        }
                        Err(error) => Ok(reject(&state.responder, &error)),
                    }
                }))
            }
        }
    }
}

/// The response for an auth failure, with its `WWW-Authenticate` challenge.
pub fn reject<R: ErrorResponder>(responder: &R, error: &AuthError) -> Response {
    let mut response = responder.respond(error.code(), &error.to_string());
    response
        .headers_mut()
        .insert(WWW_AUTHENTICATE, error.www_authenticate());
    response
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        // Taken, not copied: the auth layer put it there for this handler alone.
        parts.extensions.remove::<Principal>().ok_or_else(|| {
            tracing::error!("Principal extracted on a route without the auth layer");
            http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        })
    }
}
