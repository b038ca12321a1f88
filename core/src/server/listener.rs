//! The accept loop every BFF serves on. It owns its connections so that no single client
//! can hold the server's sockets, memory or time:
//!
//! - at most `server.max_connections` open connections; beyond them new ones wait in the
//!   kernel's accept backlog until one closes;
//! - a request head must arrive within `server.header_read_timeout_ms` of the connection
//!   opening or of its first byte, else the connection is dropped (a client dribbling a
//!   head byte by byte is cut off);
//! - a request body must arrive within `server.body_read_timeout_ms` of its head, else
//!   reading it fails and the handler answers `BAD_REQUEST` saying so;
//! - a keep-alive connection with nothing in flight is closed after
//!   `server.idle_timeout_secs` (HTTP/2: `GOAWAY`);
//! - at most [`MAX_REQUEST_HEADERS`] headers and [`MAX_HEADER_BYTES`] of request head (431
//!   beyond, from hyper); HTTP/2: at most [`MAX_CONCURRENT_STREAMS`] streams per connection,
//!   and a connection whose client keeps resetting streams (the "rapid reset" flood) is
//!   closed with `GOAWAY ENHANCE_YOUR_CALM`;
//! - a response write that makes no progress for `server.write_timeout_secs` (a client
//!   that stopped reading: a stuck event stream, a slow-read attack) drops the connection;
//! - `TCP_NODELAY` on every accepted socket.
//!
//! hyper's own header-read timer is not used: it starts whenever an HTTP/1 connection waits
//! for a head, so it would also close every idle keep-alive connection after the (short)
//! header timeout, well before a load balancer's idle timeout, and the balancer would then
//! send requests on connections the BFF has just closed. Instead each connection's reads
//! and requests are tracked in an [`Activity`] that a watchdog beside the connection reads.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower::Service as _;

use crate::config::ServerConfig;

/// Request headers accepted per request (HTTP/1; 431 beyond).
pub const MAX_REQUEST_HEADERS: usize = 100;
/// Bytes of request head (start line and headers) accepted per request (431 beyond).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Concurrent HTTP/2 streams per connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 100;
/// HTTP/2 streams a client may reset before the server has accepted them; beyond, the
/// connection is closed (the rapid-reset flood, CVE-2023-44487).
const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// HTTP/2 streams the server may reset because of client protocol errors; beyond, the
/// connection is closed.
const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 256;

/// The connection limits of [`serve`], from the `server` section.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Time a request head may take, from the connection opening or its first byte.
    pub header_read_timeout: Duration,
    /// Time a request body may take, from its head.
    pub body_read_timeout: Duration,
    /// Time a connection with nothing in flight stays open.
    pub idle_timeout: Duration,
    /// Open connections at once.
    pub max_connections: usize,
    /// Time a write to the client may stay blocked without progress.
    pub write_timeout: Duration,
}

impl From<&ServerConfig> for ConnectionLimits {
    fn from(config: &ServerConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
            body_read_timeout: Duration::from_millis(config.body_read_timeout_ms),
            idle_timeout: Duration::from_secs(config.idle_timeout_secs),
            max_connections: config.max_connections,
            write_timeout: Duration::from_secs(config.write_timeout_secs),
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes; then stops
/// accepting, asks every connection to close once its requests are answered, and waits at
/// most `grace` for them.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> io::Result<()> {
    let builder = Arc::new(http_builder());
    // A permit per open connection; all of them back means every connection has closed.
    let max_connections = u32::try_from(limits.max_connections)
        .unwrap_or(u32::MAX)
        .min(Semaphore::MAX_PERMITS as u32);
    let connections = Arc::new(Semaphore::new(max_connections as usize));
    let (stop_tx, stop_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    pause_after_accept_error(&error).await;
                    continue;
                }
            },
        };
        let connection = Connection {
            builder: Arc::clone(&builder),
            router: router.clone(),
            limits,
            stop: stop_rx.clone(),
        };
        // On a connection worker when the process has them (see `workers`).
        super::workers::spawn_connection(async move {
            connection.run(stream, peer).await;
            drop(permit);
        });
    }
    // New connections are refused from here on (a load balancer sees it at once).
    drop(listener);
    let _ = stop_tx.send(());
    let drained = connections.acquire_many(max_connections);
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "in-flight requests did not finish in time; exiting"
        );
    }
    Ok(())
}

/// hyper's HTTP/1 and HTTP/2 (detected per connection) with the limits above.
fn http_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The watchdog times request heads (see the module docs).
        .header_read_timeout(None)
        .max_headers(MAX_REQUEST_HEADERS)
        // The read buffer bounds the request head: a head that does not fit is a 431.
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESET_STREAMS);
    builder
}

/// An accept error is either about one connection (it went away before we took it: carry
/// on) or about the process (out of file descriptors: wait a moment, as the kernel will not
/// have more for us straight away, rather than spin).
async fn pause_after_accept_error(error: &io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "cannot accept connections; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// What serving one accepted connection needs.
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    limits: ConnectionLimits,
    stop: watch::Receiver<()>,
}

impl Connection {
    /// Serves the connection until it closes, closing it when its watchdog or the shutdown
    /// says so.
    async fn run(mut self, stream: TcpStream, peer: SocketAddr) {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(WatchedStream {
            stream,
            activity: Arc::clone(&activity),
        });
        let service = RequestService {
            router: self.router,
            peer,
            activity: Arc::clone(&activity),
            body_read_timeout: self.limits.body_read_timeout,
        };
        let connection = self.builder.serve_connection_with_upgrades(io, service);
        let mut connection = std::pin::pin!(connection);
        let watchdog = tokio::time::sleep(self.limits.header_read_timeout);
        let mut watchdog = std::pin::pin!(watchdog);
        let mut closing = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                    return;
                }
                () = watchdog.as_mut(), if !closing => match activity.verdict(&self.limits) {
                    Verdict::Recheck(at) => watchdog.as_mut().reset(at),
                    Verdict::Idle => {
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    Verdict::HeadTimedOut => {
                        tracing::debug!(%peer, "request head not received in time; closing");
                        return;
                    }
                    Verdict::WriteStalled => {
                        tracing::debug!(%peer, "client stopped reading; closing");
                        return;
                    }
                },
                _ = self.stop.changed(), if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// What a connection is doing, written by its socket reads and its requests and read by
/// its watchdog. Times are milliseconds since the connection opened.
struct Activity {
    opened: Instant,
    /// Requests whose response has not been sent in full (HTTP/2: open streams).
    in_flight: AtomicU32,
    /// When the last response was finished (0: never).
    idle_since: AtomicU64,
    /// When the first byte since then arrived: a request head is on its way. Starts at 0,
    /// so a new connection must send its first head within the header timeout.
    head_started: AtomicU64,
    /// The client spoke HTTP/2, whose connections carry frames (pings, settings) between
    /// requests: only the idle timeout applies.
    http2: AtomicBool,
    /// Some bytes have been read.
    spoken: AtomicBool,
    /// When a write to the socket last found it full and has not progressed since
    /// ([`NO_HEAD`]: not blocked).
    write_blocked_since: AtomicU64,
}

/// `head_started` when no head is on its way.
const NO_HEAD: u64 = u64::MAX;

/// What a connection's watchdog should do.
enum Verdict {
    /// Nothing yet; look again at this instant.
    Recheck(Instant),
    /// Nothing in flight for the idle timeout: close once quiet.
    Idle,
    /// A request head is overdue: drop the connection.
    HeadTimedOut,
    /// The client has not taken response bytes for the write timeout: drop the connection.
    WriteStalled,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            http2: AtomicBool::new(false),
            spoken: AtomicBool::new(false),
            write_blocked_since: AtomicU64::new(NO_HEAD),
        }
    }

    /// A write found the socket full (`blocked`) or got bytes out.
    fn on_write(&self, blocked: bool) {
        if blocked {
            if self.write_blocked_since.load(Ordering::Relaxed) == NO_HEAD {
                self.write_blocked_since
                    .store(self.now(), Ordering::Relaxed);
            }
        } else if self.write_blocked_since.load(Ordering::Relaxed) != NO_HEAD {
            self.write_blocked_since.store(NO_HEAD, Ordering::Relaxed);
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn at(&self, millis: u64) -> Instant {
        self.opened + Duration::from_millis(millis)
    }

    /// Bytes arrived: if nothing is in flight, they begin a request head.
    fn on_read(&self, bytes: &[u8]) {
        if !self.spoken.swap(true, Ordering::Relaxed) && bytes.starts_with(b"PRI *") {
            self.http2.store(true, Ordering::Relaxed);
        }
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == NO_HEAD
        {
            let now = self.now();
            let _ = self.head_started.compare_exchange(
                NO_HEAD,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    fn request_finished(&self) {
        if self.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.idle_since.store(self.now(), Ordering::Relaxed);
            self.head_started.store(NO_HEAD, Ordering::Relaxed);
        }
    }

    fn verdict(&self, limits: &ConnectionLimits) -> Verdict {
        let now = self.now();
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2);
        let blocked = self.write_blocked_since.load(Ordering::Relaxed);
        let stall_due =
            (blocked != NO_HEAD).then(|| blocked.saturating_add(millis(limits.write_timeout)));
        if stall_due.is_some_and(|due| now >= due) {
            return Verdict::WriteStalled;
        }
        let recheck = |due: u64| Verdict::Recheck(self.at(stall_due.map_or(due, |s| s.min(due))));
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            // Requests bound themselves (body timeout, upstream deadlines); a stalled
            // write is looked at when it would be due.
            return recheck(now.saturating_add(millis(limits.idle_timeout)));
        }
        let head = self.head_started.load(Ordering::Relaxed);
        if head != NO_HEAD && !self.http2.load(Ordering::Relaxed) {
            let due = head.saturating_add(millis(limits.header_read_timeout));
            return if now >= due {
                Verdict::HeadTimedOut
            } else {
                recheck(due)
            };
        }
        let due = self
            .idle_since
            .load(Ordering::Relaxed)
            .saturating_add(millis(limits.idle_timeout));
        if now >= due {
            Verdict::Idle
        } else {
            recheck(due)
        }
    }
}

/// A request in flight on a connection, until its response body has been sent or dropped.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

pin_project_lite::pin_project! {
    /// The accepted socket, telling its [`Activity`] when bytes arrive.
    struct WatchedStream {
        #[pin]
        stream: TcpStream,
        activity: Arc<Activity>,
    }
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        ready!(this.stream.poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if !read.is_empty() {
            this.activity.on_read(read);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.stream.poll_write(cx, buf);
        this.activity.on_write(polled.is_pending());
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let polled = this.stream.poll_write_vectored(cx, bufs);
        this.activity.on_write(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_shutdown(cx)
    }
}

/// Hands each request of a connection to the router, with the peer address, a timed body
/// and its response tracked until sent.
#[derive(Clone)]
struct RequestService {
    router: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
    body_read_timeout: Duration,
}

impl hyper::service::Service<http::Request<Incoming>> for RequestService {
    type Response = http::Response<TrackedBody>;
    type Error = Infallible;
    type Future = TrackedResponse;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.request_started();
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(ConnectInfo(self.peer));
        let body = Body::new(TimedBody {
            inner: body,
            deadline: Instant::now() + self.body_read_timeout,
            timeout: self.body_read_timeout,
            sleep: None,
        });
        TrackedResponse {
            inner: self
                .router
                .clone()
                .call(http::Request::from_parts(parts, body)),
            in_flight: Some(in_flight),
        }
    }
}

pin_project_lite::pin_project! {
    /// The router's response, its body carrying the request's [`InFlight`].
    struct TrackedResponse {
        #[pin]
        inner: axum::routing::future::RouteFuture<Infallible>,
        in_flight: Option<InFlight>,
    }
}

impl Future for TrackedResponse {
    type Output = Result<http::Response<TrackedBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = match ready!(this.inner.poll(cx)) {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let in_flight = this.in_flight.take();
        Poll::Ready(Ok(response.map(|body| TrackedBody {
            inner: body,
            _in_flight: in_flight,
        })))
    }
}

/// A response body that keeps its request counted as in flight until it is dropped.
struct TrackedBody {
    inner: Body,
    _in_flight: Option<InFlight>,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that fails once its read deadline has passed.
struct TimedBody {
    inner: Incoming,
    deadline: Instant,
    timeout: Duration,
    /// Made the first time the body is not ready, so bodiless requests never arm a timer.
    sleep: Option<Pin<Box<Sleep>>>,
}

/// Reading a request body took longer than `server.body_read_timeout_ms`.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {} ms", .0.as_millis())]
pub struct BodyReadTimeout(Duration);

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Some(Err(BodyReadTimeout(this.timeout).into())))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
