//! The in-process store: the embedded default (one replica), the fallback when Redis
//! fails with `on_store_error = "local"`, and the pre-authentication limit per address.
//!
//! One map from consumer to counters behind a mutex; a decision holds it for a few
//! arithmetic operations. Entries whose bucket is full again and whose quota windows have
//! all ended say nothing a fresh entry would not, so a sweep every few thousand decisions
//! drops them and the map stays as large as the set of recently active consumers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::config::Period;
use super::policy::{Counters, Decision, Plan, evaluate, window};

/// Decisions between two sweeps of idle entries.
const SWEEP_EVERY: u64 = 4_096;

#[derive(Debug)]
struct Entry {
    tat_ms: f64,
    /// `(period, window start, units used)` of each quota window seen.
    windows: Vec<(Period, i64, u64)>,
    /// When the last of its windows ends, in Unix milliseconds.
    expires_ms: i64,
}

/// Usage-plan counters kept in this process.
#[derive(Debug, Default)]
pub(super) struct LocalStore {
    entries: Mutex<HashMap<String, Entry>>,
    decisions: AtomicU64,
}

impl LocalStore {
    /// Decides `cost` units of `plan` for `consumer` at `now_ms`, and charges them if the
    /// request is admitted.
    pub(super) fn decide(&self, consumer: &str, plan: &Plan, cost: u32, now_ms: i64) -> Decision {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.decisions.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            entries.retain(|_, entry| entry.tat_ms > now_ms as f64 || entry.expires_ms > now_ms);
        }
        let windows: Vec<_> = plan
            .quotas
            .iter()
            .map(|quota| window(quota.period, now_ms))
            .collect();
        let entry = entries.get(consumer);
        let counters = Counters {
            tat_ms: entry.map(|e| e.tat_ms),
            used: windows
                .iter()
                .map(|w| {
                    entry
                        .and_then(|e| {
                            e.windows.iter().find(|(period, start, _)| {
                                *period == w.period && *start == w.start_ms
                            })
                        })
                        .map_or(0, |(_, _, used)| *used)
                })
                .collect(),
        };
        let (decision, new_tat) = evaluate(plan, now_ms, &counters, cost);
        if decision.allowed {
            let charged = windows
                .iter()
                .zip(&counters.used)
                .map(|(w, used)| (w.period, w.start_ms, used + u64::from(cost)));
            let expires_ms = windows.iter().map(|w| w.end_ms).max().unwrap_or(0);
            match entries.get_mut(consumer) {
                // The common case: update in place, without allocating a key.
                Some(entry) => {
                    entry.tat_ms = new_tat;
                    entry.windows.clear();
                    entry.windows.extend(charged);
                    entry.expires_ms = expires_ms;
                }
                None => {
                    entries.insert(
                        consumer.to_owned(),
                        Entry {
                            tat_ms: new_tat,
                            windows: charged.collect(),
                            expires_ms,
                        },
                    );
                }
            }
        }
        decision
    }
}
