//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>): each request continues the
//! trace its `traceparent` names, or starts one; each upstream attempt is a child span whose
//! `traceparent` goes upstream with the request's `tracestate`.

use http::{HeaderMap, HeaderValue};

/// The `traceparent` header.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header.
pub const TRACESTATE: &str = "tracestate";

/// Whether a span is a request served or a request made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    /// A request this BFF served.
    Server,
    /// An upstream attempt.
    Client,
}

/// A span that has ended, waiting to be exported (see `trace_export`).
#[derive(Clone, Debug)]
pub struct FinishedSpan {
    /// Its id.
    pub span_id: [u8; 8],
    /// Its parent's id: the caller's span for the server span, the server span for
    /// upstream attempts.
    pub parent_span_id: Option<[u8; 8]>,
    /// Whether the parent is in another process (the caller).
    pub parent_is_remote: bool,
    /// Server (the request) or client (an upstream attempt).
    pub kind: SpanKind,
    /// e.g. `POST /graphql`, `GET orders`.
    pub name: String,
    /// When it started.
    pub start: std::time::SystemTime,
    /// When it ended.
    pub end: std::time::SystemTime,
    /// Attributes, by OpenTelemetry semantic-convention name.
    pub attributes: Vec<(&'static str, String)>,
    /// Whether it failed.
    pub failed: bool,
}

/// The trace a request belongs to and its own (server) span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    /// The caller's span, when the trace was continued.
    parent_span_id: Option<[u8; 8]>,
    span_id: [u8; 8],
    flags: u8,
    tracestate: Option<HeaderValue>,
}

impl TraceContext {
    /// Continues the trace of a valid incoming `traceparent` (keeping its `tracestate`), or
    /// starts a new, sampled one.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Self::from_headers_sampling(headers, 1.0)
    }

    /// [`from_headers`](Self::from_headers), a new trace being sampled with probability
    /// `ratio` (decided from its trace id, so every service that sees it agrees).
    pub fn from_headers_sampling(headers: &HeaderMap, ratio: f64) -> Self {
        let incoming = headers
            .get(TRACEPARENT)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_traceparent);
        match incoming {
            Some((trace_id, parent, flags)) => Self {
                trace_id,
                parent_span_id: Some(parent),
                span_id: random(),
                flags,
                tracestate: headers.get(TRACESTATE).cloned(),
            },
            None => {
                let trace_id: [u8; 16] = random_nonzero();
                let mut low = [0u8; 8];
                low.copy_from_slice(&trace_id[8..]);
                // The W3C "random" low 8 bytes, compared with the ratio's share of them.
                let sampled =
                    ratio >= 1.0 || (u64::from_be_bytes(low) as f64) < ratio * u64::MAX as f64;
                Self {
                    trace_id,
                    parent_span_id: None,
                    span_id: random_nonzero(),
                    flags: u8::from(sampled),
                    tracestate: None,
                }
            }
        }
    }

    /// The trace id's bytes.
    pub fn trace_id_bytes(&self) -> [u8; 16] {
        self.trace_id
    }

    /// This request's span id's bytes.
    pub fn span_id_bytes(&self) -> [u8; 8] {
        self.span_id
    }

    /// The caller's span id's bytes, when the trace was continued.
    pub fn parent_span_id_bytes(&self) -> Option<[u8; 8]> {
        self.parent_span_id
    }

    /// The trace id, 32 lower-case hex digits.
    pub fn trace_id(&self) -> String {
        hex(&self.trace_id)
    }

    /// This request's span id, 16 hex digits.
    pub fn span_id(&self) -> String {
        hex(&self.span_id)
    }

    /// The caller's span id, when the trace was continued.
    pub fn parent_span_id(&self) -> Option<String> {
        self.parent_span_id.as_ref().map(|id| hex(id))
    }

    /// Whether the caller asked for the trace to be recorded.
    pub fn sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }

    /// A child span of this request's: its id, and the `traceparent` that names it.
    pub fn child(&self) -> ([u8; 8], String) {
        let span = random_nonzero::<8>();
        let mut header = String::with_capacity(55);
        header.push_str("00-");
        push_hex(&mut header, &self.trace_id);
        header.push('-');
        push_hex(&mut header, &span);
        header.push('-');
        push_hex(&mut header, &[self.flags]);
        (span, header)
    }

    /// The `tracestate` to forward, if the caller sent one.
    pub fn tracestate(&self) -> Option<&HeaderValue> {
        self.tracestate.as_ref()
    }
}

/// `(trace id, parent id, flags)` of a valid `traceparent`: version `00` exactly, or a later
/// version's first four fields; all-zero ids and upper-case hex are invalid.
fn parse_traceparent(value: &str) -> Option<([u8; 16], [u8; 8], u8)> {
    let mut fields = value.split('-');
    let version = fields.next()?;
    let trace_id = fields.next()?;
    let parent = fields.next()?;
    let flags = fields.next()?;
    if version.len() != 2 || version == "ff" || !is_lower_hex(version) {
        return None;
    }
    if version == "00" && (fields.next().is_some() || value.len() != 55) {
        return None;
    }
    let trace_id: [u8; 16] = unhex(trace_id)?;
    let parent: [u8; 8] = unhex(parent)?;
    let [flags]: [u8; 1] = unhex(flags)?;
    if trace_id == [0; 16] || parent == [0; 8] {
        return None;
    }
    Some((trace_id, parent, flags))
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !is_lower_hex(text) {
        return None;
    }
    let mut bytes = [0u8; N];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(bytes)
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    push_hex(&mut text, bytes);
    text
}

fn push_hex(text: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
}

/// Random bytes for ids. W3C asks for ids that are unique and random, not secret: a
/// splitmix64 sequence per thread, seeded from the system RNG once, costs nanoseconds where a
/// system RNG call costs a microsecond.
fn random<const N: usize>() -> [u8; N] {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut seed = [0u8; 8];
            let _ = aws_lc_rs::rand::fill(&mut seed);
            u64::from_le_bytes(seed)
        });
    }
    let mut bytes = [0u8; N];
    STATE.with(|state| {
        for chunk in bytes.chunks_mut(8) {
            let mut z = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            state.set(z);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    });
    bytes
}

fn random_nonzero<const N: usize>() -> [u8; N] {
    let mut bytes = random::<N>();
    if bytes == [0; N] {
        bytes[N - 1] = 1;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(traceparent: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            TRACEPARENT,
            HeaderValue::from_str(traceparent).expect("ascii"),
        );
        headers.insert(TRACESTATE, HeaderValue::from_static("vendor=abc"));
        headers
    }

    #[test]
    fn a_valid_traceparent_is_continued_with_its_tracestate() {
        let context = TraceContext::from_headers(&headers(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            context.parent_span_id().as_deref(),
            Some("00f067aa0ba902b7")
        );
        assert_ne!(context.span_id(), "00f067aa0ba902b7");
        assert!(context.sampled());
        assert_eq!(
            context.tracestate().and_then(|v| v.to_str().ok()),
            Some("vendor=abc")
        );
        let (span, header) = context.child();
        assert_eq!(
            header,
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", hex(&span))
        );
    }

    #[test]
    fn invalid_traceparents_start_a_new_trace() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            let context = TraceContext::from_headers(&headers(bad));
            assert_ne!(
                context.trace_id(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad}"
            );
            assert_eq!(context.parent_span_id(), None, "{bad}");
            assert_eq!(context.tracestate(), None, "{bad}");
            assert_eq!(context.trace_id().len(), 32);
        }
        // A later version's first four fields are understood.
        let context = TraceContext::from_headers(&headers(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more",
        ));
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(!context.sampled());
    }
}
