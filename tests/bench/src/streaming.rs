//! `switchyard-bench stream`: live order updates at scale. The mobile BFF runs as a child
//! process on the sandbox's order feed; this process opens N server-sent-event streams
//! (two consumers' worth per customer at most, as real tokens), advances random orders at
//! a fixed rate, and measures, per N:
//!
//! - resident memory per idle stream (the BFF's RSS with N idle streams open, less its RSS
//!   before, over N);
//! - delivery latency from the moment the orders service made the event (`at`) to the
//!   moment a client read it, p50 and p99, over every delivery;
//! - the BFF's CPU time per delivered event, and deliveries per second;
//! - the BFF's CPU use with the N streams open and idle (heartbeats and timers).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use switchyard_sandbox::{Sandbox, SandboxOptions, TokenRequest};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Mutex;

use crate::process::Target;

/// Customers the streams are spread over (the sandbox has 5,000).
const CUSTOMERS: usize = 5_000;

/// The figures of one run.
#[derive(Clone, Debug, Serialize)]
pub struct StreamFigures {
    /// Streams open.
    pub subscribers: usize,
    /// Events the orders service made per second.
    pub events_per_sec: f64,
    /// Events clients received per second.
    pub deliveries_per_sec: f64,
    /// Deliveries in all.
    pub deliveries: u64,
    /// Delivery latency, median, milliseconds.
    pub p50_ms: f64,
    /// Delivery latency, 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// The BFF's resident memory per idle stream, bytes.
    pub rss_per_stream_bytes: f64,
    /// The BFF's resident memory with the streams open, bytes.
    pub rss_bytes: u64,
    /// The BFF's CPU time per delivered event, microseconds (reading the source's events,
    /// those no stream was entitled to included).
    pub cpu_per_delivery_us: f64,
    /// The BFF's CPU use with the streams open and no events, in % of one core.
    pub idle_cpu_percent: f64,
}

/// Runs one measurement per entry of `subscribers`.
pub async fn run(
    subscribers: &[usize],
    events_per_sec: f64,
    seconds: u64,
) -> anyhow::Result<Vec<StreamFigures>> {
    let mut figures = Vec::new();
    for &n in subscribers {
        figures.push(run_one(n, events_per_sec, seconds).await?);
    }
    Ok(figures)
}

async fn run_one(n: usize, rate: f64, seconds: u64) -> anyhow::Result<StreamFigures> {
    let sandbox = Sandbox::start(&SandboxOptions::ephemeral()).await?;
    let mut env = crate::scenario::child_env(&sandbox);
    let room = (n + 1000).to_string();
    env.extend([
        (
            "SWITCHYARD_SERVER__MAX_CONNECTIONS".to_owned(),
            room.clone(),
        ),
        ("SWITCHYARD_STREAMS__MAX_CONNECTIONS".to_owned(), room),
    ]);
    let target = Target::start("mobile", &env).await?;
    let addr = target
        .base
        .strip_prefix("http://")
        .context("target address")?
        .to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = target.rss();

    let tokens: Vec<String> = (1..=CUSTOMERS.min(n))
        .map(|c| {
            sandbox.issuer.mint(&TokenRequest {
                sub: format!("cus_{c:05}"),
                ..TokenRequest::default()
            })
        })
        .collect();
    let latencies = Arc::new(Mutex::new(Vec::<u32>::with_capacity(1 << 20)));
    let deliveries = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::channel::<anyhow::Result<()>>(1024);
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let token = tokens[i % tokens.len()].clone();
        let addr = addr.clone();
        let opened = opened_tx.clone();
        let latencies = Arc::clone(&latencies);
        let deliveries = Arc::clone(&deliveries);
        let measuring = Arc::clone(&measuring);
        clients.push(tokio::spawn(async move {
            subscriber(&addr, &token, opened, latencies, deliveries, measuring).await;
        }));
        // Open at a pace the accept loop and the token cache take without a backlog.
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(opened_tx);
    for _ in 0..n {
        opened_rx
            .recv()
            .await
            .context("a subscriber task ended before its stream opened")??;
    }
    // Idle: what N open streams cost with nothing happening (heartbeats, timers).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_from = target.usage().cpu;
    let idle_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_cpu = target.usage().cpu.saturating_sub(idle_from).as_secs_f64()
        / idle_started.elapsed().as_secs_f64();
    let rss_idle = target.rss();

    let cpu_before = target.usage().cpu;
    measuring.store(true, Ordering::Release);
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut made = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        tick.tick().await;
        if sandbox.activity.advance_random().is_some() {
            made += 1;
        }
    }
    let elapsed = started.elapsed();
    // Let the last deliveries land.
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(false, Ordering::Release);
    let cpu = target.usage().cpu.saturating_sub(cpu_before);
    for client in clients {
        client.abort();
    }
    let mut latencies = std::mem::take(&mut *latencies.lock().await);
    latencies.sort_unstable();
    let quantile = |q: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        f64::from(latencies[index]) / 1000.0
    };
    let delivered = deliveries.load(Ordering::Acquire);
    Ok(StreamFigures {
        subscribers: n,
        events_per_sec: made as f64 / elapsed.as_secs_f64(),
        deliveries_per_sec: delivered as f64 / elapsed.as_secs_f64(),
        deliveries: delivered,
        p50_ms: quantile(0.50),
        p99_ms: quantile(0.99),
        rss_per_stream_bytes: rss_idle.saturating_sub(rss_before) as f64 / n as f64,
        rss_bytes: rss_idle,
        idle_cpu_percent: idle_cpu * 100.0,
        cpu_per_delivery_us: if delivered == 0 {
            f64::NAN
        } else {
            cpu.as_secs_f64() * 1e6 / delivered as f64
        },
    })
}

/// One client: opens `GET /v2/orders/stream`, then reads events, noting each delivery's
/// latency (from its `at`) while `measuring`.
async fn subscriber(
    addr: &str,
    token: &str,
    opened: tokio::sync::mpsc::Sender<anyhow::Result<()>>,
    latencies: Arc<Mutex<Vec<u32>>>,
    deliveries: Arc<AtomicU64>,
    measuring: Arc<std::sync::atomic::AtomicBool>,
) {
    let connected = async {
        let mut socket = tokio::net::TcpStream::connect(addr).await?;
        let head = format!(
            "GET /v2/orders/stream HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\nauthorization: Bearer {token}\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await?;
        let mut buffer = Vec::with_capacity(4096);
        let mut chunk = [0u8; 4096];
        loop {
            let read = socket.read(&mut chunk).await?;
            anyhow::ensure!(read > 0, "the stream closed before its head");
            buffer.extend_from_slice(&chunk[..read]);
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                anyhow::ensure!(
                    buffer.starts_with(b"HTTP/1.1 200"),
                    "refused: {}",
                    String::from_utf8_lossy(&buffer[..end])
                );
                buffer.drain(..end + 4);
                return Ok((socket, buffer));
            }
        }
    }
    .await;
    let (mut socket, mut buffer) = match connected {
        Ok(connected) => {
            let _ = opened.send(Ok(())).await;
            connected
        }
        Err(error) => {
            let _ = opened.send(Err(error)).await;
            return;
        }
    };
    drop(opened);
    let mut mine = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        // Each `"at":"…"` in what arrived is one delivery.
        while let Some(start) = find(&buffer, b"\"at\":\"") {
            let from = start + 6;
            let Some(len) = buffer[from..].iter().position(|&b| b == b'"') else {
                break;
            };
            let now = OffsetDateTime::now_utc();
            if measuring.load(Ordering::Acquire)
                && let Ok(text) = std::str::from_utf8(&buffer[from..from + len])
                && let Ok(at) = OffsetDateTime::parse(text, &Rfc3339)
            {
                let micros = (now - at)
                    .whole_microseconds()
                    .clamp(0, i128::from(u32::MAX));
                mine.push(micros as u32);
                deliveries.fetch_add(1, Ordering::Relaxed);
            }
            buffer.drain(..from + len);
        }
        if mine.len() >= 64 {
            latencies.lock().await.append(&mut mine);
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
        if !mine.is_empty() && !measuring.load(Ordering::Acquire) {
            latencies.lock().await.append(&mut mine);
        }
    }
    latencies.lock().await.append(&mut mine);
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
