//! The entity caches' store: entries by key, each with when it was fetched, at most
//! `max_entries` of them.
//!
//! With the default TTL of 0 every fetched entity is written and almost none is read (only
//! when an upstream fails), so writes are what must be cheap: a key's shard (one of 16),
//! one lock, one map insert. There is no background housekeeping and no frequency sketch:
//! a shard that is full drops its entries past their lifetime (a sweep of the shard, at
//! most once per quarter of the lifetime, so that a store full of live entries, when there
//! are more distinct keys than `max_entries`, does not sweep at every insert), and if none
//! are, an arbitrary one, which is as good as any for a store read only in emergencies.

use std::hash::BuildHasher;

use foldhash::{HashMap, HashMapExt as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

const SHARDS: usize = 16;

/// One cached entity and when it was fetched.
pub(crate) struct Entry<V> {
    pub(crate) value: Arc<V>,
    pub(crate) fetched_at: Instant,
}

// Manual: cloning an entry clones the `Arc`, whatever `V` is.
impl<V> Clone for Entry<V> {
    fn clone(&self) -> Self {
        Self {
            value: Arc::clone(&self.value),
            fetched_at: self.fetched_at,
        }
    }
}

/// One shard: the entries of the keys that hash to it, and when it was last swept of
/// entries past their lifetime.
struct Shard<V> {
    entries: HashMap<String, Entry<V>>,
    swept_at: Option<Instant>,
    /// Sweeps made, for the tests.
    #[cfg(test)]
    sweeps: usize,
}

impl<V> Default for Shard<V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            swept_at: None,
            #[cfg(test)]
            sweeps: 0,
        }
    }
}

/// Entries by key, each served for `lifetime` after its fetch.
pub(crate) struct EntryStore<V> {
    shards: Box<[Mutex<Shard<V>>]>,
    per_shard: usize,
    lifetime: Duration,
    hasher: foldhash::fast::RandomState,
    /// Whether anything was ever stored: until then a removal has nothing to look for (an
    /// IoT BFF invalidates the stock of every reading it forwards, and never reads stock).
    written: AtomicBool,
}

impl<V> EntryStore<V> {
    /// A store of at most about `max_entries` entries, each kept for `lifetime`.
    pub(crate) fn new(max_entries: u64, lifetime: Duration) -> Self {
        let per_shard = usize::try_from(max_entries.div_ceil(SHARDS as u64))
            .unwrap_or(usize::MAX)
            .max(1);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard,
            lifetime,
            hasher: foldhash::fast::RandomState::default(),
            written: AtomicBool::new(false),
        }
    }

    fn shard_index(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Shard<V>> {
        self.shards[self.shard_index(key)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry of `key`, if it is within its lifetime.
    pub(crate) fn get(&self, key: &str) -> Option<Entry<V>> {
        self.shard(key)
            .entries
            .get(key)
            .filter(|entry| entry.fetched_at.elapsed() < self.lifetime)
            .cloned()
    }

    /// Stores `entry` under `key`, replacing any entry it had. A key already stored (the
    /// usual case: the same entities are fetched again and again) is not copied again.
    /// When its value is unchanged (as usual too) only its fetch time is: the stored copy
    /// stays and the new one is left to its caller, so the memory freed after a request is
    /// what that request just allocated, still in cache, not the old copy, long cold (and
    /// freeing cold blocks leaves the allocator handing out cold memory). An entry that
    /// changed is replaced, and the old one dropped after the lock is released.
    pub(crate) fn insert(&self, key: &str, entry: Entry<V>)
    where
        V: PartialEq,
    {
        if self.lifetime.is_zero() {
            return;
        }
        // Set before the entry is: a removal that does not see it yet comes before the
        // insert, as it would had it taken the shard's lock first.
        if !self.written.load(Ordering::Relaxed) {
            self.written.store(true, Ordering::Release);
        }
        let mut shard = self.shard(key);
        if let Some(slot) = shard.entries.get_mut(key) {
            if slot.value == entry.value {
                slot.fetched_at = entry.fetched_at;
                drop(shard);
                return;
            }
            let replaced = std::mem::replace(slot, entry);
            drop(shard);
            drop(replaced);
            return;
        }
        if shard.entries.len() >= self.per_shard {
            let now = Instant::now();
            let lifetime = self.lifetime;
            if shard
                .swept_at
                .is_none_or(|at| now.duration_since(at) >= lifetime / 4)
            {
                shard.swept_at = Some(now);
                shard
                    .entries
                    .retain(|_, entry| now.duration_since(entry.fetched_at) < lifetime);
                #[cfg(test)]
                {
                    shard.sweeps += 1;
                }
            }
            if shard.entries.len() >= self.per_shard
                && let Some(victim) = shard.entries.keys().next().cloned()
            {
                shard.entries.remove(&victim);
            }
        }
        shard.entries.insert(key.to_owned(), entry);
    }

    /// Forgets `key`.
    pub(crate) fn remove(&self, key: &str) {
        if !self.written.load(Ordering::Acquire) {
            return;
        }
        self.shard(key).entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(value: u32) -> Entry<u32> {
        Entry {
            value: Arc::new(value),
            fetched_at: Instant::now(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn entries_are_served_within_their_lifetime_and_the_store_stays_bounded() {
        let store = EntryStore::new(32, Duration::from_secs(10));
        store.insert("a", entry(1));
        assert_eq!(store.get("a").map(|e| *e.value), Some(1));
        let first = store.get("a").expect("stored").value;
        tokio::time::advance(Duration::from_secs(6)).await;
        store.insert("a", entry(1));
        let kept = store.get("a").expect("refreshed");
        assert!(
            Arc::ptr_eq(&kept.value, &first),
            "an unchanged value keeps the stored copy"
        );
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(
            store.get("a").is_some(),
            "its fetch time is the new one: 12 s after the first fetch, 6 s after the second"
        );
        store.insert("a", entry(2));
        assert_eq!(
            store.get("a").map(|e| *e.value),
            Some(2),
            "a changed value is replaced in place"
        );
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(store.get("a").is_none(), "past its lifetime");
        for n in 0..1_000 {
            store.insert(&format!("k{n}"), entry(n));
        }
        let total: usize = store
            .shards
            .iter()
            .map(|s| s.lock().map(|shard| shard.entries.len()).unwrap_or(0))
            .sum();
        assert!(total <= 32, "{total} entries kept");
        store.insert("k999", entry(7));
        assert_eq!(
            store.get("k999").map(|e| *e.value),
            Some(7),
            "the newest is kept"
        );
        store.remove("k999");
        assert!(store.get("k999").is_none());
    }

    /// Keys of `store` that land in one shard, `n` of them.
    fn same_shard_keys(store: &EntryStore<u32>, n: usize) -> Vec<String> {
        let target = store.shard_index("k0");
        (0..)
            .map(|i| format!("k{i}"))
            .filter(|key| store.shard_index(key) == target)
            .take(n)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_shard_of_live_entries_is_swept_at_most_once_per_quarter_lifetime() {
        // One entry per shard: every new key in a shard finds it full.
        let store = EntryStore::new(SHARDS as u64, Duration::from_secs(8));
        let keys = same_shard_keys(&store, 12);
        let sweeps = || store.shard(&keys[0]).sweeps;
        store.insert(&keys[0], entry(0));
        tokio::time::advance(Duration::from_secs(9)).await;
        store.insert(&keys[1], entry(1));
        assert_eq!(sweeps(), 1, "the first insert into a full shard sweeps it");
        assert!(store.get(&keys[0]).is_none(), "the expired entry was swept");
        assert_eq!(store.get(&keys[1]).map(|e| *e.value), Some(1));
        for (n, key) in keys.iter().enumerate().skip(2).take(9) {
            store.insert(key, entry(n as u32));
            assert_eq!(store.shard(key).entries.len(), 1, "bounded");
            assert_eq!(store.get(key).map(|e| *e.value), Some(n as u32));
        }
        assert_eq!(
            sweeps(),
            1,
            "live entries evicted one at a time, with no sweep within 2 s of the last"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        store.insert(&keys[11], entry(11));
        assert_eq!(sweeps(), 2, "a quarter lifetime later, a sweep again");
    }
}
