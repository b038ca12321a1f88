//! The request scope of upstream calls: task-locals that a BFF sets once per client request
//! and every upstream call made in that task reads.
//!
//! - [`Deadline`] ([`with_deadline`]): the instant by which the whole request must be
//!   answered. The guard refuses to start calls after it and cuts each call's timeout to
//!   what remains; the HTTP clients send the remaining budget upstream in
//!   [`DEADLINE_HEADER`].
//! - [`Freshness`] ([`track_freshness`]): what the request was served from other than fresh
//!   upstream data. The entity caches record stale entries they serve into it.
//!
//! They are task-locals rather than parameters because async-graphql resolves a whole
//! request, loaders included, inside one task, and keeping them out of the service traits
//! keeps those traits free of request plumbing. Code that spawns a task for upstream work
//! must re-scope them.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use super::api::Service;

/// Header carrying the milliseconds left of the caller's deadline to the upstream.
pub const DEADLINE_HEADER: &str = "x-switchyard-deadline-ms";

/// The instant by which a whole client request must be answered, and the budget it was
/// given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    /// A deadline `budget` from now.
    pub fn after(budget: Duration) -> Self {
        Self {
            at: Instant::now() + budget,
            budget,
        }
    }

    /// Time left, or `None` once the deadline has passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.at
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
    }

    /// The whole budget the request was given.
    pub fn budget(&self) -> Duration {
        self.budget
    }
}

tokio::task_local! {
    static DEADLINE: Deadline;
}

/// Runs `future` (one client request) under `deadline`: every upstream call it makes, in
/// this task, honours it.
///
/// This and the other scopes here are plain futures around `future`, not `async fn`s: an
/// `async fn` would keep its argument as well as the future it awaits, doubling the size
/// of everything it wraps, and copy it again on its first poll.
pub fn with_deadline<F: Future>(deadline: Deadline, future: F) -> impl Future<Output = F::Output> {
    DEADLINE.scope(deadline, future)
}

/// The deadline of the request running in this task, if any.
pub fn current_deadline() -> Option<Deadline> {
    DEADLINE.try_with(|deadline| *deadline).ok()
}

tokio::task_local! {
    static FRESHNESS: Arc<Mutex<Freshness>>;
}

/// What a request was served from other than fresh upstream data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Freshness {
    /// Age of the oldest stale entity served, per service.
    pub stale: BTreeMap<Service, Duration>,
}

impl Freshness {
    /// Whether anything stale was served.
    pub fn is_fresh(&self) -> bool {
        self.stale.is_empty()
    }

    /// Age of the oldest stale data served.
    pub fn max_age(&self) -> Option<Duration> {
        self.stale.values().max().copied()
    }
}

/// Runs `future` (one client request) and returns its output with what it learned about the
/// freshness of the data it served.
pub fn track_freshness<F: Future>(future: F) -> TrackFreshness<F> {
    let report = Arc::new(Mutex::new(Freshness::default()));
    TrackFreshness {
        inner: FRESHNESS.scope(Arc::clone(&report), future),
        report,
    }
}

pin_project_lite::pin_project! {
    /// The future of [`track_freshness`].
    pub struct TrackFreshness<F: Future> {
        #[pin]
        inner: tokio::task::futures::TaskLocalFuture<Arc<Mutex<Freshness>>, F>,
        report: Arc<Mutex<Freshness>>,
    }
}

impl<F: Future> Future for TrackFreshness<F> {
    type Output = (F::Output, Freshness);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = std::task::ready!(this.inner.poll(cx));
        let freshness =
            std::mem::take(&mut *this.report.lock().unwrap_or_else(PoisonError::into_inner));
        Poll::Ready((output, freshness))
    }
}

/// Runs `future` (one client request's upstream work) under a deadline `budget` from now,
/// and returns its output with the freshness of the data it served: the usual way for a
/// handler to scope its upstream calls.
pub fn within_budget<F: Future>(
    budget: Duration,
    future: F,
) -> impl Future<Output = (F::Output, Freshness)> {
    track_freshness(with_deadline(Deadline::after(budget), future))
}

/// Records that `service`'s data served to the current request was `age` old.
pub(crate) fn record_stale(service: Service, age: Duration) {
    crate::metrics::RequestRecord::note_stale(age);
    let _ = FRESHNESS.try_with(|report| {
        let mut report = report.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest = report.stale.entry(service).or_default();
        *oldest = (*oldest).max(age);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deadlines_count_down_with_the_clock() {
        let deadline = Deadline::after(Duration::from_millis(800));
        assert_eq!(deadline.remaining(), Some(Duration::from_millis(800)));
        tokio::time::advance(Duration::from_millis(300)).await;
        assert_eq!(deadline.remaining(), Some(Duration::from_millis(500)));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(deadline.remaining(), None);
        assert_eq!(current_deadline(), None);
        let seen = with_deadline(deadline, async { current_deadline() }).await;
        assert_eq!(seen, Some(deadline));
    }
}
