//! API keys for internal services: `Authorization: ApiKey <key>`.
//!
//! Only SHA-256 digests of the keys are configured (`auth.api_keys`), so a leaked config
//! file leaks no key. A presented key is hashed once and compared with every configured
//! digest in constant time, all of them every time, so neither the timing of a comparison
//! nor which key matched tells an attacker anything about the digests.

use aws_lc_rs::{constant_time, digest};

use super::config::{ApiKeyConfig, parse_digest};
use super::error::AuthError;
use super::principal::Principal;

/// Longest key accepted; anything longer is refused before it is hashed.
const MAX_KEY_LEN: usize = 256;

/// The configured API keys, by digest.
pub(crate) struct ApiKeys {
    keys: Vec<([u8; 32], Principal)>,
}

/// The SHA-256 digest of `key` as 64 lower-case hex digits, as `auth.api_keys` stores it.
pub fn api_key_digest(key: &str) -> String {
    digest::digest(&digest::SHA256, key.as_bytes())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl ApiKeys {
    /// The keys of `config` (already validated, so every digest parses).
    pub(crate) fn new(config: &[ApiKeyConfig]) -> Self {
        let keys = config
            .iter()
            .filter_map(|key| {
                let digest = parse_digest(&key.sha256)?;
                let principal = Principal::new(
                    key.id.clone(),
                    key.scopes.iter().map(String::as_str),
                    key.tier,
                    Some(key.id.clone()),
                );
                Some((digest, principal))
            })
            .collect();
        Self { keys }
    }

    /// Whether any key is configured (otherwise the `ApiKey` scheme is not accepted).
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The principal of `key`, or [`AuthError::InvalidApiKey`].
    pub(crate) fn verify(&self, key: &str) -> Result<Principal, AuthError> {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(AuthError::InvalidApiKey);
        }
        let presented = digest::digest(&digest::SHA256, key.as_bytes());
        let mut matched = None;
        for (stored, principal) in &self.keys {
            // Every digest is compared; the loop does not stop at a match.
            let equal = constant_time::verify_slices_are_equal(presented.as_ref(), stored).is_ok();
            if equal {
                matched = Some(principal);
            }
        }
        matched.cloned().ok_or(AuthError::InvalidApiKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::principal::Scope;
    use crate::domain::Tier;

    fn keys() -> ApiKeys {
        ApiKeys::new(&[ApiKeyConfig {
            id: "stock-sync".into(),
            sha256: api_key_digest("correct horse battery staple"),
            scopes: vec!["data:inventory:read".into()],
            tier: Tier::Enterprise,
        }])
    }

    #[test]
    fn the_configured_key_authenticates_as_its_id_with_its_scopes_and_tier() {
        let principal = keys()
            .verify("correct horse battery staple")
            .expect("known key");
        assert_eq!(principal.subject, "stock-sync");
        assert!(principal.has(Scope::InventoryRead));
        assert!(!principal.has(Scope::OrdersRead));
        assert_eq!(principal.tier, Tier::Enterprise);
    }

    #[test]
    fn other_keys_empty_keys_and_huge_keys_are_refused() {
        let keys = keys();
        for key in ["correct horse battery stapl", "", &"k".repeat(10_000)] {
            assert_eq!(keys.verify(key), Err(AuthError::InvalidApiKey));
        }
    }

    #[test]
    fn digests_parse_in_either_case_and_nothing_else_does() {
        let digest = api_key_digest("k");
        assert!(parse_digest(&digest).is_some());
        assert!(parse_digest(&digest.to_uppercase()).is_some());
        assert!(parse_digest(&digest[1..]).is_none());
        assert!(parse_digest(&format!("{}zz", &digest[2..])).is_none());
    }
}
