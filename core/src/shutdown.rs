//! The process's shutdown, as long-lived work sees it: streams watch it to tell their
//! clients to reconnect, and hold it open (a [`ShutdownHold`]) until they have, so the
//! process waits for them within the grace period.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

#[derive(Debug, Default)]
struct Holds {
    count: AtomicUsize,
    released: Notify,
}

/// Triggers the [`Shutdown`] its handles watch. Held by [`App`](crate::bff::App).
#[derive(Debug)]
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
    holds: Arc<Holds>,
}

/// A handle on the process's shutdown; cloning is cheap.
#[derive(Clone, Debug)]
pub struct Shutdown {
    /// `None`: a shutdown that never comes.
    receiver: Option<watch::Receiver<bool>>,
    holds: Arc<Holds>,
}

/// Keeps the process from finishing its shutdown while alive (within the grace period).
#[derive(Debug)]
pub struct ShutdownHold(Arc<Holds>);

impl Drop for ShutdownHold {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.released.notify_waiters();
        }
    }
}

/// A trigger and the first handle on it.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    let holds = Arc::new(Holds::default());
    let handle = Shutdown {
        receiver: Some(receiver),
        holds: Arc::clone(&holds),
    };
    (ShutdownTrigger { sender, holds }, handle)
}

impl ShutdownTrigger {
    /// Starts the shutdown: every handle's [`Shutdown::requested`] completes.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    /// Another handle on this shutdown.
    pub fn handle(&self) -> Shutdown {
        Shutdown {
            receiver: Some(self.sender.subscribe()),
            holds: Arc::clone(&self.holds),
        }
    }

    /// Waits until every [`ShutdownHold`] is released, or `grace` has passed; `false` if
    /// some were still held.
    pub async fn drained(&self, grace: Duration) -> bool {
        let wait = async {
            loop {
                let released = self.holds.released.notified();
                if self.holds.count.load(Ordering::Acquire) == 0 {
                    return;
                }
                released.await;
            }
        };
        tokio::time::timeout(grace, wait).await.is_ok()
    }
}

impl Shutdown {
    /// A handle that never triggers (for parts built outside a served [`App`](crate::bff::App)).
    pub fn never() -> Self {
        Self {
            receiver: None,
            holds: Arc::default(),
        }
    }

    /// Whether the shutdown has started.
    pub fn is_requested(&self) -> bool {
        self.receiver
            .as_ref()
            .is_some_and(|receiver| *receiver.borrow())
    }

    /// Completes once the shutdown has started (never, if its trigger is dropped untriggered).
    pub async fn requested(&self) {
        if let Some(mut receiver) = self.receiver.clone()
            && receiver.wait_for(|requested| *requested).await.is_ok()
        {
            return;
        }
        std::future::pending::<()>().await;
    }

    /// Holds the shutdown open until the returned guard drops.
    pub fn hold(&self) -> ShutdownHold {
        self.holds.count.fetch_add(1, Ordering::AcqRel);
        ShutdownHold(Arc::clone(&self.holds))
    }
}
