//! A one-shot signal for callers waiting on work another caller does: a fetch whose
//! result concurrent misses share (the entity caches), a batch that a loader's driver
//! fetches for its siblings (the web BFF's loaders).
//!
//! It is what a `watch` channel was used for, at a fraction of the cost on the request
//! path: one flag and the wakers of those who wait, instead of a channel with eight
//! notifiers allocated per fetch and an intrusive list entry per waiting key. The result
//! itself is kept by whoever owns the signal; the signal only says "done" (or, fired by a
//! guard, "given up": waiters then look again and find no result).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

/// Fired at most once; [`Signal::fired`] completes once it has been.
#[derive(Default)]
pub struct Signal {
    fired: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Signal {
    /// Fires the signal: every waiter, present and future, completes. Firing again does
    /// nothing.
    pub fn fire(&self) {
        let wakers = {
            let mut wakers = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
            if self.fired.swap(true, Ordering::AcqRel) {
                return;
            }
            std::mem::take(&mut *wakers)
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// Whether it has fired.
    pub fn is_fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// Completes once the signal has fired.
    pub fn fired(&self) -> Fired<'_> {
        Fired { signal: self }
    }
}

/// The future of [`Signal::fired`].
pub struct Fired<'a> {
    signal: &'a Signal,
}

impl Future for Fired<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let signal = self.signal;
        if signal.is_fired() {
            return Poll::Ready(());
        }
        let mut wakers = signal.wakers.lock().unwrap_or_else(PoisonError::into_inner);
        // Checked again under the lock, which `fire` takes before it sets the flag: a
        // waker registered here is always woken.
        if signal.fired.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        if !wakers.iter().any(|waker| waker.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn waiters_complete_when_it_fires_and_after() {
        let signal = Arc::new(Signal::default());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let signal = Arc::clone(&signal);
                tokio::spawn(async move { signal.fired().await })
            })
            .collect();
        tokio::task::yield_now().await;
        assert!(!signal.is_fired());
        signal.fire();
        signal.fire();
        for waiter in waiters {
            tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("woken")
                .expect("joined");
        }
        signal.fired().await;
    }
}
