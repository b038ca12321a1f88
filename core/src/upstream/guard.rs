//! The guard: resilience for upstream calls (deadlines, circuit breakers, bulkheads and
//! budgeted retries). Every attempt of the HTTP clients runs inside [`Guard::run`].
//!
//! Every upstream call goes through one [`Guard`] per service, in this order:
//! 1. **Deadline**: a request-wide [`Deadline`](super::Deadline) set by the BFF with
//!    [`with_deadline`](super::with_deadline). No
//!    call starts once it has passed, and each attempt's timeout is the smaller of the
//!    service's own timeout and what remains. The remaining budget goes upstream in the
//!    [`DEADLINE_HEADER`](super::DEADLINE_HEADER) header. A timeout of an attempt that was
//!    given less than half of a fair chance (the service's timeout, or the request's whole
//!    budget if shorter), because the deadline was nearly spent by earlier calls, is not
//!    held against the service's breaker.
//! 2. **Circuit breaker** (the `failsafe` crate): it opens on consecutive failures, or on a
//!    low success rate over a window. An open breaker fails fast with
//!    `UPSTREAM_UNAVAILABLE` and never touches the network. After a jittered exponential
//!    backoff it lets one probe through at a time (others fail fast meanwhile); a success
//!    closes it, a failure re-opens it. Failures
//!    are connect errors, timeouts, 5xx and malformed bodies; 4xx answers count as
//!    successes (the service is healthy, the request was not).
//! 3. **Bulkhead**: a bounded number of calls in flight per service. When it is full the
//!    call fails at once instead of queueing, so one slow service cannot tie up the
//!    others' capacity.
//! 4. **Retry**: idempotent reads only, at most one retry, paid from a [`RetryBudget`]
//!    (a fraction of recent calls plus a small floor), and only if the `Retry-After` the
//!    upstream asked for still fits in the deadline.

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use failsafe::failure_policy::{self, ConsecutiveFailures, OrElse, SuccessRateOverTimeWindow};
use failsafe::{FailurePolicy, Instrument, StateMachine};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::metrics::RequestRecord;

use super::api::{Service, UpstreamError, UpstreamResult};
use super::config::{BreakerConfig, RetryConfig};
use super::scope::current_deadline;

/// Exponential backoff with optional "equal jitter", in milliseconds (failsafe's own jittered
/// backoffs require whole seconds).
#[derive(Clone, Debug)]
pub struct Backoff {
    next_ms: u64,
    max_ms: u64,
    jitter: bool,
    seed: u64,
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let nominal = self.next_ms.min(self.max_ms);
        self.next_ms = self.next_ms.saturating_mul(2);
        if !self.jitter {
            return Some(Duration::from_millis(nominal));
        }
        // SplitMix64 step: the jitter need not be cryptographic, only decorrelated.
        self.seed = self.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        let half = nominal / 2;
        Some(Duration::from_millis(
            half + (z ^ (z >> 31)) % (nominal - half + 1),
        ))
    }
}

type Policy = OrElse<ConsecutiveFailures<Backoff>, SuccessRateOverTimeWindow<Backoff>>;

/// State of a circuit breaker, as `/readyz` and metrics report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls fail fast.
    Open,
    /// Probes are let through.
    HalfOpen,
}

impl BreakerState {
    /// The `switchyard_breaker_state` value: 0 closed, 1 half-open, 2 open.
    pub fn gauge_value(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }
}

/// Records state changes (and logs them) for [`Guard::breaker_state`].
#[derive(Clone)]
struct StateRecorder {
    service: Service,
    state: Arc<AtomicU8>,
}

impl StateRecorder {
    fn set(&self, state: BreakerState) {
        let previous = self.state.swap(state as u8, Ordering::Relaxed);
        if previous != state as u8 {
            tracing::warn!(service = %self.service, state = ?state, "circuit breaker state changed");
        }
    }
}

impl Instrument for StateRecorder {
    fn on_call_rejected(&self) {}
    fn on_open(&self) {
        self.set(BreakerState::Open);
    }
    fn on_half_open(&self) {
        self.set(BreakerState::HalfOpen);
    }
    fn on_closed(&self) {
        self.set(BreakerState::Closed);
    }
}

/// A budget of retries: each call deposits `ratio` of a retry, time deposits `min_per_sec`,
/// and a retry withdraws one. Bounded, so a long quiet spell cannot bank a retry storm.
pub struct RetryBudget {
    ratio: f64,
    min_per_sec: f64,
    cap: f64,
    state: Mutex<(f64, Instant)>,
}

impl RetryBudget {
    /// A budget allowing `ratio` retries per call plus `min_per_sec` per second.
    pub fn new(ratio: f64, min_per_sec: f64) -> Self {
        let cap = (min_per_sec + ratio * 100.0).max(1.0);
        Self {
            ratio,
            min_per_sec,
            cap,
            state: Mutex::new((min_per_sec.min(cap), Instant::now())),
        }
    }

    fn with_tokens<R>(&self, f: impl FnOnce(&mut f64) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(state.1).as_secs_f64();
        state.0 = (state.0 + elapsed * self.min_per_sec).min(self.cap);
        state.1 = now;
        f(&mut state.0)
    }

    /// Records a first attempt.
    pub fn deposit(&self) {
        self.with_tokens(|tokens| *tokens = (*tokens + self.ratio).min(self.cap));
    }

    /// Takes one retry from the budget, if there is one.
    pub fn try_withdraw(&self) -> bool {
        self.with_tokens(|tokens| {
            if *tokens >= 1.0 {
                *tokens -= 1.0;
                true
            } else {
                false
            }
        })
    }
}

/// What one attempt produced: a value, or an error and the `Retry-After` the upstream sent.
pub type AttemptResult<T> = Result<T, (UpstreamError, Option<Duration>)>;

/// The per-service guard every upstream call passes through.
pub struct Guard {
    service: Service,
    timeout: Duration,
    breaker: StateMachine<Policy, StateRecorder>,
    state: Arc<AtomicU8>,
    bulkhead: Arc<Semaphore>,
    /// While half-open, one probe at a time: failsafe alone lets every concurrent caller
    /// through, which would hit a recovering service with the whole backlog at once.
    probe: Semaphore,
    retry: RetryConfig,
    budget: RetryBudget,
}

impl Guard {
    /// A guard for `service` with the given per-call timeout and policies.
    pub fn new(
        service: Service,
        timeout: Duration,
        breaker: &BreakerConfig,
        retry: &RetryConfig,
        max_in_flight: usize,
    ) -> Self {
        let backoff = Backoff {
            next_ms: breaker.backoff_initial_ms,
            max_ms: breaker.backoff_max_ms,
            jitter: breaker.jitter,
            seed: service as u64 ^ 0x5717_c4a2,
        };
        let policy =
            failure_policy::consecutive_failures(breaker.consecutive_failures, backoff.clone())
                .or_else(failure_policy::success_rate_over_time_window(
                    breaker.required_success_rate,
                    breaker.min_requests,
                    Duration::from_secs(breaker.window_secs),
                    backoff,
                ));
        let state = Arc::new(AtomicU8::new(BreakerState::Closed as u8));
        let recorder = StateRecorder {
            service,
            state: Arc::clone(&state),
        };
        Self {
            service,
            timeout,
            breaker: StateMachine::new(policy, recorder),
            state,
            bulkhead: Arc::new(Semaphore::new(max_in_flight)),
            probe: Semaphore::new(1),
            retry: retry.clone(),
            budget: RetryBudget::new(retry.budget_ratio, retry.min_per_sec),
        }
    }

    /// The breaker's current state.
    pub fn breaker_state(&self) -> BreakerState {
        match self.state.load(Ordering::Relaxed) {
            s if s == BreakerState::Open as u8 => BreakerState::Open,
            s if s == BreakerState::HalfOpen as u8 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }

    /// Runs `attempt` under the deadline, breaker, bulkhead and retry policy.
    ///
    /// `attempt` gets the timeout for this try and the deadline budget to send upstream.
    /// Only `idempotent` calls are ever retried.
    pub async fn run<T, F, Fut>(&self, idempotent: bool, attempt: F) -> UpstreamResult<T>
    where
        F: Fn(Duration, Option<Duration>) -> Fut,
        Fut: Future<Output = AttemptResult<T>>,
    {
        let service = self.service;
        let deadline = current_deadline();
        self.budget.deposit();
        let mut retried = false;
        loop {
            let remaining = match deadline {
                Some(deadline) => Some(
                    deadline
                        .remaining()
                        .ok_or(UpstreamError::Timeout { service })?,
                ),
                None => None,
            };
            if !self.breaker.is_call_permitted() {
                RequestRecord::note_upstream_refused(service.as_str(), "breaker_open");
                return Err(UpstreamError::Unavailable {
                    service,
                    detail: "circuit breaker open".into(),
                });
            }
            let _probe = if self.breaker_state() == BreakerState::HalfOpen {
                let Ok(probe) = self.probe.try_acquire() else {
                    RequestRecord::note_upstream_refused(service.as_str(), "breaker_open");
                    return Err(UpstreamError::Unavailable {
                        service,
                        detail: "circuit breaker half-open; another call is probing".into(),
                    });
                };
                Some(probe)
            } else {
                None
            };
            let Ok(permit) = self.bulkhead.clone().try_acquire_owned() else {
                RequestRecord::note_upstream_refused(service.as_str(), "shed");
                return Err(UpstreamError::Unavailable {
                    service,
                    detail: "too many calls in flight (bulkhead full)".into(),
                });
            };
            let timeout = remaining.map_or(self.timeout, |left| left.min(self.timeout));
            let started = tokio::time::Instant::now();
            let outcome = attempt(timeout, remaining).await;
            drop(permit);
            RequestRecord::note_upstream(
                service.as_str(),
                outcome_label(outcome.as_ref().err().map(|(error, _)| error)),
                started.elapsed(),
            );
            let (error, retry_after) = match outcome {
                Ok(value) => {
                    self.breaker.on_success();
                    return Ok(value);
                }
                Err(failure) => failure,
            };
            // A fair chance is what the call would have had at the request's start: the
            // service's timeout or the request's whole budget, whichever is shorter.
            let fair = deadline.map_or(self.timeout, |d| d.budget().min(self.timeout));
            if matches!(error, UpstreamError::Timeout { .. }) && timeout < fair / 2 {
                // The call had less than half a fair chance because the request's deadline
                // was nearly spent (say, by a slow sibling service): its silence says
                // nothing about the service's health, so the breaker does not count it,
                // and there is no time left to retry.
                return Err(error);
            }
            if counts_as_failure(&error) {
                self.breaker.on_error();
            } else {
                // The service answered sensibly; the request itself was at fault.
                self.breaker.on_success();
                return Err(error);
            }
            if retried || !idempotent || !self.retry.enabled || !is_retryable(&error) {
                return Err(error);
            }
            let pause = retry_after.unwrap_or(Duration::from_millis(self.retry.backoff_ms));
            let fits = deadline.is_none_or(|d| d.remaining().is_some_and(|left| left > pause));
            if !fits || !self.budget.try_withdraw() {
                return Err(error);
            }
            tracing::debug!(%service, %error, pause_ms = pause.as_millis() as u64, "retrying");
            tokio::time::sleep(pause).await;
            retried = true;
        }
    }
}

/// The `outcome` label of an attempt that ended with `error` (none: `ok`).
fn outcome_label(error: Option<&UpstreamError>) -> &'static str {
    match error {
        None => "ok",
        Some(UpstreamError::NotFound { .. }) => "not_found",
        Some(UpstreamError::Rejected { .. }) => "rejected",
        Some(UpstreamError::Unavailable { .. }) => "unavailable",
        Some(UpstreamError::Timeout { .. }) => "timeout",
        Some(UpstreamError::Malformed { .. }) => "malformed",
    }
}

/// Whether an error says the service is unhealthy (as opposed to the request being wrong).
fn counts_as_failure(error: &UpstreamError) -> bool {
    matches!(
        error,
        UpstreamError::Unavailable { .. }
            | UpstreamError::Timeout { .. }
            | UpstreamError::Malformed { .. }
    )
}

/// Whether trying again may help: transient unavailability or slowness, not a bad body.
fn is_retryable(error: &UpstreamError) -> bool {
    matches!(
        error,
        UpstreamError::Unavailable { .. } | UpstreamError::Timeout { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_and_jitter_stays_within_half_to_full() {
        let plain = Backoff {
            next_ms: 100,
            max_ms: 500,
            jitter: false,
            seed: 1,
        };
        let delays: Vec<u64> = plain.take(5).map(|d| d.as_millis() as u64).collect();
        assert_eq!(delays, vec![100, 200, 400, 500, 500]);
        let jittered = Backoff {
            next_ms: 1000,
            max_ms: 1000,
            jitter: true,
            seed: 7,
        };
        for delay in jittered.take(100) {
            assert!(
                (500..=1000).contains(&(delay.as_millis() as u64)),
                "{delay:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_retry_budget_allows_a_fraction_of_calls_plus_a_floor_over_time() {
        let budget = RetryBudget::new(0.2, 0.0);
        let mut granted = 0;
        for _ in 0..100 {
            budget.deposit();
            if budget.try_withdraw() {
                granted += 1;
            }
        }
        assert_eq!(granted, 20);

        let floor = RetryBudget::new(0.0, 2.0);
        assert!(floor.try_withdraw() && floor.try_withdraw());
        assert!(!floor.try_withdraw(), "floor spent");
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(floor.try_withdraw(), "one more after half a second at 2/s");
        assert!(!floor.try_withdraw());
    }
}
