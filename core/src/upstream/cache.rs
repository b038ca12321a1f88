//! Entity caches in front of the upstream clients: fresh hits, collapsed misses, and stale
//! data when the upstream fails.
//!
//! Each cached client implements the same trait as the client it wraps, so BFFs do not
//! know it is there. For every entity fetched by id:
//! - within `ttl` of its fetch, an entry is served without calling upstream;
//! - concurrent misses for the same key wait for one fetch rather than making their own;
//! - when a fetch fails (upstream down, erroring, slow, or its breaker open), entries younger
//!   than `ttl + stale_for` are served instead, and the staleness is recorded in the
//!   request's [`Freshness`](super::Freshness) report, so the BFF can tell its client how
//!   old the data is.
//!
//! Ages use tokio's clock, so tests drive them with a paused clock.

use foldhash::{HashMap, HashMapExt as _};
use std::future::Future;
use std::hash::BuildHasher as _;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::api::{
    CustomersApi, InventoryApi, Keyed, OrdersApi, OrdersQuery, Service, UpstreamError,
    UpstreamResult,
};
use super::config::CacheConfig;
use super::entries::{Entry, EntryStore};
use super::scope::record_stale;
use crate::domain::{Customer, Order, Page, ReadingsAck, ReadingsBatch, StockLevel};
use crate::metrics::RequestRecord;
use crate::signal::Signal;

/// A fetch in flight, shared with the callers that wait for it: its outcome is the
/// entities fetched (handed over directly, so a waiter never depends on the entry still
/// being in the cache or counting as fresh: with a TTL of 0 it never does). The signal
/// fires once the outcome is set, or without one if the fetch was abandoned.
struct InFlight<V> {
    /// The keys fetched (the fetch's own copy, shared).
    keys: Arc<[String]>,
    outcome: OnceLock<Result<Vec<Arc<V>>, UpstreamError>>,
    signal: Signal,
}

/// A fetch in flight and where one of its keys is among the fetch's keys.
type FlightOfKey<V> = (Arc<InFlight<V>>, usize);

/// A cache of one entity type, keyed by id.
pub struct EntityCache<V> {
    service: Service,
    ttl: Duration,
    usable_for: Duration,
    entries: EntryStore<V>,
    /// Fetches in flight by the hash of each key they fetch, with where the key is among
    /// the fetch's keys (checked there, so a collision only means a second fetch): no
    /// copy of a key per fetch.
    in_flight: Mutex<HashMap<u64, FlightOfKey<V>>>,
    key_hasher: foldhash::fast::RandomState,
}

impl<V: std::hash::Hash + Send + Sync + 'static> EntityCache<V> {
    /// A cache for entities of `service` with `config`'s policy.
    pub fn new(service: Service, config: &CacheConfig) -> Self {
        let ttl = Duration::from_millis(config.ttl_ms);
        let usable_for = ttl + Duration::from_millis(config.stale_for_ms);
        Self {
            service,
            ttl,
            usable_for,
            entries: EntryStore::new(config.max_entries, usable_for),
            in_flight: Mutex::new(HashMap::new()),
            key_hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// Forgets `key`, fresh or stale.
    pub fn invalidate(&self, key: &str) {
        self.entries.remove(key);
    }

    fn fresh(&self, key: &str) -> Option<Arc<V>> {
        // With a TTL of 0 (the default) nothing is ever fresh: no lock, no lookup.
        if self.ttl.is_zero() {
            return None;
        }
        self.entries
            .get(key)
            .filter(|entry| entry.fetched_at.elapsed() < self.ttl)
            .map(|entry| entry.value)
    }

    /// A stale-but-usable entry and its age.
    fn usable(&self, key: &str) -> Option<(Arc<V>, Duration)> {
        self.entries.get(key).and_then(|entry| {
            let age = entry.fetched_at.elapsed();
            (age < self.usable_for).then_some((entry.value, age))
        })
    }

    /// Entities for `keys`: fresh hits from the cache, misses fetched with one `fetch` call
    /// (keys another caller is already fetching are waited for), and stale entries when the
    /// fetch fails. Unknown keys are absent from the result. Fails only if some key can be
    /// served neither fresh nor stale. The result is keyed by the caller's own keys,
    /// borrowed, so no key is copied for it.
    pub async fn get_many<'k, F, Fut>(
        &self,
        keys: &'k [String],
        key_of: fn(&V) -> &str,
        fetch: F,
    ) -> UpstreamResult<HashMap<&'k str, Arc<V>>>
    where
        F: Fn(Arc<[String]>) -> Fut,
        Fut: Future<Output = UpstreamResult<Vec<V>>>,
    {
        let mut found = HashMap::with_capacity(keys.len());
        let mut stale_age = None;
        let mut lookups = Lookups::default();
        // A key whose fetch (by another caller) was abandoned goes round again; after a few
        // rounds this caller fetches it itself, so the loop always ends.
        let mut pending: Vec<&'k str> = Vec::new();
        for round in 0..3 {
            let asked: Vec<&'k str> = match round {
                0 => keys.iter().map(String::as_str).collect(),
                _ if pending.is_empty() => break,
                _ => std::mem::take(&mut pending),
            };
            pending = self
                .round(
                    &asked,
                    key_of,
                    &fetch,
                    &mut found,
                    &mut stale_age,
                    &mut lookups,
                )
                .await?;
        }
        if !pending.is_empty() {
            lookups.misses += pending.len() as u64;
            let fetched = fetch(owned(&pending)).await?;
            let _ = self.store(fetched, key_of, &mut found, &pending);
        }
        RequestRecord::note_cache(
            self.service.as_str(),
            lookups.hits,
            lookups.misses,
            lookups.stale,
        );
        if let Some(age) = stale_age {
            tracing::info!(service = %self.service, age_ms = age.as_millis() as u64, "served stale data");
            record_stale(self.service, age);
        }
        Ok(found)
    }

    /// One round of [`EntityCache::get_many`]; returns the keys to try again because the
    /// fetch they waited for was abandoned.
    async fn round<'k, F, Fut>(
        &self,
        keys: &[&'k str],
        key_of: fn(&V) -> &str,
        fetch: &F,
        found: &mut HashMap<&'k str, Arc<V>>,
        stale_age: &mut Option<Duration>,
        lookups: &mut Lookups,
    ) -> UpstreamResult<Vec<&'k str>>
    where
        F: Fn(Arc<[String]>) -> Fut,
        Fut: Future<Output = UpstreamResult<Vec<V>>>,
    {
        // The keys this caller fetches, borrowed: copied only where they must outlive the
        // call, into the in-flight map and for the fetch.
        let mut mine: Vec<&'k str> = Vec::new();
        let mut theirs = Vec::new();
        let flight = {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for &key in keys {
                if found.contains_key(key) || mine.contains(&key) {
                    continue;
                }
                if let Some(value) = self.fresh(key) {
                    lookups.hits += 1;
                    found.insert(key, value);
                } else if let Some((pending, _)) = in_flight
                    .get(&self.key_hash(key))
                    .filter(|(pending, at)| pending.keys[*at] == key)
                {
                    theirs.push((key, Arc::clone(pending)));
                } else {
                    mine.push(key);
                }
            }
            lookups.misses += (mine.len() + theirs.len()) as u64;
            if mine.is_empty() {
                None
            } else {
                let flight = Arc::new(InFlight {
                    keys: owned(&mine),
                    outcome: OnceLock::new(),
                    signal: Signal::default(),
                });
                for (at, &key) in mine.iter().enumerate() {
                    // Taken only by a colliding key of another fetch: this key is then not
                    // found in flight, and a caller for it fetches it again.
                    in_flight
                        .entry(self.key_hash(key))
                        .or_insert_with(|| (Arc::clone(&flight), at));
                }
                Some(flight)
            }
        };
        let mut failure = None;
        if let Some(flight) = flight {
            let _release = InFlightRelease {
                cache: self,
                keys: &mine,
                flight: &flight,
            };
            let outcome = match fetch(Arc::clone(&flight.keys)).await {
                Ok(values) => Ok(self.store(values, key_of, found, &mine)),
                Err(error) => {
                    failure = Some(error.clone());
                    Err(error)
                }
            };
            let _ = flight.outcome.set(outcome);
        }
        let mut retry = Vec::new();
        for (key, flight) in theirs {
            flight.signal.fired().await;
            // No outcome means the other caller was cancelled before answering.
            let answered = flight.outcome.get().is_some();
            let (fetched, other_failure) = match flight.outcome.get() {
                Some(Ok(fetched)) => (
                    fetched.iter().find(|value| key_of(value) == key).cloned(),
                    None,
                ),
                Some(Err(error)) => (None, Some(error.clone())),
                None => (None, None),
            };
            if let Some(value) = fetched.or_else(|| self.fresh(key)) {
                found.insert(key, value);
                continue;
            }
            match (answered, other_failure) {
                (false, _) => retry.push(key),
                (true, Some(error)) => self.serve_stale(key, error, found, stale_age, lookups)?,
                // Answered without it: the upstream does not know the key.
                (true, None) => {}
            }
        }
        if let Some(error) = failure {
            for &key in &mine {
                if !found.contains_key(key) {
                    self.serve_stale(key, error.clone(), found, stale_age, lookups)?;
                }
            }
        }
        Ok(retry)
    }

    /// Stores fetched entities; those among `wanted` go into `found`, under the caller's
    /// key. Returns everything fetched.
    fn store<'k>(
        &self,
        values: Vec<V>,
        key_of: fn(&V) -> &str,
        found: &mut HashMap<&'k str, Arc<V>>,
        wanted: &[&'k str],
    ) -> Vec<Arc<V>> {
        let now = Instant::now();
        let mut fetched = Vec::with_capacity(values.len());
        for value in values {
            let value = Arc::new(value);
            let key = key_of(&value);
            self.entries.insert(
                key,
                Entry {
                    value: Arc::clone(&value),
                    fetched_at: now,
                },
            );
            if let Some(&wanted) = wanted.iter().find(|k| **k == key) {
                found.insert(wanted, Arc::clone(&value));
            }
            fetched.push(value);
        }
        fetched
    }

    /// Serves `key` from a stale entry after `error`, or fails with `error`.
    fn serve_stale<'k>(
        &self,
        key: &'k str,
        error: UpstreamError,
        found: &mut HashMap<&'k str, Arc<V>>,
        stale_age: &mut Option<Duration>,
        lookups: &mut Lookups,
    ) -> UpstreamResult<()> {
        let (value, age) = self.usable(key).ok_or(error)?;
        *stale_age = (*stale_age).max(Some(age));
        lookups.stale += 1;
        found.insert(key, value);
        Ok(())
    }
}

/// What one [`EntityCache::get_many`] found where: fresh hits, misses (fetched, or waited
/// for another caller's fetch) and misses served stale after a failure.
#[derive(Default)]
struct Lookups {
    hits: u64,
    misses: u64,
    stale: u64,
}

impl<V> EntityCache<V> {
    fn key_hash(&self, key: &str) -> u64 {
        self.key_hasher.hash_one(key)
    }
}

/// Removes a fetch's keys from the in-flight map and fires its signal however the fetch
/// ends (even if the caller is cancelled, with no outcome), so that later callers fetch
/// again and waiting ones look again, instead of waiting forever.
struct InFlightRelease<'a, V> {
    cache: &'a EntityCache<V>,
    keys: &'a [&'a str],
    flight: &'a InFlight<V>,
}

impl<V> Drop for InFlightRelease<'_, V> {
    fn drop(&mut self) {
        {
            let mut in_flight = self
                .cache
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for &key in self.keys {
                let hash = self.cache.key_hash(key);
                if in_flight
                    .get(&hash)
                    .is_some_and(|(flight, _)| std::ptr::eq(Arc::as_ptr(flight), self.flight))
                {
                    in_flight.remove(&hash);
                }
            }
        }
        self.flight.signal.fire();
    }
}

/// `keys` as the fetch takes them: owned, since its future may outlive the caller's keys.
fn owned(keys: &[&str]) -> Arc<[String]> {
    keys.iter().map(|key| (*key).to_owned()).collect()
}

fn in_order<V>(keys: &[String], mut found: HashMap<&str, Arc<V>>) -> Vec<V>
where
    V: Clone,
{
    keys.iter()
        .filter_map(|key| found.remove(key.as_str()))
        .map(|value| Arc::unwrap_or_clone(value))
        .collect()
}

/// `found` lined up with `keys`, sharing the entries instead of copying them.
fn keyed_from<V>(keys: &[String], found: &HashMap<&str, Arc<V>>) -> Keyed<V> {
    keys.iter()
        .map(|key| found.get(key.as_str()).cloned())
        .collect()
}

fn single<V: Clone>(
    service: Service,
    key: &str,
    mut found: HashMap<&str, Arc<V>>,
) -> UpstreamResult<V> {
    found
        .remove(key)
        .map(Arc::unwrap_or_clone)
        .ok_or(UpstreamError::NotFound { service })
}

/// The customers service behind an entity cache.
pub struct CachedCustomers {
    inner: Arc<dyn CustomersApi>,
    cache: EntityCache<Customer>,
}

impl CachedCustomers {
    /// Caches `inner`'s customers with `config`'s policy.
    pub fn new(inner: Arc<dyn CustomersApi>, config: &CacheConfig) -> Self {
        Self {
            inner,
            cache: EntityCache::new(Service::Customers, config),
        }
    }
}

#[async_trait]
impl CustomersApi for CachedCustomers {
    async fn customer(&self, id: &str) -> UpstreamResult<Customer> {
        let keys = [id.to_owned()];
        let found = self.customers_map(&keys).await?;
        single(Service::Customers, id, found)
    }

    async fn customers(&self, ids: &[String]) -> UpstreamResult<Vec<Customer>> {
        Ok(in_order(ids, self.customers_map(ids).await?))
    }

    async fn customers_keyed(&self, ids: &[String]) -> UpstreamResult<Keyed<Customer>> {
        Ok(keyed_from(ids, &self.customers_map(ids).await?))
    }
}

impl CachedCustomers {
    async fn customers_map<'k>(
        &self,
        ids: &'k [String],
    ) -> UpstreamResult<HashMap<&'k str, Arc<Customer>>> {
        self.cache
            .get_many(
                ids,
                |c| &c.id,
                |missing| async move { self.inner.customers(&missing).await },
            )
            .await
    }
}

/// The orders service with orders-by-id behind an entity cache (listings are not cached).
pub struct CachedOrders {
    inner: Arc<dyn OrdersApi>,
    cache: EntityCache<Order>,
}

impl CachedOrders {
    /// Caches `inner`'s orders with `config`'s policy.
    pub fn new(inner: Arc<dyn OrdersApi>, config: &CacheConfig) -> Self {
        Self {
            inner,
            cache: EntityCache::new(Service::Orders, config),
        }
    }
}

impl CachedOrders {
    async fn orders_map<'k>(
        &self,
        ids: &'k [String],
    ) -> UpstreamResult<HashMap<&'k str, Arc<Order>>> {
        self.cache
            .get_many(
                ids,
                |o| &o.id,
                |missing| async move { self.inner.orders_by_ids(&missing).await },
            )
            .await
    }
}

#[async_trait]
impl OrdersApi for CachedOrders {
    async fn order(&self, id: &str) -> UpstreamResult<Order> {
        let keys = [id.to_owned()];
        let found = self.orders_map(&keys).await?;
        single(Service::Orders, id, found)
    }

    async fn orders_by_ids(&self, ids: &[String]) -> UpstreamResult<Vec<Order>> {
        Ok(in_order(ids, self.orders_map(ids).await?))
    }

    async fn orders_keyed(&self, ids: &[String]) -> UpstreamResult<Keyed<Order>> {
        Ok(keyed_from(ids, &self.orders_map(ids).await?))
    }

    async fn list_orders(&self, query: &OrdersQuery) -> UpstreamResult<Page<Order>> {
        self.inner.list_orders(query).await
    }
}

/// The inventory service behind an entity cache.
pub struct CachedInventory {
    inner: Arc<dyn InventoryApi>,
    cache: EntityCache<StockLevel>,
}

impl CachedInventory {
    /// Caches `inner`'s stock levels with `config`'s policy.
    pub fn new(inner: Arc<dyn InventoryApi>, config: &CacheConfig) -> Self {
        Self {
            inner,
            cache: EntityCache::new(Service::Inventory, config),
        }
    }
}

impl CachedInventory {
    async fn stock_map<'k>(
        &self,
        skus: &'k [String],
    ) -> UpstreamResult<HashMap<&'k str, Arc<StockLevel>>> {
        self.cache
            .get_many(
                skus,
                |s| &s.sku,
                |missing| async move { self.inner.stock_levels(&missing).await },
            )
            .await
    }
}

#[async_trait]
impl InventoryApi for CachedInventory {
    async fn stock_level(&self, sku: &str) -> UpstreamResult<StockLevel> {
        let keys = [sku.to_owned()];
        let found = self.stock_map(&keys).await?;
        single(Service::Inventory, sku, found)
    }

    async fn stock_levels(&self, skus: &[String]) -> UpstreamResult<Vec<StockLevel>> {
        Ok(in_order(skus, self.stock_map(skus).await?))
    }

    async fn stock_levels_keyed(&self, skus: &[String]) -> UpstreamResult<Keyed<StockLevel>> {
        Ok(keyed_from(skus, &self.stock_map(skus).await?))
    }

    /// Writes go straight through; the cached levels of the SKUs they touch are dropped,
    /// so a later outage cannot serve a level older than a reading that was applied.
    async fn post_readings(
        &self,
        idempotency_key: &str,
        batch: &ReadingsBatch,
    ) -> UpstreamResult<ReadingsAck> {
        let ack = self.inner.post_readings(idempotency_key, batch).await;
        for reading in &batch.readings {
            self.cache.invalidate(&reading.sku);
        }
        ack
    }
}
