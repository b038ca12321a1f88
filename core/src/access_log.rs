//! The access log: one JSON object per request, on standard output (diagnostics go to
//! standard error), with the fields of DESIGN.md "Observability". Written by the server's
//! observing layer for every BFF; never a token, a body, or a customer's contact details:
//! the consumer is named by its id only.

use std::io::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

/// One request's line.
#[derive(Debug, Serialize)]
pub struct AccessLine<'a> {
    /// When the response head was ready (RFC 3339, UTC).
    pub ts: String,
    /// The request id (`x-request-id`).
    pub request_id: &'a str,
    /// The W3C trace id, when the request is traced.
    pub trace_id: Option<&'a str>,
    /// The BFF's name.
    pub bff: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// Route template (`unmatched` for the fallback).
    pub route: &'a str,
    /// GraphQL operation name, if any.
    pub operation: Option<&'a str>,
    /// Response status.
    pub status: u16,
    /// Error code, `OK` on success.
    pub code: &'a str,
    /// Time from the request head to the response head.
    pub latency_ms: f64,
    /// The authenticated consumer's id.
    pub consumer: Option<&'a str>,
    /// The OAuth client the token was issued to.
    pub client_id: Option<&'a str>,
    /// The consumer's tier.
    pub tier: Option<&'a str>,
    /// The upstream services the response drew on.
    pub data_products: Vec<&'static str>,
    /// Upstream attempts made.
    pub upstream_calls: u32,
    /// Time spent in upstream attempts (summed over parallel calls).
    pub upstream_ms: f64,
    /// Response body size, when known from the head.
    pub bytes: Option<u64>,
    /// Units left under the consumer's plan, when charged.
    pub ratelimit_remaining: Option<u64>,
    /// Whether cached data was served because an upstream failed.
    pub stale: bool,
    /// Age of the oldest such data, in seconds.
    pub data_age_s: Option<u64>,
}

type Sink = Arc<Mutex<Vec<String>>>;

/// Where lines go besides standard output: captures held by tests.
static CAPTURES: Mutex<Vec<Sink>> = Mutex::new(Vec::new());

/// Writes `line`.
pub fn write(line: &AccessLine<'_>) {
    let Ok(mut text) = serde_json::to_string(line) else {
        return;
    };
    {
        let captures = CAPTURES.lock().unwrap_or_else(PoisonError::into_inner);
        for sink in captures.iter() {
            sink.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(text.clone());
        }
    }
    text.push('\n');
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Collects every line written while it lives (for tests, which filter by request id:
/// other tests in the process write too).
pub struct Capture(Sink);

impl Capture {
    /// Starts collecting.
    pub fn start() -> Self {
        let sink = Sink::default();
        CAPTURES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&sink));
        Self(sink)
    }

    /// The lines so far, parsed.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        CAPTURES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|sink| !Arc::ptr_eq(sink, &self.0));
    }
}
