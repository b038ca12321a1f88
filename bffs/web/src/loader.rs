//! Per-request batch loading: many `load(key)` calls made while one GraphQL resolver level
//! runs become one upstream batch call.
//!
//! There is no timer. Resolvers of one level are polled within the same task; the first
//! `load` of a batch becomes its *driver* and yields to the executor until a whole pass
//! over its sibling futures adds no key, then fetches every collected key at once. The other
//! callers wait for its result. Results are cached for the rest of the request, so a key is
//! fetched at most once per request, and loaders are created per request so that nothing
//! cached for one consumer is ever seen by another.

use foldhash::{HashMap, HashMapExt as _};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use async_trait::async_trait;
use switchyard_core::signal::Signal;
use switchyard_core::upstream::{Keyed, UpstreamError};

/// How a loader fetches a batch of keys from its upstream.
#[async_trait]
pub trait BatchFetch: Send + Sync + 'static {
    /// The entity loaded.
    type Value: Send + Sync + 'static;
    /// Fetches `keys` (distinct): one slot per key, in order, `None` for a key without an
    /// entity.
    async fn fetch(&self, keys: &[String]) -> Result<Keyed<Self::Value>, UpstreamError>;
}

/// The outcome of loading one key.
pub type LoadResult<V> = Result<Option<Arc<V>>, UpstreamError>;

enum Slot<V> {
    /// Part of a batch not yet answered; the signal fires when it is (or is given up).
    Pending(Arc<Signal>),
    Done(LoadResult<V>),
}

struct OpenBatch {
    id: u64,
    keys: Vec<String>,
    done: Arc<Signal>,
}

struct State<V> {
    slots: HashMap<String, Slot<V>>,
    open: Option<OpenBatch>,
    next_batch_id: u64,
}

/// Where [`State::enqueue`] put a key.
enum Enqueued {
    /// Into the open batch, which another caller drives.
    Joined(Arc<Signal>),
    /// Into a batch it opened: the caller drives it.
    Opened { id: u64, done: Arc<Signal> },
}

/// Room for the keys of a request's first batch, made at its first key rather than grown
/// four times on the way to a dashboard's dozen or so.
const FIRST_BATCH_ROOM: usize = 16;

impl<V> State<V> {
    /// Adds `key` (not yet asked for) to the open batch, or opens a batch with it.
    fn enqueue(&mut self, key: &str) -> Enqueued {
        if self.slots.capacity() == 0 {
            self.slots.reserve(FIRST_BATCH_ROOM);
        }
        if let Some(open) = &mut self.open {
            open.keys.push(key.to_owned());
            let done = Arc::clone(&open.done);
            self.slots
                .insert(key.to_owned(), Slot::Pending(Arc::clone(&done)));
            return Enqueued::Joined(done);
        }
        let done = Arc::new(Signal::default());
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        let mut keys = Vec::with_capacity(FIRST_BATCH_ROOM);
        keys.push(key.to_owned());
        self.open = Some(OpenBatch {
            id,
            keys,
            done: Arc::clone(&done),
        });
        self.slots
            .insert(key.to_owned(), Slot::Pending(Arc::clone(&done)));
        Enqueued::Opened { id, done }
    }

    /// Settles `key`'s slot (pending until now, so its key is reused).
    fn answer(&mut self, key: &str, result: LoadResult<V>) {
        match self.slots.get_mut(key) {
            Some(slot) => *slot = Slot::Done(result),
            None => {
                self.slots.insert(key.to_owned(), Slot::Done(result));
            }
        }
    }
}

/// A per-request batching, caching loader.
pub struct BatchLoader<F: BatchFetch> {
    fetcher: F,
    state: Mutex<State<F::Value>>,
}

enum Role<V> {
    Ready(LoadResult<V>),
    Wait(Arc<Signal>),
    Drive { id: u64, done: Arc<Signal> },
}

/// [`Role`] for several keys: all answered, or one batch to wait for or drive first.
enum Roles<V> {
    Ready(Vec<LoadResult<V>>),
    Wait(Arc<Signal>),
    Drive { id: u64, done: Arc<Signal> },
}

impl<F: BatchFetch> BatchLoader<F> {
    /// A loader with an empty cache.
    pub fn new(fetcher: F) -> Self {
        Self {
            fetcher,
            state: Mutex::new(State {
                slots: HashMap::new(),
                open: None,
                next_batch_id: 0,
            }),
        }
    }

    /// Forgets the answers cached so far (loads in flight are kept): a subscription resolves
    /// each event with what the upstreams say then, not what they said for the last one.
    pub fn forget_answers(&self) {
        self.lock()
            .slots
            .retain(|_, slot| matches!(slot, Slot::Pending(_)));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<F::Value>> {
        // The state is only mutated in short, panic-free sections.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Loads one key, batched with every other key requested in the same resolver pass.
    pub async fn load(&self, key: &str) -> LoadResult<F::Value> {
        loop {
            match self.role_for(key) {
                Role::Ready(result) => return result,
                Role::Wait(done) => {
                    // Answered, or given up by a driver that was dropped (its guard released
                    // the keys): either way go round again, and maybe drive a new batch.
                    done.fired().await;
                }
                Role::Drive { id, done } => {
                    self.drive(id, done).await;
                }
            }
        }
    }

    /// Loads `keys` (repeats allowed) as one caller: each key batched as [`Self::load`]
    /// batches it, the answers in the order of `keys`. One future and one pass under the
    /// lock for the lot, where a `load` per key would be a future and a pass each.
    pub async fn load_many<'k, K>(&self, keys: K) -> Vec<LoadResult<F::Value>>
    where
        K: IntoIterator<Item = &'k str> + Clone,
    {
        loop {
            match self.role_for_all(keys.clone()) {
                Roles::Ready(results) => return results,
                Roles::Wait(done) => done.fired().await,
                Roles::Drive { id, done } => self.drive(id, done).await,
            }
        }
    }

    fn role_for(&self, key: &str) -> Role<F::Value> {
        let mut state = self.lock();
        match state.slots.get(key) {
            Some(Slot::Done(result)) => return Role::Ready(result.clone()),
            Some(Slot::Pending(done)) => return Role::Wait(done.clone()),
            None => {}
        }
        match state.enqueue(key) {
            Enqueued::Joined(done) => Role::Wait(done),
            Enqueued::Opened { id, done } => Role::Drive { id, done },
        }
    }

    /// [`Self::role_for`] for several keys under one lock: every key not yet asked for
    /// joins the open batch (or opens one, and then the caller drives it); the answers come
    /// once no key is pending.
    fn role_for_all<'k, K>(&self, keys: K) -> Roles<F::Value>
    where
        K: IntoIterator<Item = &'k str> + Clone,
    {
        let mut state = self.lock();
        let mut wait = None;
        let mut drive = None;
        for key in keys.clone() {
            match state.slots.get(key) {
                Some(Slot::Done(_)) => {}
                Some(Slot::Pending(done)) => {
                    if wait.is_none() {
                        wait = Some(Arc::clone(done));
                    }
                }
                None => match state.enqueue(key) {
                    Enqueued::Joined(done) => {
                        if wait.is_none() {
                            wait = Some(done);
                        }
                    }
                    Enqueued::Opened { id, done } => drive = Some((id, done)),
                },
            }
        }
        if let Some((id, done)) = drive {
            return Roles::Drive { id, done };
        }
        if let Some(done) = wait {
            return Roles::Wait(done);
        }
        Roles::Ready(
            keys.into_iter()
                .map(|key| match state.slots.get(key) {
                    Some(Slot::Done(result)) => result.clone(),
                    // Every key is done: the pass above found none pending or new.
                    _ => Ok(None),
                })
                .collect(),
        )
    }

    async fn drive(&self, id: u64, done: Arc<Signal>) {
        let mut guard = DriverGuard {
            loader: self,
            id,
            done: Arc::clone(&done),
            taken: None,
            finished: false,
        };
        // Let sibling resolvers run until a full pass adds no key to this batch.
        let mut seen = 0;
        loop {
            let len = self.lock().open.as_ref().map_or(0, |open| open.keys.len());
            if len == seen {
                break;
            }
            seen = len;
            YieldOnce::default().await;
        }
        let keys = {
            let mut state = self.lock();
            match state.open.take() {
                Some(open) if open.id == id => open.keys,
                other => {
                    state.open = other;
                    Vec::new()
                }
            }
        };
        guard.taken = Some(keys);
        let keys = guard.taken.as_deref().unwrap_or_default();
        let fetched = self.fetcher.fetch(keys).await;
        {
            let mut state = self.lock();
            match fetched {
                Ok(values) => {
                    let mut values = values.into_iter();
                    for key in keys {
                        state.answer(key, Ok(values.next().flatten()));
                    }
                }
                Err(error) => {
                    for key in keys {
                        state.answer(key, Err(error.clone()));
                    }
                }
            }
        }
        guard.finished = true;
        done.fire();
    }
}

/// Releases a batch whose driver is dropped mid-way (its request branch was cancelled), so
/// that waiting callers retry instead of waiting forever.
struct DriverGuard<'a, F: BatchFetch> {
    loader: &'a BatchLoader<F>,
    id: u64,
    /// Fired once the keys are released, so that waiters look again.
    done: Arc<Signal>,
    taken: Option<Vec<String>>,
    finished: bool,
}

impl<F: BatchFetch> Drop for DriverGuard<'_, F> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut state = self.loader.lock();
        let keys = match self.taken.take() {
            Some(keys) => keys,
            None => match state.open.take() {
                Some(open) if open.id == self.id => open.keys,
                other => {
                    state.open = other;
                    Vec::new()
                }
            },
        };
        for key in keys {
            if matches!(state.slots.get(&key), Some(Slot::Pending(_))) {
                state.slots.remove(&key);
            }
        }
        drop(state);
        self.done.fire();
    }
}

/// Returns `Pending` once (waking itself), letting the executor poll sibling futures.
#[derive(Default)]
struct YieldOnce {
    yielded: bool,
}

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            Poll::Ready(())
        } else {
            self.yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Hangs on its first fetch; answers every key afterwards. Counts fetches.
    #[derive(Default)]
    struct HangsOnce {
        fetches: AtomicUsize,
    }

    #[async_trait]
    impl BatchFetch for Arc<HangsOnce> {
        type Value = String;

        async fn fetch(&self, keys: &[String]) -> Result<Keyed<String>, UpstreamError> {
            if self.fetches.fetch_add(1, Ordering::SeqCst) == 0 {
                std::future::pending::<()>().await;
            }
            Ok(keys.iter().map(|key| Some(Arc::new(key.clone()))).collect())
        }
    }

    #[tokio::test]
    async fn keys_loaded_together_are_fetched_in_one_batch_and_cached() {
        let fetcher = Arc::new(HangsOnce::default());
        fetcher.fetches.store(1, Ordering::SeqCst);
        let loader = BatchLoader::new(Arc::clone(&fetcher));
        let (a, b, c) = tokio::join!(loader.load("a"), loader.load("b"), loader.load("a"));
        assert_eq!(a.expect("a").as_deref().map(String::as_str), Some("a"));
        assert_eq!(b.expect("b").as_deref().map(String::as_str), Some("b"));
        assert!(c.expect("a again").is_some());
        assert_eq!(
            fetcher.fetches.load(Ordering::SeqCst),
            2,
            "one batch for a and b"
        );
        loader.load("b").await.expect("cached");
        assert_eq!(
            fetcher.fetches.load(Ordering::SeqCst),
            2,
            "served from the request cache"
        );
    }

    #[tokio::test]
    async fn load_many_joins_the_batch_of_single_loads_and_answers_in_order() {
        let fetcher = Arc::new(HangsOnce::default());
        fetcher.fetches.store(1, Ordering::SeqCst);
        let loader = BatchLoader::new(Arc::clone(&fetcher));
        let (one, many) = tokio::join!(loader.load("a"), loader.load_many(["b", "a", "c", "b"]));
        assert_eq!(one.expect("a").as_deref().map(String::as_str), Some("a"));
        let many: Vec<_> = many
            .into_iter()
            .map(|result| result.expect("loaded").map(|value| (*value).clone()))
            .collect();
        assert_eq!(
            many,
            ["b", "a", "c", "b"].map(|key| Some(key.to_owned())),
            "one answer per key asked, in order, repeats included"
        );
        assert_eq!(
            fetcher.fetches.load(Ordering::SeqCst),
            2,
            "one batch for a, b and c"
        );
        let cached = loader.load_many(["c", "a"]).await;
        assert!(cached.iter().all(|result| matches!(result, Ok(Some(_)))));
        assert_eq!(
            fetcher.fetches.load(Ordering::SeqCst),
            2,
            "served from the request cache"
        );
        assert!(loader.load_many([]).await.is_empty());
    }

    #[tokio::test]
    async fn a_cancelled_load_many_releases_its_keys_for_the_next_load() {
        let fetcher = Arc::new(HangsOnce::default());
        let loader = BatchLoader::new(Arc::clone(&fetcher));
        tokio::select! {
            _ = loader.load_many(["k", "l"]) => panic!("the first fetch never answers"),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        let values = tokio::time::timeout(Duration::from_secs(2), loader.load_many(["l", "k"]))
            .await
            .expect("the next load drives a new batch instead of waiting forever");
        assert!(values.iter().all(|result| matches!(result, Ok(Some(_)))));
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_cancelled_driver_releases_its_keys_for_the_next_load() {
        let fetcher = Arc::new(HangsOnce::default());
        let loader = BatchLoader::new(Arc::clone(&fetcher));
        tokio::select! {
            _ = loader.load("k") => panic!("the first fetch never answers"),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        let value = tokio::time::timeout(Duration::from_secs(2), loader.load("k"))
            .await
            .expect("the next load drives a new batch instead of waiting forever")
            .expect("fetched");
        assert_eq!(value.as_deref().map(String::as_str), Some("k"));
        assert_eq!(fetcher.fetches.load(Ordering::SeqCst), 2);
    }
}
