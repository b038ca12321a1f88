//! The load generator: closed loop (as fast as `concurrency` connections go) for
//! throughput, open loop (a fixed arrival rate) for latency.
//!
//! The open loop is latency-corrected: each request has a scheduled start time, and its
//! latency is measured from that time, not from when it was actually sent, so a stalled
//! server cannot hide its queueing delay by slowing the generator down (coordinated
//! omission).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Builds the `i`-th request of a run.
pub type MakeRequest = Arc<dyn Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync>;

/// Whether a 2xx body is a complete answer (a GraphQL body with `errors`, or a degraded
/// dashboard, counts as a failure).
pub type CheckBody = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// What to send, and how to tell a complete answer.
#[derive(Clone)]
pub struct Workload {
    /// Builds request `i`.
    pub make: MakeRequest,
    /// Accepts a 2xx body.
    pub check: CheckBody,
}

/// Latencies of one open-loop run.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    /// Sorted latencies in microseconds, of successful requests.
    pub micros: Vec<u64>,
    /// Requests that failed or were not 2xx.
    pub errors: u64,
}

impl Latencies {
    /// The `q` quantile (0–1) in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.micros.is_empty() {
            return f64::NAN;
        }
        let rank = ((self.micros.len() as f64 * q).ceil() as usize).clamp(1, self.micros.len());
        self.micros[rank - 1] as f64 / 1e3
    }
}

/// How one request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// A complete 2xx answer.
    Ok,
    /// 503 from admission control (`Retry-After: 1`): shed, not failed.
    Shed,
    /// Anything else.
    Failed,
}

async fn attempt(client: &reqwest::Client, work: &Workload, i: u64) -> Outcome {
    match (work.make)(client, i).send().await {
        Ok(response) if response.status().is_success() => {
            if response.bytes().await.is_ok_and(|body| (work.check)(&body)) {
                Outcome::Ok
            } else {
                Outcome::Failed
            }
        }
        Ok(response) if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE => {
            let shed = response
                .bytes()
                .await
                .is_ok_and(|body| body.windows(10).any(|w| w == b"OVERLOADED"));
            if shed { Outcome::Shed } else { Outcome::Failed }
        }
        _ => Outcome::Failed,
    }
}

async fn send(client: &reqwest::Client, work: &Workload, i: u64) -> bool {
    attempt(client, work, i).await == Outcome::Ok
}

/// What a closed loop past capacity measured: the latency of admitted and of shed
/// requests, each sorted, in microseconds.
#[derive(Clone, Debug, Default)]
pub struct Overloaded {
    /// Latencies of complete answers.
    pub admitted: Latencies,
    /// Latencies of requests shed by admission control.
    pub shed: Latencies,
    /// Requests that failed otherwise.
    pub failed: u64,
}

/// Runs `concurrency` request loops for `duration`, timing every request and telling
/// admitted, shed and failed requests apart. A loop whose request was shed waits the
/// `Retry-After` it was given (1 s), as a well-behaved client does, before its next.
pub async fn closed_loop_timed(
    client: &reqwest::Client,
    work: &Workload,
    concurrency: usize,
    duration: Duration,
) -> Overloaded {
    let next = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + duration;
    let workers = (0..concurrency).map(|_| {
        let (client, work, next) = (client.clone(), work.clone(), Arc::clone(&next));
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while Instant::now() < stop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let started = Instant::now();
                let outcome = attempt(&client, &work, i).await;
                seen.push((outcome, started.elapsed().as_micros() as u64));
                if outcome == Outcome::Shed {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            seen
        })
    });
    let mut result = Overloaded::default();
    for worker in futures_util::future::join_all(workers).await {
        for (outcome, micros) in worker.unwrap_or_default() {
            match outcome {
                Outcome::Ok => result.admitted.micros.push(micros),
                Outcome::Shed => result.shed.micros.push(micros),
                Outcome::Failed => result.failed += 1,
            }
        }
    }
    result.admitted.micros.sort_unstable();
    result.shed.micros.sort_unstable();
    result
}

/// Runs `concurrency` request loops for `duration`; returns (successes, errors).
pub async fn closed_loop(
    client: &reqwest::Client,
    work: &Workload,
    concurrency: usize,
    duration: Duration,
) -> (u64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + duration;
    let workers = (0..concurrency).map(|_| {
        let (client, work) = (client.clone(), work.clone());
        let (ok, failed, next) = (Arc::clone(&ok), Arc::clone(&failed), Arc::clone(&next));
        tokio::spawn(async move {
            while Instant::now() < stop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if send(&client, &work, i).await {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    });
    futures_util::future::join_all(workers).await;
    (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed))
}

/// Sends `rate` requests per second for `duration`, each at its scheduled time, numbering
/// them from `first`; latencies are measured from the schedule.
///
/// The schedule is kept by a thread of its own with the operating system's sleep (tens of
/// microseconds late), not by the runtime's timer, whose millisecond ticks would add up to
/// a millisecond of the generator's own lateness to every request.
pub async fn open_loop(
    client: &reqwest::Client,
    work: &Workload,
    rate: f64,
    duration: Duration,
    first: u64,
) -> Latencies {
    let total = (rate * duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let runtime = tokio::runtime::Handle::current();
    let (client, work) = (client.clone(), work.clone());
    let pacer = tokio::task::spawn_blocking(move || {
        let start = std::time::Instant::now();
        (0..total)
            .map(|n| {
                let scheduled = start + interval.mul_f64(n as f64);
                if let Some(early) = scheduled.checked_duration_since(std::time::Instant::now()) {
                    std::thread::sleep(early);
                }
                let (client, work) = (client.clone(), work.clone());
                runtime.spawn(async move {
                    let ok = send(&client, &work, first + n).await;
                    (ok, scheduled.elapsed())
                })
            })
            .collect::<Vec<_>>()
    });
    let mut latencies = Latencies::default();
    let Ok(tasks) = pacer.await else {
        latencies.errors = total;
        return latencies;
    };
    for task in tasks {
        match task.await {
            Ok((true, latency)) => latencies.micros.push(latency.as_micros() as u64),
            _ => latencies.errors += 1,
        }
    }
    latencies.micros.sort_unstable();
    latencies
}
