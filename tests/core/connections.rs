//! The listener's connection limits, over real sockets: slow and idle clients are cut off,
//! the connection cap holds, oversized heads get 431, HTTP/2 streams are bounded and a
//! rapid-reset flood closes its connection, while healthy requests are served throughout.
//!
//! The limits are configured short (hundreds of milliseconds) so that each test takes
//! about as long as its timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::routing::{get, post};
use switchyard_core::server::{self, ConnectionLimits};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, oneshot};

const HEADER_TIMEOUT: Duration = Duration::from_millis(300);
const BODY_TIMEOUT: Duration = Duration::from_millis(400);
const IDLE_TIMEOUT: Duration = Duration::from_millis(900);
const WRITE_TIMEOUT: Duration = Duration::from_millis(500);

/// A listener serving `/ping`, `/echo` (the body's length, or why it could not be read) and
/// `/hold` (counts itself, then waits for a permit of `release`).
struct Listener {
    addr: SocketAddr,
    held: Arc<AtomicUsize>,
    release: Arc<Semaphore>,
    _stop: oneshot::Sender<()>,
}

impl Listener {
    async fn start(max_connections: usize) -> Self {
        let held = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(Semaphore::new(0));
        let router = Router::new()
            .route("/ping", get(|| async { "pong" }))
            .route(
                "/echo",
                post(|body: Result<Bytes, BytesRejection>| async move {
                    match body {
                        Ok(body) => format!("{} bytes", body.len()),
                        Err(rejection) => rejection.body_text(),
                    }
                }),
            )
            .route(
                "/hold",
                get({
                    let held = Arc::clone(&held);
                    let release = Arc::clone(&release);
                    move || async move {
                        held.fetch_add(1, Ordering::SeqCst);
                        let _ = release.acquire().await.map(|permit| permit.forget());
                        "released"
                    }
                }),
            );
        let limits = ConnectionLimits {
            header_read_timeout: HEADER_TIMEOUT,
            body_read_timeout: BODY_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_connections,
            write_timeout: WRITE_TIMEOUT,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server::serve(
            listener,
            router,
            limits,
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(1),
        ));
        Self {
            addr,
            held,
            release,
            _stop: stop,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.expect("connect")
    }

    /// A healthy client on a fresh connection is answered.
    async fn assert_serves(&self) {
        let body = reqwest::get(format!("http://{}/ping", self.addr))
            .await
            .expect("served")
            .text()
            .await
            .expect("body");
        assert_eq!(body, "pong");
    }
}

/// Sends one HTTP/1.1 GET on `stream` and reads its response: (status, body).
async fn get_on(stream: &mut TcpStream, path: &str) -> (u16, String) {
    let head = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    read_response(stream).await
}

async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed before a response");
        received.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
    let status = head[9..12].parse().expect("status code");
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().expect("content-length"));
    while received.len() < head_end + length {
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed inside a body");
        received.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&received[head_end..head_end + length]).into_owned();
    (status, body)
}

/// Whether the server closes `stream` within `within` (reading whatever it sends first).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut chunk = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn a_head_dribbled_byte_by_byte_is_cut_off_at_the_header_timeout() {
    let listener = Listener::start(100).await;
    let mut slow = listener.connect().await;
    let head = format!(
        "GET /ping HTTP/1.1\r\nhost: test\r\nx-padding: {}\r\n\r\n",
        "a".repeat(200)
    );
    let mut cut_off_after = None;
    for (sent, byte) in head.bytes().enumerate() {
        if slow.write_all(&[byte]).await.is_err() {
            cut_off_after = Some(sent);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        if sent % 10 == 0 {
            // Healthy clients are served while the slow one dribbles.
            listener.assert_serves().await;
        }
    }
    let sent = cut_off_after.expect("the server closed the connection before the head was done");
    // 300 ms at 20 ms a byte is about 15 bytes; a few more may land before the reset is seen.
    assert!(sent < head.len() / 2, "cut off only after {sent} bytes");
}

#[tokio::test]
async fn a_connection_that_never_sends_a_head_is_dropped() {
    let listener = Listener::start(100).await;
    let mut silent = listener.connect().await;
    assert!(closed_within(&mut silent, HEADER_TIMEOUT * 5).await);
    listener.assert_serves().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_outlives_the_header_timeout_and_closes_at_the_idle_timeout()
{
    let listener = Listener::start(100).await;
    let mut client = listener.connect().await;
    assert_eq!(get_on(&mut client, "/ping").await, (200, "pong".to_owned()));
    // Idle for longer than the header timeout: the connection is still good.
    tokio::time::sleep(HEADER_TIMEOUT * 2).await;
    assert_eq!(get_on(&mut client, "/ping").await, (200, "pong".to_owned()));
    // Then idle for the idle timeout: closed.
    assert!(
        !closed_within(&mut client, IDLE_TIMEOUT / 2).await,
        "closed well before the idle timeout"
    );
    assert!(closed_within(&mut client, IDLE_TIMEOUT * 3).await);
}

#[tokio::test]
async fn a_body_that_arrives_too_slowly_fails_with_a_message_saying_so() {
    let listener = Listener::start(100).await;
    let mut client = listener.connect().await;
    client
        .write_all(b"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n0123456789")
        .await
        .expect("write");
    let (status, body) = tokio::time::timeout(BODY_TIMEOUT * 5, read_response(&mut client))
        .await
        .expect("answered once the body timed out");
    assert_eq!(status, 200, "the handler chose the status: {body}");
    assert!(
        body.contains("request body not received within 400 ms"),
        "{body}"
    );
    // A body that arrives in time is read whole.
    let mut client = listener.connect().await;
    client
        .write_all(b"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: 10\r\n\r\n0123456789")
        .await
        .expect("write");
    assert_eq!(
        read_response(&mut client).await,
        (200, "10 bytes".to_owned())
    );
}

#[tokio::test]
async fn the_connection_cap_holds_and_frees_a_slot_when_a_connection_closes() {
    let listener = Listener::start(2).await;
    let mut first = listener.connect().await;
    let mut second = listener.connect().await;
    assert_eq!(get_on(&mut first, "/ping").await.0, 200);
    assert_eq!(get_on(&mut second, "/ping").await.0, 200);
    let mut third = listener.connect().await;
    third
        .write_all(b"GET /ping HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .expect("write");
    let waiting = tokio::time::timeout(Duration::from_millis(200), read_response(&mut third)).await;
    assert!(
        waiting.is_err(),
        "a third connection was served beyond the cap of 2"
    );
    drop(first);
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), read_response(&mut third))
        .await
        .expect("served once a slot was free");
    assert_eq!((status, body.as_str()), (200, "pong"));
}

#[tokio::test]
async fn oversized_request_heads_get_431() {
    let listener = Listener::start(100).await;
    let mut client = listener.connect().await;
    let big = format!(
        "GET /ping HTTP/1.1\r\nhost: test\r\nx-big: {}\r\n\r\n",
        "a".repeat(server::MAX_HEADER_BYTES)
    );
    client.write_all(big.as_bytes()).await.expect("write");
    assert_eq!(read_response(&mut client).await.0, 431);

    let mut client = listener.connect().await;
    let many: String = (0..=server::MAX_REQUEST_HEADERS)
        .map(|i| format!("x-h{i}: v\r\n"))
        .collect();
    let head = format!("GET /ping HTTP/1.1\r\nhost: test\r\n{many}\r\n");
    client.write_all(head.as_bytes()).await.expect("write");
    assert_eq!(read_response(&mut client).await.0, 431);

    // Just under both limits is served.
    let mut client = listener.connect().await;
    let fits: String = (0..server::MAX_REQUEST_HEADERS - 2)
        .map(|i| format!("x-h{i}: {}\r\n", "v".repeat(200)))
        .collect();
    let head = format!("GET /ping HTTP/1.1\r\nhost: test\r\n{fits}\r\n");
    client.write_all(head.as_bytes()).await.expect("write");
    assert_eq!(read_response(&mut client).await, (200, "pong".to_owned()));
}

/// An HTTP/2 connection (prior knowledge, as a proxy speaking h2c would open it).
async fn http2(listener: &Listener) -> h2::client::SendRequest<Bytes> {
    let (send, connection) = h2::client::handshake(listener.connect().await)
        .await
        .expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    send
}

fn h2_get(listener: &Listener, path: &str) -> http::Request<()> {
    http::Request::get(format!("http://{}{path}", listener.addr))
        .body(())
        .expect("request")
}

#[tokio::test]
async fn http2_streams_per_connection_are_capped() {
    let listener = Listener::start(100).await;
    let (send, mut connection) = h2::client::handshake(listener.connect().await)
        .await
        .expect("h2 handshake");
    // The server's SETTINGS, as the client received them.
    let advertised = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            tokio::select! {
                ended = &mut connection => panic!("connection ended: {ended:?}"),
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
            if connection.max_concurrent_send_streams() != usize::MAX {
                return connection.max_concurrent_send_streams();
            }
        }
    })
    .await
    .expect("settings received");
    assert_eq!(advertised, server::MAX_CONCURRENT_STREAMS as usize);
    tokio::spawn(async move {
        let _ = connection.await;
    });
    // More requests than the cap: the first 100 are held, the rest wait their turn.
    let streams = server::MAX_CONCURRENT_STREAMS as usize + 20;
    let requests: Vec<_> = (0..streams)
        .map(|_| {
            let send = send.clone();
            let request = h2_get(&listener, "/hold");
            tokio::spawn(async move {
                let mut ready = send.ready().await.expect("ready");
                let (response, _) = ready.send_request(request, true).expect("send");
                response.await.expect("response").status()
            })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(5), async {
        while listener.held.load(Ordering::SeqCst) < server::MAX_CONCURRENT_STREAMS as usize {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the cap's worth of streams reached the handler");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        listener.held.load(Ordering::SeqCst),
        server::MAX_CONCURRENT_STREAMS as usize
    );
    listener.release.add_permits(streams);
    for request in requests {
        assert_eq!(request.await.expect("joined"), 200);
    }
    assert_eq!(listener.held.load(Ordering::SeqCst), streams);
}

#[tokio::test]
async fn an_http2_rapid_reset_flood_closes_its_connection() {
    let listener = Listener::start(100).await;
    let (send, connection) = h2::client::handshake(listener.connect().await)
        .await
        .expect("h2 handshake");
    let connection = tokio::spawn(connection);
    // Well over the 20 resets the server tolerates, and few enough to be sent before the
    // server's GOAWAY arrives (writing on after it would end in a broken pipe instead).
    let mut sent = 0;
    for _ in 0..100 {
        let Ok(mut ready) = send.clone().ready().await else {
            break;
        };
        let Ok((_, mut stream)) = ready.send_request(h2_get(&listener, "/ping"), false) else {
            break;
        };
        stream.send_reset(h2::Reason::CANCEL);
        sent += 1;
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("the server closed the connection")
        .expect("joined");
    let error = ended.expect_err("closed with an error");
    assert_eq!(
        error.reason(),
        Some(h2::Reason::ENHANCE_YOUR_CALM),
        "{error} after {sent} resets"
    );
    // Other clients are unaffected.
    listener.assert_serves().await;
    let mut fresh = http2(&listener).await;
    let (response, _) = fresh
        .send_request(h2_get(&listener, "/ping"), true)
        .expect("send");
    assert_eq!(response.await.expect("response").status(), 200);
}
