//! The inventory service's mutable state: stock levels moved by device readings, and the
//! idempotency records that make `POST /inventory/readings` safe to retry.
//!
//! Levels start as the dataset's and change only through readings, and only to a newer
//! observation than the one last applied (a late retry of an old message is acknowledged
//! but changes nothing). Applying a batch and
//! recording its `Idempotency-Key` happen under one lock, so concurrent deliveries of the
//! same batch apply it once.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use switchyard_core::domain::{ReadingsAck, ReadingsBatch, RejectedReading, StockLevel};

use crate::data::Dataset;

/// Idempotency records kept; the oldest half is dropped when full (a sandbox simplification:
/// a production service keeps keys for a fixed retention period).
const MAX_REMEMBERED_KEYS: usize = 200_000;

/// What a delivery of a batch came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// First delivery of this key: applied now.
    Applied(ReadingsAck),
    /// The key was seen with the same batch: the first answer, nothing applied.
    Replayed(ReadingsAck),
    /// The key was seen with a different batch.
    KeyReused,
}

#[derive(Default)]
struct State {
    overrides: HashMap<String, StockLevel>,
    /// Key → (hash of the batch, the answer given), with insertion order for eviction.
    answers: HashMap<String, (u64, ReadingsAck)>,
    order: Vec<String>,
    batches_applied: u64,
    readings_applied: u64,
}

/// Current stock: the dataset's levels overlaid by applied readings.
pub struct StockBook {
    data: Arc<Dataset>,
    state: Mutex<State>,
}

fn batch_hash(batch: &ReadingsBatch) -> u64 {
    let mut hasher = DefaultHasher::new();
    batch.device_id.hash(&mut hasher);
    batch.warehouse_id.hash(&mut hasher);
    for reading in &batch.readings {
        reading.sku.hash(&mut hasher);
        reading.quantity.hash(&mut hasher);
        reading.observed_at.unix_timestamp_nanos().hash(&mut hasher);
    }
    hasher.finish()
}

impl StockBook {
    /// Levels as generated, before any reading.
    pub fn new(data: Arc<Dataset>) -> Self {
        Self {
            data,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current level of `sku`.
    pub fn level(&self, sku: &str) -> Option<StockLevel> {
        let state = self.lock();
        state
            .overrides
            .get(sku)
            .or_else(|| self.data.stock_level(sku))
            .cloned()
    }

    /// Current levels of the known SKUs among `skus`, in request order.
    pub fn levels(&self, skus: &[String]) -> Vec<StockLevel> {
        let state = self.lock();
        skus.iter()
            .filter_map(|sku| {
                state
                    .overrides
                    .get(sku)
                    .or_else(|| self.data.stock_level(sku))
            })
            .cloned()
            .collect()
    }

    /// Batches applied (not counting replays) and readings accepted so far.
    pub fn applied(&self) -> (u64, u64) {
        let state = self.lock();
        (state.batches_applied, state.readings_applied)
    }

    /// Delivers `batch` under `key`: applies it the first time, replays the answer after.
    pub fn deliver(&self, key: &str, batch: &ReadingsBatch) -> Delivery {
        let hash = batch_hash(batch);
        let mut state = self.lock();
        if let Some((seen_hash, answer)) = state.answers.get(key) {
            return if *seen_hash == hash {
                Delivery::Replayed(answer.clone())
            } else {
                Delivery::KeyReused
            };
        }
        let mut accepted = 0;
        let mut rejected = Vec::new();
        for (index, reading) in batch.readings.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let reason = if reading.quantity < 0 {
                Some("negative_quantity")
            } else if self.data.stock_level(&reading.sku).is_none() {
                Some("unknown_sku")
            } else {
                None
            };
            if let Some(reason) = reason {
                rejected.push(RejectedReading {
                    index,
                    reason: reason.to_owned(),
                });
                continue;
            }
            let current = state
                .overrides
                .get(&reading.sku)
                .or_else(|| self.data.stock_level(&reading.sku))
                .cloned();
            if let Some(mut level) = current {
                accepted += 1;
                // Last observation wins: a reading older than one already applied (a late
                // retry of an old message) is received but changes nothing.
                let superseded = state
                    .overrides
                    .get(&reading.sku)
                    .is_some_and(|applied| applied.updated_at > reading.observed_at);
                if !superseded {
                    level.available = reading.quantity;
                    level.updated_at = reading.observed_at;
                    state.overrides.insert(reading.sku.clone(), level);
                }
            }
        }
        let ack = ReadingsAck { accepted, rejected };
        state.batches_applied += 1;
        state.readings_applied += u64::from(accepted);
        if state.order.len() >= MAX_REMEMBERED_KEYS {
            let dropped: Vec<String> = state.order.drain(..MAX_REMEMBERED_KEYS / 2).collect();
            for old in dropped {
                state.answers.remove(&old);
            }
        }
        state.order.push(key.to_owned());
        state.answers.insert(key.to_owned(), (hash, ack.clone()));
        Delivery::Applied(ack)
    }
}

#[cfg(test)]
mod tests {
    use switchyard_core::domain::Reading;
    use time::macros::datetime;

    use super::*;

    fn batch(quantity: i64, observed_at: time::OffsetDateTime) -> ReadingsBatch {
        ReadingsBatch {
            device_id: "dev-1".into(),
            warehouse_id: "wh-1".into(),
            readings: vec![Reading {
                sku: "SKU-00001".into(),
                quantity,
                observed_at,
            }],
        }
    }

    #[test]
    fn a_late_older_reading_does_not_overwrite_a_newer_count() {
        let book = StockBook::new(Arc::new(Dataset::generate(crate::data::DEFAULT_SEED)));
        let newer = book.deliver("k2", &batch(7, datetime!(2026-12-01 10:00 UTC)));
        assert!(matches!(
            newer,
            Delivery::Applied(ReadingsAck { accepted: 1, .. })
        ));
        let older = book.deliver("k1", &batch(3, datetime!(2026-12-01 09:00 UTC)));
        assert!(matches!(
            older,
            Delivery::Applied(ReadingsAck { accepted: 1, .. })
        ));
        assert_eq!(book.level("SKU-00001").map(|l| l.available), Some(7));
        let newest = book.deliver("k3", &batch(5, datetime!(2026-12-01 11:00 UTC)));
        assert!(matches!(newest, Delivery::Applied(_)));
        assert_eq!(book.level("SKU-00001").map(|l| l.available), Some(5));
    }
}
