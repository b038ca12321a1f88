//! Connection workers: threads that each run a single-threaded tokio runtime of their own,
//! and serve the connections the accept loop hands them, from their first byte to their
//! last (Envoy's threading model: a connection belongs to one worker).
//!
//! Why not tokio's shared runtime: there, a connection's task runs on whichever thread
//! polled the socket that woke it, so a request's memory is allocated on one core and
//! written, then freed, on the other, and every block freed across threads goes back
//! through the allocator's cross-thread free list. Under saturation on two cores that cost
//! the web BFF about a sixth of its CPU per dashboard (BENCHMARKS.md, "Connections stay
//! on one thread"). A worker keeps a request, its upstream connections (each worker has an
//! HTTP client of its own per upstream service: `upstream::http`) and its memory on one
//! thread; what requests share (entity caches, breakers, usage counters, metrics) is
//! shared as before.
//!
//! The BFF binaries install the workers once per process ([`Workers::install`], from
//! `bff::install_workers` in `bff::run`) when `server.pin_connections` is on, or when it is
//! unset and the BFF pins by default (`Bff::PIN_CONNECTIONS`: web and mobile do, IoT does
//! not). A server without them (the tests,
//! a program embedding an `App`) spawns its connections on the runtime it runs on.
//! Everything else (background tasks, Redis and broker clients, the JWKS refresh) stays
//! on the process's main runtime.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::mpsc;

/// A connection to serve, as the accept loop hands it over.
type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The process's connection workers.
pub struct Workers {
    workers: Box<[Worker]>,
}

/// One worker thread, as the accept loop sees it.
struct Worker {
    jobs: mpsc::UnboundedSender<Job>,
    /// Connections it is serving.
    open: Arc<AtomicUsize>,
}

thread_local! {
    /// The index of the worker this thread is, if it is one.
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

static INSTALLED: OnceLock<Workers> = OnceLock::new();

/// The index of the worker running the caller, if it runs on one.
pub fn current_worker() -> Option<usize> {
    CURRENT.get()
}

impl Workers {
    /// Starts `threads` workers (0: one per CPU) for this process, once: later calls return
    /// the workers installed first.
    pub fn install(threads: usize) -> io::Result<&'static Self> {
        if let Some(installed) = INSTALLED.get() {
            return Ok(installed);
        }
        let workers = Self::start(threads)?;
        // Two racing installs: the loser's workers end when their queues are dropped.
        Ok(INSTALLED.get_or_init(|| workers))
    }

    /// The workers of this process, if installed.
    pub fn installed() -> Option<&'static Self> {
        INSTALLED.get()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Never: a pool has at least one worker.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    fn start(threads: usize) -> io::Result<Self> {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let mut workers = Vec::with_capacity(threads);
        for index in 0..threads {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
            std::thread::Builder::new()
                .name(format!("switchyard-worker-{index}"))
                .spawn(move || {
                    CURRENT.set(Some(index));
                    runtime.block_on(async move {
                        while let Some(job) = queue.recv().await {
                            tokio::spawn(job);
                        }
                    });
                })?;
            workers.push(Worker {
                jobs,
                open: Arc::new(AtomicUsize::new(0)),
            });
        }
        Ok(Self {
            workers: workers.into_boxed_slice(),
        })
    }

    /// Serves `connection` on the worker with the fewest open connections.
    pub fn spawn(&self, connection: impl Future<Output = ()> + Send + 'static) {
        let Some(worker) = self
            .workers
            .iter()
            .min_by_key(|worker| worker.open.load(Ordering::Relaxed))
        else {
            tokio::spawn(connection);
            return;
        };
        worker.open.fetch_add(1, Ordering::Relaxed);
        let open = OpenConnection(Arc::clone(&worker.open));
        let job: Job = Box::pin(async move {
            let _open = open;
            connection.await;
        });
        if let Err(mpsc::error::SendError(job)) = worker.jobs.send(job) {
            // The worker's thread is gone (it cannot be, short of a panic in tokio itself):
            // serve the connection here rather than drop it.
            tokio::spawn(job);
        }
    }
}

/// Counts a connection as open on its worker until it ends.
struct OpenConnection(Arc<AtomicUsize>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Spawns `connection` on a worker if the process has them, else on the current runtime.
pub(crate) fn spawn_connection(connection: impl Future<Output = ()> + Send + 'static) {
    match Workers::installed() {
        Some(workers) => workers.spawn(connection),
        None => {
            tokio::spawn(connection);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_go_to_the_least_busy_worker_and_each_runs_on_its_worker_thread() {
        let workers = Workers::start(2).expect("workers");
        assert_eq!(workers.len(), 2);
        let (held_tx, held_rx) = tokio::sync::oneshot::channel::<()>();
        let (seen_tx, mut seen) = mpsc::unbounded_channel();
        let first = seen_tx.clone();
        // The first connection stays open, so the next two go to the other worker, then
        // back to a tie.
        workers.spawn(async move {
            let _ = first.send(current_worker());
            let _ = held_rx.await;
        });
        let first_worker = seen.recv().await.flatten().expect("on a worker");
        let second = seen_tx.clone();
        workers.spawn(async move {
            let _ = second.send(current_worker());
        });
        let second_worker = seen.recv().await.flatten().expect("on a worker");
        assert_ne!(first_worker, second_worker, "the busy worker is skipped");
        assert_eq!(current_worker(), None, "the test's own thread is no worker");
        drop(held_tx);
        // Both workers are free again: a connection still finds one and runs.
        workers.spawn(async move {
            let _ = seen_tx.send(current_worker());
        });
        assert!(seen.recv().await.flatten().is_some());
    }
}
