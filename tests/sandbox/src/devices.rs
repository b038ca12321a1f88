//! The device simulator: `switchyard-sandbox devices --count N --rate R` posts realistic
//! stock readings to the IoT BFF, the way flaky warehouse devices do.
//!
//! Each simulated device mints its own token with the sandbox's dev key (`sub` = its id,
//! scope `data:inventory:write`), numbers its messages, and retries a message that failed
//! with a 5xx, a 429 or a network error — the same message, same `seq` — after the server's
//! `Retry-After`, until it is acknowledged. With `--resend-rate`, some acknowledged
//! messages are sent again, as a device that lost the ack would; the IoT BFF must answer
//! them with the same ack and the inventory must not move twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use iot_bff::message::{DeviceReading, ReadingMessage};

use crate::data::{Rng, sku_id};
use crate::issuer::{Issuer, TokenRequest};

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimulatorOptions {
    /// Base URL of the IoT BFF.
    pub url: String,
    /// Number of devices.
    pub count: usize,
    /// Messages per second, across all devices.
    pub rate: f64,
    /// Readings per message.
    pub readings: usize,
    /// Fraction of acknowledged messages sent again (0.0–1.0).
    pub resend_rate: f64,
    /// Number of SKUs in the dataset to pick from (`SKU-00001`…).
    pub skus: usize,
    /// Seed of the readings.
    pub seed: u64,
}

/// Counters of a simulation.
#[derive(Debug, Default)]
pub struct Report {
    /// Distinct messages acknowledged.
    pub acked: AtomicU64,
    /// Readings accepted, summed over first acks (resends not counted).
    pub readings_accepted: AtomicU64,
    /// Readings refused, summed over first acks.
    pub readings_rejected: AtomicU64,
    /// Attempts that failed and were retried (5xx, 429, network).
    pub retries: AtomicU64,
    /// Acknowledged messages sent again on purpose.
    pub resends: AtomicU64,
    /// Resends whose ack differed from the first one (must stay 0).
    pub resend_mismatches: AtomicU64,
    /// Messages refused with a 4xx (not retried).
    pub refused: AtomicU64,
}

impl Report {
    /// One summary line.
    pub fn line(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "acked {} messages ({} readings accepted, {} rejected), {} retries, {} resends ({} mismatched), {} refused",
            get(&self.acked),
            get(&self.readings_accepted),
            get(&self.readings_rejected),
            get(&self.retries),
            get(&self.resends),
            get(&self.resend_mismatches),
            get(&self.refused),
        )
    }
}

/// Decoded fields of an ack that the simulator counts.
fn ack_counts(body: &[u8]) -> Option<(u64, u64)> {
    let value: ciborium::Value = ciborium::from_reader(body).ok()?;
    let map = value.as_map()?;
    let field = |key: u64| {
        map.iter()
            .find(|(k, _)| k.as_integer().and_then(|i| u64::try_from(i).ok()) == Some(key))
            .map(|(_, v)| v)
    };
    let accepted = field(1)?.as_integer().and_then(|i| u64::try_from(i).ok())?;
    let rejected = field(2)?.as_array()?.len() as u64;
    Some((accepted, rejected))
}

enum Outcome {
    Acked(Vec<u8>),
    Refused,
}

/// Posts `body` until it is acknowledged or refused, honouring `Retry-After`.
async fn deliver(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &[u8],
    report: &Report,
) -> Outcome {
    let mut pause = Duration::from_millis(200);
    loop {
        let result = http
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/cbor")
            .body(body.to_vec())
            .send()
            .await;
        let retry_after = match result {
            Ok(response) if response.status().is_success() => {
                return match response.bytes().await {
                    Ok(bytes) => Outcome::Acked(bytes.to_vec()),
                    Err(_) => {
                        report.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                };
            }
            Ok(response)
                if response.status().is_server_error() || response.status().as_u16() == 429 =>
            {
                response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_secs)
            }
            Ok(response) => {
                tracing::warn!(status = %response.status(), "message refused");
                return Outcome::Refused;
            }
            Err(_) => None,
        };
        report.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(retry_after.unwrap_or(pause)).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

async fn device(
    index: usize,
    options: Arc<SimulatorOptions>,
    token: String,
    http: reqwest::Client,
    report: Arc<Report>,
) {
    let device_id = format!("dev-{:04}", index + 1);
    let warehouse_id = format!("wh-{}", index % 3 + 1);
    let url = format!("{}/v1/readings", options.url.trim_end_matches('/'));
    let mut rng = Rng::new(options.seed ^ (index as u64).wrapping_mul(0x9E37_79B9));
    let period = Duration::from_secs_f64(options.count as f64 / options.rate.max(0.001));
    // Spread the devices over one period so they do not post in lockstep.
    tokio::time::sleep(period.mul_f64(index as f64 / options.count.max(1) as f64)).await;
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in 1.. {
        ticker.tick().await;
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        let message = ReadingMessage {
            device_id: device_id.clone(),
            seq,
            timestamp,
            warehouse_id: warehouse_id.clone(),
            readings: (0..options.readings)
                .map(|_| DeviceReading {
                    sku: sku_id(rng.below(options.skus.max(1) as u64) as usize),
                    quantity: rng.below(200) as i64,
                })
                .collect(),
        };
        let body = message.to_cbor();
        match deliver(&http, &url, &token, &body, &report).await {
            Outcome::Refused => {
                report.refused.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Acked(ack) => {
                report.acked.fetch_add(1, Ordering::Relaxed);
                if let Some((accepted, rejected)) = ack_counts(&ack) {
                    report
                        .readings_accepted
                        .fetch_add(accepted, Ordering::Relaxed);
                    report
                        .readings_rejected
                        .fetch_add(rejected, Ordering::Relaxed);
                }
                let resend = (rng.below(1_000_000) as f64) < options.resend_rate * 1e6;
                if resend {
                    report.resends.fetch_add(1, Ordering::Relaxed);
                    let again = deliver(&http, &url, &token, &body, &report).await;
                    if matches!(again, Outcome::Acked(ref again) if *again != ack) {
                        report.resend_mismatches.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

/// A running simulation: the devices post until it is stopped or dropped.
pub struct Simulation {
    /// Live counters.
    pub report: Arc<Report>,
    tasks: tokio::task::JoinSet<()>,
}

impl Simulation {
    /// Starts `options.count` devices with tokens minted by `issuer`.
    pub fn start(options: SimulatorOptions, issuer: &Issuer) -> Self {
        let report = Arc::new(Report::default());
        let options = Arc::new(options);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..options.count {
            let token = issuer.mint(&TokenRequest {
                sub: format!("dev-{:04}", index + 1),
                scope: "data:inventory:write".to_owned(),
                ttl: 24 * 3600,
                tier: "pro".to_owned(),
            });
            tasks.spawn(device(
                index,
                Arc::clone(&options),
                token,
                http.clone(),
                Arc::clone(&report),
            ));
        }
        Self { report, tasks }
    }

    /// Stops every device (a message in flight is abandoned, as a device losing power would).
    pub fn stop(mut self) -> Arc<Report> {
        self.tasks.abort_all();
        self.report
    }
}
