//! Fuzzes bearer-token verification (`Authenticator::verify`): the JOSE header and claims
//! parsers and every check after them.
//!
//! The first byte picks what the rest is:
//! - `0`: a whole token string;
//! - `1`: header, claims and signature (split at `0xFF` bytes), base64url-encoded and
//!   joined, unsigned: never accepted;
//! - otherwise: header and claims, signed with the sandbox's key, so that claims the
//!   signature check would otherwise stop reach the claim checks; an accepted token's
//!   claims must name the sandbox issuer and audience, be unexpired and give the subject.

#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use switchyard_core::auth::{AuthConfig, Authenticator};

#[path = "common.rs"]
mod common;

struct Target {
    runtime: tokio::runtime::Runtime,
    authenticator: Authenticator,
    key: EncodingKey,
}

static TARGET: LazyLock<Target> = LazyLock::new(|| {
    let key = common::signing_key();
    let path = common::jwks_file("jwt");
    let config = AuthConfig {
        jwks_file: Some(path),
        // Every input is verified, not answered from the cache of verified tokens.
        token_cache_secs: 0,
        ..AuthConfig::default()
    };
    let runtime = common::runtime();
    let authenticator = runtime.block_on(async { Authenticator::new(&config) }).expect("authenticator");
    Target { runtime, authenticator, key }
});

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let target = &*TARGET;
    let mut parts = rest.splitn(3, |b| *b == 0xFF);
    let (header, claims, signature) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let (token, signed) = match mode {
        0 => (String::from_utf8_lossy(rest).into_owned(), false),
        1 => (format!("{}.{}.{}", b64(header), b64(claims), b64(signature)), false),
        _ => {
            let message = format!("{}.{}", b64(header), b64(claims));
            let Ok(signature) = jsonwebtoken::crypto::sign(message.as_bytes(), &target.key, Algorithm::ES256) else {
                return;
            };
            (format!("{message}.{signature}"), true)
        }
    };
    let verdict = target.runtime.block_on(target.authenticator.verify(&token));
    let Ok(principal) = verdict else {
        return;
    };
    assert!(signed, "an unsigned or foreign token was accepted: {token}");
    let claims: serde_json::Value = serde_json::from_slice(claims).expect("accepted claims are JSON");
    assert_eq!(claims["iss"], "switchyard-sandbox", "{claims}");
    let audience_ok = claims["aud"] == "switchyard"
        || claims["aud"].as_array().is_some_and(|a| a.iter().any(|v| v == "switchyard"));
    assert!(audience_ok, "{claims}");
    let now = jsonwebtoken::get_current_timestamp();
    assert!(claims["exp"].as_u64().is_some_and(|exp| exp + 60 >= now), "expired: {claims}");
    assert_eq!(claims["sub"].as_str(), Some(principal.subject.as_str()));
});
