//! Tokens already verified: a client sends the same bearer token with every request until
//! it expires, and checking its signature again each time is the largest fixed cost of a
//! request (an ES256 verification is tens of microseconds). A token that verified is
//! remembered, keyed by its SHA-256 digest (the token itself is not kept), and answers the
//! same [`Principal`] until the first of:
//!
//! - its `exp` (compared without leeway, so a remembered token never outlives what the
//!   validator would accept),
//! - `auth.token_cache_secs` after it was verified,
//! - any change of the signing keys (a JWKS fetch): a token signed by a key that was
//!   withdrawn is verified again, and then refused.
//!
//! Failures are never remembered: a bad token is checked, and refused, every time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;

use super::principal::Principal;

/// What is remembered of one verified token.
#[derive(Clone)]
struct Verified {
    principal: Principal,
    /// The token's `exp`, seconds since the Unix epoch.
    expires_at: u64,
    /// The key-set generation the signature was checked against.
    keys_generation: u64,
}

/// Verified tokens, bounded in number and age.
pub(super) struct VerifiedTokens {
    entries: moka::sync::Cache<TokenDigest, Verified>,
}

/// The cache key of a token: its SHA-256 digest.
pub(super) type TokenDigest = [u8; 32];

/// The digest `token` is remembered under.
pub(super) fn digest_of(token: &str) -> TokenDigest {
    let mut key = [0; 32];
    key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    key
}

/// Seconds since the Unix epoch.
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

impl VerifiedTokens {
    /// A cache of at most `capacity` tokens, each kept at most `max_age`; `None` when
    /// either is zero (caching switched off).
    pub(super) fn new(capacity: u64, max_age: Duration) -> Option<Self> {
        (capacity > 0 && !max_age.is_zero()).then(|| Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(max_age)
                .build(),
        })
    }

    /// The principal of the token with `digest` if it was verified against keys of
    /// `keys_generation` and has not expired at `now` (Unix seconds).
    pub(super) fn get(
        &self,
        digest: &TokenDigest,
        keys_generation: u64,
        now: u64,
    ) -> Option<Principal> {
        let entry = self.entries.get(digest)?;
        if entry.keys_generation == keys_generation && now < entry.expires_at {
            Some(entry.principal)
        } else {
            self.entries.invalidate(digest);
            None
        }
    }

    /// Remembers that the token with `digest` verified against keys of `keys_generation`.
    pub(super) fn remember(
        &self,
        digest: TokenDigest,
        principal: &Principal,
        expires_at: u64,
        keys_generation: u64,
        now: u64,
    ) {
        if now < expires_at {
            self.entries.insert(
                digest,
                Verified {
                    principal: principal.clone(),
                    expires_at,
                    keys_generation,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Tier;

    fn principal(sub: &str) -> Principal {
        Principal::new(sub.to_owned(), ["data:orders:read"], Tier::Pro, None)
    }

    fn cache() -> VerifiedTokens {
        VerifiedTokens::new(100, Duration::from_secs(60)).expect("enabled")
    }

    #[test]
    fn a_remembered_token_answers_its_principal_until_it_expires() {
        let cache = cache();
        cache.remember(digest_of("token-a"), &principal("cus_1"), 1_000, 7, 900);
        let hit = cache
            .get(&digest_of("token-a"), 7, 999)
            .expect("remembered");
        assert_eq!(hit.subject, "cus_1");
        assert!(
            cache.get(&digest_of("token-a"), 7, 1_000).is_none(),
            "expired at exp"
        );
        assert!(
            cache.get(&digest_of("token-a"), 7, 999).is_none(),
            "dropped once expired"
        );
    }

    #[test]
    fn a_change_of_signing_keys_forgets_every_token() {
        let cache = cache();
        cache.remember(digest_of("token-a"), &principal("cus_1"), 1_000, 7, 900);
        assert!(cache.get(&digest_of("token-a"), 8, 901).is_none());
    }

    #[test]
    fn only_the_exact_token_matches() {
        let cache = cache();
        cache.remember(digest_of("token-a"), &principal("cus_1"), 1_000, 7, 900);
        assert!(cache.get(&digest_of("token-b"), 7, 901).is_none());
        assert!(cache.get(&digest_of("token-a "), 7, 901).is_none());
    }

    #[test]
    fn an_already_expired_token_is_not_remembered() {
        let cache = cache();
        cache.remember(digest_of("token-a"), &principal("cus_1"), 900, 7, 900);
        assert!(cache.get(&digest_of("token-a"), 7, 800).is_none());
    }

    #[test]
    fn zero_capacity_or_age_switches_caching_off() {
        assert!(VerifiedTokens::new(0, Duration::from_secs(60)).is_none());
        assert!(VerifiedTokens::new(100, Duration::ZERO).is_none());
    }
}
