//! [`StoreBreaker`]: stops asking a failing store for a growing pause.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::redis::StoreError;

const FIRST_PAUSE: Duration = Duration::from_millis(250);
const LONGEST_PAUSE: Duration = Duration::from_secs(30);

/// After a failure the store is not asked again for a pause that doubles from 250 ms to
/// 30 s while it keeps failing; the first answer closes the breaker. Each change is logged
/// once, naming the store and what its user does meanwhile.
pub struct StoreBreaker {
    store: &'static str,
    meanwhile: &'static str,
    failing: AtomicBool,
    state: Mutex<(Option<Instant>, Duration)>,
}

impl StoreBreaker {
    /// A closed breaker for `store` ("rate-limit store"); `meanwhile` says, for the log,
    /// what is done while it is open.
    pub fn new(store: &'static str, meanwhile: &'static str) -> Self {
        Self {
            store,
            meanwhile,
            failing: AtomicBool::new(false),
            state: Mutex::new((None, FIRST_PAUSE)),
        }
    }

    /// Whether the store may be asked now.
    pub fn permits(&self) -> bool {
        if !self.failing.load(Ordering::Relaxed) {
            return true;
        }
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0.is_none_or(|until| Instant::now() >= until)
    }

    /// The store answered.
    pub fn succeeded(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            *self.state.lock().unwrap_or_else(PoisonError::into_inner) = (None, FIRST_PAUSE);
            tracing::warn!(store = self.store, "shared store answers again");
        }
    }

    /// The store failed with `error`.
    pub fn failed(&self, error: &StoreError) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let pause = state.1;
        *state = (Some(Instant::now() + pause), (pause * 2).min(LONGEST_PAUSE));
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(%error, store = self.store, meanwhile = self.meanwhile, "shared store failed");
        }
    }
}
