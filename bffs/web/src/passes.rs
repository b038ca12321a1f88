//! Passes over one operation's execution without a trip through the runtime.
//!
//! A loader's driver lets its sibling resolvers run by yielding: it wakes its own task
//! and returns `Pending` ([`crate::loader`]). Woken that way, the task goes back through
//! the runtime's queue (where the other worker thread may steal it, and its data with it)
//! and is then polled from the top of the connection down: hyper's dispatcher, every
//! middleware future, the handler, and only then the executor. A dashboard's execution
//! yields a few times per batch.
//!
//! [`InPasses`] gives the execution a waker of its own. A wake that arrives while the
//! execution is being polled (a yield) makes it poll the execution again at once, within
//! the same poll of the task; any other wake (an upstream's answer, a timer) goes to the
//! task as usual. So the same futures are polled in the same order as before, and only
//! the round trip is gone. At most [`PASSES_PER_POLL`] passes run within one poll of the
//! task; then it yields to the runtime, as before, so that a busy execution cannot hold
//! a worker thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// Passes within one poll of the task before it yields to the runtime.
pub(crate) const PASSES_PER_POLL: usize = 32;

/// What the execution's waker shares with [`InPasses::poll`].
#[derive(Default)]
struct PassWaker {
    /// Set while the execution is being polled.
    polling: AtomicBool,
    /// Set by a wake since the last pass started.
    again: AtomicBool,
    /// The task's own waker.
    task: AtomicWaker,
}

impl Wake for PassWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Sequentially consistent, with the stores and loads in `poll`: either this wake
        // sees that no pass is running and wakes the task, or the pass that is running
        // sees `again` and runs another; it is never lost.
        self.again.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst) {
            self.task.wake();
        }
    }
}

pin_project_lite::pin_project! {
    /// `execution`, polled again within the same poll of the task whenever it woke itself
    /// while being polled (see the module documentation).
    pub(crate) struct InPasses<T> {
        shared: Arc<PassWaker>,
        waker: Waker,
        #[pin]
        execution: T,
    }
}

impl<T: Future> InPasses<T> {
    /// Runs `execution` in passes.
    pub(crate) fn new(execution: T) -> Self {
        let shared = Arc::new(PassWaker::default());
        Self {
            waker: Waker::from(Arc::clone(&shared)),
            shared,
            execution,
        }
    }
}

impl<T: Future> Future for InPasses<T> {
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T::Output> {
        let mut this = self.project();
        this.shared.task.register(cx.waker());
        let mut inner = Context::from_waker(this.waker);
        for _ in 0..PASSES_PER_POLL {
            this.shared.again.store(false, Ordering::SeqCst);
            this.shared.polling.store(true, Ordering::SeqCst);
            let polled = this.execution.as_mut().poll(&mut inner);
            this.shared.polling.store(false, Ordering::SeqCst);
            if polled.is_ready() {
                return polled;
            }
            if !this.shared.again.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Yields (waking itself) `yields` times, counting its polls.
    struct Yields<'a> {
        yields: usize,
        polls: &'a AtomicUsize,
    }

    impl Future for Yields<'_> {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            if self.yields == 0 {
                return Poll::Ready(());
            }
            self.yields -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    /// Counts the wakes of the task.
    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_yield_is_a_pass_within_the_same_poll_of_the_task() {
        let polls = AtomicUsize::new(0);
        let task = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&task));
        let mut cx = Context::from_waker(&waker);
        let mut run = std::pin::pin!(InPasses::new(Yields {
            yields: 5,
            polls: &polls,
        }));
        assert!(run.as_mut().poll(&mut cx).is_ready());
        assert_eq!(polls.load(Ordering::Relaxed), 6);
        assert_eq!(
            task.0.load(Ordering::Relaxed),
            0,
            "the task was never woken"
        );
    }

    #[test]
    fn a_busy_execution_yields_to_the_runtime_after_so_many_passes() {
        let polls = AtomicUsize::new(0);
        let task = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&task));
        let mut cx = Context::from_waker(&waker);
        let mut run = std::pin::pin!(InPasses::new(Yields {
            yields: PASSES_PER_POLL + 1,
            polls: &polls,
        }));
        assert!(run.as_mut().poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::Relaxed), PASSES_PER_POLL);
        assert_eq!(
            task.0.load(Ordering::Relaxed),
            1,
            "woken to be polled again"
        );
        assert!(run.as_mut().poll(&mut cx).is_ready());
    }

    #[tokio::test]
    async fn a_wake_from_outside_a_pass_wakes_the_task() {
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let run = tokio::spawn(InPasses::new(rx));
        tokio::task::yield_now().await;
        tx.send(7).expect("receiver alive");
        assert_eq!(run.await.expect("joined").expect("sent"), 7);
    }
}
