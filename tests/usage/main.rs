//! Usage plans, admission control and the limit per client address, through the BFFs'
//! real interfaces: in-process stores, and a real Redis (one server and a cluster) shared
//! by several BFFs.

mod address;
mod admission;
mod plans;
mod shared;

use std::collections::BTreeMap;

use axum::body::Body;
use http::Request;
use switchyard_core::domain::Tier;
use switchyard_core::ratelimit::{RateLimitConfig, TierPlan};
use switchyard_tests::{MockUpstreams, Token};

/// Plans where every tier has `burst` units and refills one unit per 1,000 s, so that
/// nothing refills while a test runs.
pub(crate) fn tight(burst: u32) -> RateLimitConfig {
    let plan = TierPlan {
        rate_per_sec: 0.001,
        burst,
        quotas: Vec::new(),
    };
    RateLimitConfig {
        tiers: BTreeMap::from([(Tier::Free, plan.clone()), (Tier::Pro, plan)]),
        ..RateLimitConfig::default()
    }
}

/// `Authorization: Bearer …` of customer `sub` on `tier`.
pub(crate) fn bearer(mocks: &MockUpstreams, sub: &str, tier: &str) -> String {
    let token = Token {
        tier: Some(tier.to_owned()),
        ..Token::customer(sub)
    };
    format!("Bearer {}", token.sign(&mocks.rsa))
}

/// A GET of `uri` with `authorization`.
pub(crate) fn get(uri: &str, authorization: &str) -> Request<Body> {
    Request::get(uri)
        .header("authorization", authorization)
        .body(Body::empty())
        .expect("request")
}

/// The `RateLimit` header's `r` (units remaining).
pub(crate) fn remaining(response: &switchyard_tests::TestResponse) -> u64 {
    let value = response.header("ratelimit").expect("a RateLimit header");
    value
        .split(';')
        .find_map(|part| part.strip_prefix("r="))
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no r= in {value:?}"))
}
