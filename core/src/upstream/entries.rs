//! The entity caches' store: entries by key, each with when it was fetched, at most
//! `max_entries` of them.
//!
//! With the default TTL of 0 every fetched entity is written and almost none is read (only
//! when an upstream fails), so writes are what must be cheap: one hash of the key picks
//! its shard (one of 16) and its slot there, one lock, one table probe. There is no
//! background housekeeping and no frequency sketch: a shard that is full drops its entries
//! past their lifetime (a sweep of the shard, at most once per quarter of the lifetime, so
//! that a store full of live entries, when there are more distinct keys than
//! `max_entries`, does not sweep at every insert), and if none are, an arbitrary one,
//! which is as good as any for a store read only in emergencies.
//!
//! Almost every write is of an entity already stored, and unchanged. Such a write should
//! touch nothing but its slot: the stored copy has not been read since it was written
//! (long out of the processor's caches), and comparing it field by field with the new one
//! would bring every block of it back in. So a slot keeps a short key inline (entity ids
//! are short) and a 128-bit fingerprint of its value, two hashes of it under independent
//! per-process seeds; a write compares fingerprints, not values. Two different values with
//! the same fingerprint (about one chance in 2^128 per changed write) would keep the
//! stored copy, with the new fetch time: the value served if the upstream then failed
//! would be the one before. ETags stake the same 128 bits on a representation.

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hashbrown::HashTable;
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

/// The longest key kept in its slot rather than in a block of its own.
const INLINE_KEY: usize = 22;

/// A key as a slot keeps it: its bytes in the slot when it is short, so that finding the
/// slot of a key reads no other block.
enum StoredKey {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Boxed(Box<[u8]>),
}

impl StoredKey {
    fn new(key: &[u8]) -> Self {
        match u8::try_from(key.len()) {
            Ok(len) if key.len() <= INLINE_KEY => {
                let mut bytes = [0; INLINE_KEY];
                bytes[..key.len()].copy_from_slice(key);
                Self::Inline { len, bytes }
            }
            _ => Self::Boxed(key.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Boxed(bytes) => bytes,
        }
    }
}

/// What a value is recognised by when it is written again: two hashes of it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Fingerprint(u64, u64);

/// One key's entry, with what finds it and what tells whether a new value differs.
struct Slot<V> {
    key: StoredKey,
    fingerprint: Fingerprint,
    entry: Entry<V>,
}

/// One shard: the slots of the keys that hash to it, and when it was last swept of
/// entries past their lifetime.
struct Shard<V> {
    slots: HashTable<Slot<V>>,
    swept_at: Option<Instant>,
    /// Sweeps made, for the tests.
    #[cfg(test)]
    sweeps: usize,
}

impl<V> Default for Shard<V> {
    fn default() -> Self {
        Self {
            slots: HashTable::new(),
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
    /// Hashes keys: some of the bits pick the shard, the table uses the others.
    key_hasher: foldhash::fast::RandomState,
    /// Hash values into their fingerprints, each with its own seed.
    fingerprinters: [foldhash::quality::RandomState; 2],
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
            key_hasher: foldhash::fast::RandomState::default(),
            fingerprinters: Default::default(),
            written: AtomicBool::new(false),
        }
    }

    fn key_hash(&self, key: &[u8]) -> u64 {
        self.key_hasher.hash_one(key)
    }

    /// The shard of a key's hash: bits the table does not use for the slot (the low ones)
    /// nor for its tags (the top seven).
    fn shard_of(hash: u64) -> usize {
        (hash >> 40) as usize % SHARDS
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Shard<V>> {
        self.shards[Self::shard_of(hash)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry of `key`, if it is within its lifetime.
    pub(crate) fn get(&self, key: &str) -> Option<Entry<V>> {
        let key = key.as_bytes();
        let hash = self.key_hash(key);
        self.shard(hash)
            .slots
            .find(hash, |slot| slot.key.as_bytes() == key)
            .map(|slot| &slot.entry)
            .filter(|entry| entry.fetched_at.elapsed() < self.lifetime)
            .cloned()
    }

    /// Stores `entry` under `key`, replacing any entry it had. A key already stored (the
    /// usual case: the same entities are fetched again and again) is not copied again.
    /// When its value is unchanged (as usual too: same fingerprint) only its fetch time is
    /// written: the stored copy stays and the new one is left to its caller, so the memory
    /// freed after a request is what that request just allocated, still in cache, not the
    /// old copy, long cold (and freeing cold blocks leaves the allocator handing out cold
    /// memory). An entry that changed is replaced, and the old one dropped after the lock
    /// is released.
    pub(crate) fn insert(&self, key: &str, entry: Entry<V>)
    where
        V: Hash,
    {
        if self.lifetime.is_zero() {
            return;
        }
        // Set before the entry is: a removal that does not see it yet comes before the
        // insert, as it would had it taken the shard's lock first.
        if !self.written.load(Ordering::Relaxed) {
            self.written.store(true, Ordering::Release);
        }
        let value: &V = &entry.value;
        let fingerprint = Fingerprint(
            self.fingerprinters[0].hash_one(value),
            self.fingerprinters[1].hash_one(value),
        );
        let key = key.as_bytes();
        let hash = self.key_hash(key);
        let mut shard = self.shard(hash);
        if let Some(slot) = shard
            .slots
            .find_mut(hash, |slot| slot.key.as_bytes() == key)
        {
            if slot.fingerprint == fingerprint {
                slot.entry.fetched_at = entry.fetched_at;
                drop(shard);
                return;
            }
            slot.fingerprint = fingerprint;
            let replaced = std::mem::replace(&mut slot.entry, entry);
            drop(shard);
            drop(replaced);
            return;
        }
        let mut evicted = Vec::new();
        if shard.slots.len() >= self.per_shard {
            let now = Instant::now();
            let lifetime = self.lifetime;
            if shard
                .swept_at
                .is_none_or(|at| now.duration_since(at) >= lifetime / 4)
            {
                shard.swept_at = Some(now);
                evicted.extend(
                    shard
                        .slots
                        .extract_if(|slot| now.duration_since(slot.entry.fetched_at) >= lifetime),
                );
                #[cfg(test)]
                {
                    shard.sweeps += 1;
                }
            }
            if shard.slots.len() >= self.per_shard {
                evicted.extend(shard.slots.extract_if(|_| true).next());
            }
        }
        let slot = Slot {
            key: StoredKey::new(key),
            fingerprint,
            entry,
        };
        let key_hasher = &self.key_hasher;
        shard
            .slots
            .insert_unique(hash, slot, |slot| key_hasher.hash_one(slot.key.as_bytes()));
        drop(shard);
        drop(evicted);
    }

    /// Forgets `key`.
    pub(crate) fn remove(&self, key: &str) {
        if !self.written.load(Ordering::Acquire) {
            return;
        }
        let key = key.as_bytes();
        let hash = self.key_hash(key);
        let removed = match self
            .shard(hash)
            .slots
            .find_entry(hash, |slot| slot.key.as_bytes() == key)
        {
            Ok(occupied) => Some(occupied.remove().0),
            Err(_) => None,
        };
        drop(removed);
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
            .map(|s| s.lock().map(|shard| shard.slots.len()).unwrap_or(0))
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

    #[tokio::test(start_paused = true)]
    async fn keys_too_long_to_keep_inline_are_told_apart_like_short_ones() {
        let store = EntryStore::new(64, Duration::from_secs(10));
        let long = "customer-0000000000000000000001";
        let sibling = "customer-0000000000000000000002";
        assert!(long.len() > INLINE_KEY);
        let prefix = &long[..INLINE_KEY];
        store.insert(long, entry(1));
        store.insert(sibling, entry(2));
        store.insert(prefix, entry(3));
        store.insert("", entry(4));
        assert_eq!(store.get(long).map(|e| *e.value), Some(1));
        assert_eq!(store.get(sibling).map(|e| *e.value), Some(2));
        assert_eq!(store.get(prefix).map(|e| *e.value), Some(3));
        assert_eq!(store.get("").map(|e| *e.value), Some(4));
        assert!(store.get(&long[..INLINE_KEY - 1]).is_none());
        store.insert(long, entry(5));
        assert_eq!(
            store.get(long).map(|e| *e.value),
            Some(5),
            "changed, replaced"
        );
        store.remove(long);
        assert!(store.get(long).is_none());
        assert_eq!(store.get(sibling).map(|e| *e.value), Some(2));
    }

    /// Keys of `store` that land in one shard, `n` of them.
    fn same_shard_keys(store: &EntryStore<u32>, n: usize) -> Vec<String> {
        let shard_of = |key: &str| EntryStore::<u32>::shard_of(store.key_hash(key.as_bytes()));
        let target = shard_of("k0");
        (0..)
            .map(|i| format!("k{i}"))
            .filter(|key| shard_of(key) == target)
            .take(n)
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_shard_of_live_entries_is_swept_at_most_once_per_quarter_lifetime() {
        // One entry per shard: every new key in a shard finds it full.
        let store = EntryStore::new(SHARDS as u64, Duration::from_secs(8));
        let keys = same_shard_keys(&store, 12);
        let shard = |key: &str| store.shard(store.key_hash(key.as_bytes()));
        let sweeps = || shard(&keys[0]).sweeps;
        store.insert(&keys[0], entry(0));
        tokio::time::advance(Duration::from_secs(9)).await;
        store.insert(&keys[1], entry(1));
        assert_eq!(sweeps(), 1, "the first insert into a full shard sweeps it");
        assert!(store.get(&keys[0]).is_none(), "the expired entry was swept");
        assert_eq!(store.get(&keys[1]).map(|e| *e.value), Some(1));
        for (n, key) in keys.iter().enumerate().skip(2).take(9) {
            store.insert(key, entry(n as u32));
            assert_eq!(shard(key).slots.len(), 1, "bounded");
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
