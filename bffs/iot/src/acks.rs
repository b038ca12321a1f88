//! The acks already given, by `(device, seq)`, so a repeated message gets the same bytes
//! without a second upstream apply.
//!
//! Two levels: this process's [`AckBook`], always, and with `redis.url` set the fleet's
//! table of acks (`sy:acks:<device>:<seq>` → content digest + ack bytes, kept
//! `devices.ack_retention_secs`, written set-if-absent), so a retry that lands on another
//! replica is answered like one that comes back here. If Redis fails the message is
//! treated as new: it goes upstream under its `Idempotency-Key`, which the inventory
//! service applies once, so a reading is never lost nor counted twice; only the
//! "no second upstream call" saving is given up until Redis answers again.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_lc_rs::digest;
use axum::body::Bytes;
use switchyard_core::shared_state::{RedisClient, RedisTable, SharedTable};
use tokio::time::Instant;

use crate::message::ReadingMessage;

/// SHA-256 of a decoded message, so two encodings of one message are the same message and
/// every replica (every build) computes the same digest.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct ContentDigest([u8; 32]);

impl ContentDigest {
    pub(crate) fn of(message: &ReadingMessage) -> Self {
        let mut hasher = DigestHasher(Vec::with_capacity(1024));
        message.hash(&mut hasher);
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest::digest(&digest::SHA256, &hasher.0).as_ref());
        Self(bytes)
    }
}

/// Collects what `Hash` writes, for one SHA-256 of all of it (a message's `Hash` makes
/// some sixty small writes, and each update of a digest context has a fixed cost). `Hash`
/// writes integers in native byte order and lengths as `usize`; every replica of a fleet
/// runs on the same architecture, so they agree.
struct DigestHasher(Vec<u8>);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    fn finish(&self) -> u64 {
        unreachable!("only the SHA-256 of the stream is used")
    }
}

/// What is known of a message.
pub(crate) enum Recall {
    /// It was answered with this ack.
    Given(Bytes),
    /// Its `(device, seq)` was used for a message with other content.
    OtherMessage,
    /// Not seen (or the shared table could not be asked).
    Unknown,
}

/// The `(device, seq)` was answered for another message first.
pub(crate) struct SeqReused;

/// The acks, in this process and (when configured) across the fleet.
pub(crate) struct AckLedger {
    local: AckBook,
    shared: Option<RedisTable>,
}

impl AckLedger {
    /// A ledger keeping `entries` acks in process (`per_device` per device), and sharing
    /// them through `redis` when given, each for `retention`.
    pub(crate) fn new(
        entries: u64,
        per_device: u32,
        retention: Duration,
        redis: Option<&RedisClient>,
    ) -> Self {
        Self {
            local: AckBook::new(entries, per_device, retention),
            shared: redis.map(|client| {
                RedisTable::new(
                    client.clone(),
                    "acks",
                    retention,
                    "treating repeats as new messages; the inventory service's idempotency key still applies each once",
                )
            }),
        }
    }

    /// `device`'s acks. Its place in this process's book is looked up here, once, for
    /// both the recall before the upstream call and the remembering after it.
    pub(crate) fn device<'a>(&'a self, device: &'a str) -> DeviceAcks<'a> {
        DeviceAcks {
            ledger: self,
            device,
            local: self.local.device(device),
        }
    }
}

/// One device's acks, in this process and (when configured) across the fleet.
pub(crate) struct DeviceAcks<'a> {
    ledger: &'a AckLedger,
    device: &'a str,
    local: DeviceBook<'a>,
}

impl DeviceAcks<'_> {
    /// What is known of the device's message `seq` with content `digest`.
    pub(crate) async fn recall(&self, seq: u64, digest: &ContentDigest) -> Recall {
        if let Some((seen, ack)) = self.local.get(seq) {
            return judge(&seen, digest, ack);
        }
        let Some(shared) = &self.ledger.shared else {
            return Recall::Unknown;
        };
        match shared.get(&key(self.device, seq)).await {
            Ok(Some(record)) => match split(record) {
                Some((seen, ack)) => {
                    self.local.remember(seq, seen, ack.clone());
                    judge(&seen, digest, ack)
                }
                None => Recall::Unknown,
            },
            Ok(None) | Err(_) => Recall::Unknown,
        }
    }

    /// Remembers `ack` as the answer to the device's message `seq` with content `digest`,
    /// and returns the ack to send: `ack`, or the one another replica wrote first.
    pub(crate) async fn remember(
        &self,
        seq: u64,
        digest: &ContentDigest,
        ack: Bytes,
    ) -> Result<Bytes, SeqReused> {
        let mut kept = (*digest, ack.clone());
        if let Some(shared) = &self.ledger.shared {
            let mut record = Vec::with_capacity(32 + ack.len());
            record.extend_from_slice(&digest.0);
            record.extend_from_slice(&ack);
            if let Ok(first) = shared
                .insert_if_absent(&key(self.device, seq), Bytes::from(record))
                .await
                && let Some(first) = split(first)
            {
                kept = first;
            }
        }
        self.local.remember(seq, kept.0, kept.1.clone());
        if kept.0 == *digest {
            Ok(kept.1)
        } else {
            Err(SeqReused)
        }
    }
}

fn judge(seen: &ContentDigest, digest: &ContentDigest, ack: Bytes) -> Recall {
    if seen == digest {
        Recall::Given(ack)
    } else {
        Recall::OtherMessage
    }
}

fn key(device: &str, seq: u64) -> String {
    format!("{device}:{seq}")
}

/// A shared record: 32 bytes of digest, then the ack.
fn split(record: Bytes) -> Option<(ContentDigest, Bytes)> {
    let digest: [u8; 32] = record.get(..32)?.try_into().ok()?;
    Some((ContentDigest(digest), record.slice(32..)))
}

/// Acks already given in this process, by `(device, seq)`, with the digest of the message
/// they answered.
///
/// Kept per device, the most recent `per_device` of each: a device resends a message
/// whose ack it lost within seconds, so its recent acks are what matter, and no device
/// can push other devices' acks out by numbering messages without end. Devices are
/// evicted least recently used first (moka's default admission policy would refuse new
/// devices once the book is full) and forgotten after `retention` without a message.
pub(crate) struct AckBook {
    devices: moka::sync::Cache<String, Arc<Mutex<VecDeque<RememberedAck>>>>,
    per_device: usize,
    retention: Duration,
}

/// One ack: the message's `seq` and content digest, the ack's bytes, and when it was
/// given.
struct RememberedAck {
    seq: u64,
    digest: ContentDigest,
    ack: Bytes,
    at: Instant,
}

impl AckBook {
    /// A book keeping up to `entries` acks in all, `per_device` per device, each for
    /// `retention`.
    pub(crate) fn new(entries: u64, per_device: u32, retention: Duration) -> Self {
        let per_device = per_device.max(1);
        Self {
            devices: moka::sync::Cache::builder()
                .max_capacity((entries / u64::from(per_device)).max(1))
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .time_to_idle(retention)
                .build(),
            per_device: per_device as usize,
            retention,
        }
    }

    /// `device`'s acks, made room for if it has none yet (it is about to: the caller has
    /// a message of it).
    fn device(&self, device: &str) -> DeviceBook<'_> {
        DeviceBook {
            acks: self
                .devices
                .get_with_by_ref(device, || Arc::new(Mutex::new(VecDeque::new()))),
            book: self,
        }
    }
}

/// One device's acks in an [`AckBook`]. If the book evicts the device while a message of
/// it is upstream, that message's ack is kept only here and then forgotten: a repeat of
/// it goes upstream again, under the same `Idempotency-Key`, and is still applied once.
struct DeviceBook<'a> {
    acks: Arc<Mutex<VecDeque<RememberedAck>>>,
    book: &'a AckBook,
}

impl DeviceBook<'_> {
    /// The ack given to the device's message `seq`, with that message's digest.
    fn get(&self, seq: u64) -> Option<(ContentDigest, Bytes)> {
        let acks = self.acks.lock().unwrap_or_else(PoisonError::into_inner);
        acks.iter()
            .rev()
            .find(|remembered| {
                remembered.seq == seq && remembered.at.elapsed() < self.book.retention
            })
            .map(|remembered| (remembered.digest, remembered.ack.clone()))
    }

    /// Remembers the ack given to the device's message `seq` of content `digest`.
    fn remember(&self, seq: u64, digest: ContentDigest, ack: Bytes) {
        let mut acks = self.acks.lock().unwrap_or_else(PoisonError::into_inner);
        acks.retain(|remembered| remembered.seq != seq);
        acks.push_back(RememberedAck {
            seq,
            digest,
            ack,
            at: Instant::now(),
        });
        while acks.len() > self.book.per_device {
            acks.pop_front();
        }
    }
}
