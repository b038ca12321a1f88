//! What the targets that verify tokens share: the sandbox's signing key, a JWKS file
//! holding its public half, and a runtime to drive async code on.

use jsonwebtoken::{Algorithm, EncodingKey, jwk};

const DEV_KEY_PEM: &str = include_str!("../../tests/sandbox/keys/dev-es256.pem");
/// The sandbox key's `kid`.
pub const DEV_KEY_ID: &str = "sandbox-es256-1";

/// The sandbox's signing key.
pub fn signing_key() -> EncodingKey {
    EncodingKey::from_ec_pem(DEV_KEY_PEM.as_bytes()).expect("dev key")
}

/// A JWKS file holding the sandbox key's public half, named for `target`.
pub fn jwks_file(target: &str) -> std::path::PathBuf {
    let mut public = jwk::Jwk::from_encoding_key(&signing_key(), Algorithm::ES256).expect("jwk");
    public.common.key_id = Some(DEV_KEY_ID.to_owned());
    let jwks = jwk::JwkSet { keys: vec![public] };
    let path = std::env::temp_dir().join(format!(
        "switchyard-fuzz-{target}-jwks-{}.json",
        std::process::id()
    ));
    std::fs::write(&path, serde_json::to_vec(&jwks).expect("json")).expect("write jwks");
    path
}

/// A current-thread runtime.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}
