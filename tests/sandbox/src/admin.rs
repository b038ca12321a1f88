//! The admin surface every simulated service has: call counters and fault injection.
//!
//! `GET /__stats` returns `{"calls": {"GET /orders": 3, …}, "total": 3}`; `DELETE /__stats`
//! resets it. `PUT /__faults` sets `{latency_ms, jitter_ms, error_rate, outage}`: added
//! delay, random extra delay up to `jitter_ms`, the fraction of calls answered 500, and
//! `outage: true` = every call answered 503. Faulted calls are counted like any other.
//! `GET /__requests?limit=N` returns the last N requests received (at most
//! [`REQUESTS_KEPT`]), newest last: method, path and the headers a BFF is meant to send
//! (`traceparent`, `x-request-id`, `x-consumer-id`, `x-switchyard-deadline-ms`,
//! `idempotency-key`), so tests and demos can see what reached the service.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::data::Rng;

/// Faults injected into a simulated service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Delay added to every call.
    pub latency_ms: u64,
    /// Random extra delay, uniform in `0..=jitter_ms`.
    pub jitter_ms: u64,
    /// Fraction (0–1) of calls answered `500`.
    pub error_rate: f64,
    /// Answer every call `503`.
    pub outage: bool,
}

impl Faults {
    /// Sets one fault from a `key=value` pair (the launcher's `--fault` flag).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let bad = |e: &dyn std::fmt::Display| format!("bad value {value:?} for {key}: {e}");
        match key {
            "latency_ms" => self.latency_ms = value.parse().map_err(|e| bad(&e))?,
            "jitter_ms" => self.jitter_ms = value.parse().map_err(|e| bad(&e))?,
            "error_rate" => {
                let rate: f64 = value.parse().map_err(|e| bad(&e))?;
                if !(0.0..=1.0).contains(&rate) {
                    return Err(format!("error_rate must be within 0..=1, got {rate}"));
                }
                self.error_rate = rate;
            }
            "outage" => self.outage = value.parse().map_err(|e| bad(&e))?,
            _ => {
                return Err(format!(
                    "unknown fault {key:?} (expected latency_ms, jitter_ms, error_rate or outage)"
                ));
            }
        }
        Ok(())
    }
}

/// Counters and faults of one simulated service, shared with its handlers.
#[derive(Clone, Default)]
pub struct Admin {
    inner: Arc<Mutex<AdminState>>,
}

#[derive(Default)]
struct AdminState {
    calls: BTreeMap<String, u64>,
    /// The last [`REQUESTS_KEPT`] requests, oldest first.
    requests: std::collections::VecDeque<ReceivedRequest>,
    faults: Faults,
    rng: Option<Rng>,
}

/// Requests remembered for `GET /__requests`.
pub const REQUESTS_KEPT: usize = 200;

/// The headers `GET /__requests` reports.
const REPORTED_HEADERS: [&str; 5] = [
    "traceparent",
    "x-request-id",
    "x-consumer-id",
    "x-switchyard-deadline-ms",
    "idempotency-key",
];

/// One request a simulated service received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The reported headers that were present.
    pub headers: BTreeMap<String, String>,
}

/// What `GET /__stats` returns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Calls per endpoint, keyed `"METHOD /route/{param}"`.
    pub calls: BTreeMap<String, u64>,
    /// Sum of `calls`.
    pub total: u64,
}

impl Stats {
    /// Calls to one endpoint, e.g. `stats.get("GET /customers")`.
    pub fn get(&self, endpoint: &str) -> u64 {
        self.calls.get(endpoint).copied().unwrap_or(0)
    }
}

impl Admin {
    /// An admin surface starting with `faults`.
    pub fn with_faults(faults: Faults) -> Self {
        let admin = Self::default();
        admin.lock().faults = faults;
        admin
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AdminState> {
        // Counters stay usable even if a handler panicked while holding the lock.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Current counters.
    pub fn stats(&self) -> Stats {
        let state = self.lock();
        Stats {
            total: state.calls.values().sum(),
            calls: state.calls.clone(),
        }
    }

    /// Current faults.
    pub fn faults(&self) -> Faults {
        self.lock().faults
    }

    /// Replaces the faults.
    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// The last `limit` requests received, oldest first.
    pub fn requests(&self, limit: usize) -> Vec<ReceivedRequest> {
        let state = self.lock();
        let skip = state.requests.len().saturating_sub(limit);
        state.requests.iter().skip(skip).cloned().collect()
    }

    /// Counts a call to `endpoint`, remembers `received`, and decides the call's fate under
    /// the current faults.
    fn record(
        &self,
        endpoint: String,
        received: ReceivedRequest,
    ) -> (Duration, Option<StatusCode>) {
        let mut state = self.lock();
        *state.calls.entry(endpoint).or_default() += 1;
        if state.requests.len() == REQUESTS_KEPT {
            state.requests.pop_front();
        }
        state.requests.push_back(received);
        let faults = state.faults;
        let rng = state.rng.get_or_insert_with(|| Rng::new(0xFA017));
        let jitter = if faults.jitter_ms > 0 {
            rng.below(faults.jitter_ms + 1)
        } else {
            0
        };
        let fail = if faults.outage {
            Some(StatusCode::SERVICE_UNAVAILABLE)
        } else if faults.error_rate > 0.0 && rng.unit() < faults.error_rate {
            Some(StatusCode::INTERNAL_SERVER_ERROR)
        } else {
            None
        };
        (Duration::from_millis(faults.latency_ms + jitter), fail)
    }

    /// Wraps a service's routes with counting and fault injection, and adds the admin
    /// routes (which are neither counted nor faulted).
    pub fn wrap(&self, service_routes: Router) -> Router {
        let admin_routes = Router::new()
            .route("/__stats", get(get_stats).delete(reset_stats))
            .route("/__faults", get(get_faults).put(put_faults))
            .route("/__requests", get(get_requests))
            .with_state(self.clone());
        service_routes
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                count_and_fault,
            ))
            .merge(admin_routes)
    }
}

async fn count_and_fault(State(admin): State<Admin>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let headers = REPORTED_HEADERS
        .iter()
        .filter_map(|name| {
            let value = request.headers().get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.to_owned()))
        })
        .collect();
    let received = ReceivedRequest {
        method: request.method().to_string(),
        path: request.uri().path_and_query().map_or_else(
            || request.uri().path().to_owned(),
            |p| p.as_str().to_owned(),
        ),
        headers,
    };
    let (delay, fail) = admin.record(format!("{} {route}", request.method()), received);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match fail {
        Some(status) => {
            (status, Json(serde_json::json!({"error": "injected fault"}))).into_response()
        }
        None => next.run(request).await,
    }
}

async fn get_stats(State(admin): State<Admin>) -> Json<Stats> {
    Json(admin.stats())
}

#[derive(Deserialize)]
struct RequestsQuery {
    limit: Option<usize>,
}

async fn get_requests(
    State(admin): State<Admin>,
    axum::extract::Query(query): axum::extract::Query<RequestsQuery>,
) -> Json<Vec<ReceivedRequest>> {
    Json(admin.requests(query.limit.unwrap_or(20).min(REQUESTS_KEPT)))
}

async fn reset_stats(State(admin): State<Admin>) -> StatusCode {
    admin.lock().calls.clear();
    StatusCode::NO_CONTENT
}

async fn get_faults(State(admin): State<Admin>) -> Json<Faults> {
    Json(admin.faults())
}

async fn put_faults(State(admin): State<Admin>, Json(faults): Json<Faults>) -> Response {
    if !(0.0..=1.0).contains(&faults.error_rate) {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "error_rate must be within 0..=1"})),
        )
            .into_response();
    }
    admin.set_faults(faults);
    Json(faults).into_response()
}
