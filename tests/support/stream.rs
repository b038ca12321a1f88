//! Clients for event streams: server-sent events over a raw socket (so that a test can
//! also stop reading, or see exactly where the stream ends), and WebSockets.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// One server-sent event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// Its `id:`, if any.
    pub id: Option<String>,
    /// Its `event:` (`message` when absent).
    pub event: String,
    /// Its data lines, joined by `\n`.
    pub data: String,
    /// Its `retry:`, if any.
    pub retry: Option<u64>,
}

impl SseEvent {
    /// The data as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }
}

/// An HTTP/1.1 SSE response read off a raw socket.
pub struct SseClient {
    socket: TcpStream,
    buffer: String,
    /// The response's status code.
    pub status: u16,
    /// The response head, lower-cased.
    pub head: String,
    /// Comments (`: ping`) seen so far.
    pub comments: usize,
}

impl SseClient {
    /// `GET path` on `addr` (`host:port`) with `Accept: text/event-stream` and `headers`;
    /// returns once the response head has arrived.
    pub async fn open(addr: &str, path: &str, headers: &[(&str, String)]) -> Self {
        Self::request(addr, "GET", path, headers, None).await
    }

    /// Any request whose answer may be an event stream (`POST` with a JSON `body`).
    pub async fn request(
        addr: &str,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: Option<&str>,
    ) -> Self {
        let mut socket = TcpStream::connect(addr).await.expect("connect");
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        head.push_str(body.unwrap_or(""));
        socket.write_all(head.as_bytes()).await.expect("write");
        let mut client = Self {
            socket,
            buffer: String::new(),
            status: 0,
            head: String::new(),
            comments: 0,
        };
        while !client.buffer.contains("\r\n\r\n") {
            assert!(
                client.read_more(Duration::from_secs(5)).await,
                "the connection closed before a response head: {:?}",
                client.buffer
            );
        }
        let end = client.buffer.find("\r\n\r\n").expect("a head") + 4;
        client.head = client
            .buffer
            .drain(..end)
            .collect::<String>()
            .to_lowercase();
        client.status = client.head[9..12].parse().expect("a status code");
        client
    }

    /// Reads once; `false` when the connection has ended (closed or reset).
    async fn read_more(&mut self, within: Duration) -> bool {
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout(within, self.socket.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => false,
            Ok(Ok(read)) => {
                self.buffer
                    .push_str(&String::from_utf8_lossy(&chunk[..read]));
                true
            }
            Err(_) => panic!(
                "nothing arrived within {within:?}; so far: {:?}",
                self.buffer
            ),
        }
    }

    /// The whole body of a response that is not a stream (an error).
    pub async fn body(mut self) -> String {
        let length: Option<usize> = self
            .head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|l| l.trim().parse().ok());
        while length.is_none_or(|length| self.buffer.len() < length)
            && self.read_more(Duration::from_secs(5)).await
        {}
        self.buffer
    }

    /// The next event, or `None` when the stream ended first. Panics if nothing arrives
    /// within `within` (heartbeats count as something).
    pub async fn next_event(&mut self, within: Duration) -> Option<SseEvent> {
        loop {
            if let Some(event) = self.take_event() {
                return Some(event);
            }
            if !self.read_more(within).await {
                return self.take_event();
            }
        }
    }

    /// The next `count` events named `name`, skipping others.
    pub async fn events(&mut self, name: &str, count: usize) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while events.len() < count {
            let event = self
                .next_event(Duration::from_secs(5))
                .await
                .unwrap_or_else(|| panic!("the stream ended after {events:?}"));
            if event.event == name {
                events.push(event);
            }
        }
        events
    }

    /// Events and comments from the buffer; the lines of chunked framing (hex sizes, which
    /// have no colon) are skipped.
    fn take_event(&mut self) -> Option<SseEvent> {
        loop {
            let end = self.buffer.find("\n\n")?;
            let block: String = self.buffer.drain(..end + 2).collect();
            let mut event = SseEvent {
                event: "message".to_owned(),
                ..SseEvent::default()
            };
            let mut fields = 0;
            for line in block.lines() {
                let line = line.trim_end_matches('\r');
                if line.starts_with(':') {
                    self.comments += 1;
                    continue;
                }
                let Some((field, value)) = line.split_once(':') else {
                    continue;
                };
                let value = value.strip_prefix(' ').unwrap_or(value);
                fields += 1;
                match field {
                    "id" => event.id = Some(value.to_owned()),
                    "event" => value.clone_into(&mut event.event),
                    "data" => {
                        if !event.data.is_empty() {
                            event.data.push('\n');
                        }
                        event.data.push_str(value);
                    }
                    "retry" => event.retry = value.parse().ok(),
                    _ => fields -= 1,
                }
            }
            if fields > 0 {
                return Some(event);
            }
        }
    }

    /// Whether the response ends (its last chunk, or the connection closing or being
    /// reset) within `within`, reading and discarding whatever still comes.
    pub async fn ends_within(&mut self, within: Duration) -> bool {
        self.end_within(within).await.is_some()
    }

    /// Whether the connection is cut off (closed or reset, not a clean end of the
    /// response) within `within`.
    pub async fn cut_off_within(&mut self, within: Duration) -> bool {
        self.end_within(within).await == Some(End::CutOff)
    }

    /// How the response ends within `within`, if it does.
    async fn end_within(&mut self, within: Duration) -> Option<End> {
        let deadline = tokio::time::Instant::now() + within;
        let mut chunk = [0u8; 8192];
        loop {
            if self.buffer.contains("\r\n0\r\n\r\n") || self.buffer.starts_with("0\r\n\r\n") {
                return Some(End::Complete);
            }
            match tokio::time::timeout_at(deadline, self.socket.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Some(End::CutOff),
                Ok(Ok(read)) => self
                    .buffer
                    .push_str(&String::from_utf8_lossy(&chunk[..read])),
                Err(_) => return None,
            }
        }
    }
}

/// How a streamed response ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Its last chunk arrived.
    Complete,
    /// The connection closed or was reset first.
    CutOff,
}

/// A WebSocket client.
pub struct WsClient {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
}

/// How a WebSocket exchange ended or what it received.
#[derive(Debug, PartialEq, Eq)]
pub enum WsReceived {
    /// A text message.
    Text(String),
    /// A close frame: code and reason.
    Closed(u16, String),
    /// The connection ended without a close frame.
    Dropped,
}

impl WsClient {
    /// Connects to `url` (`ws://…`) with `headers` and `protocol` (if any); `Err` carries
    /// the refusal's status code and body.
    pub async fn connect(
        url: &str,
        headers: &[(&str, String)],
        protocol: Option<&str>,
    ) -> Result<Self, (u16, String)> {
        let mut request = url.into_client_request().expect("a WebSocket URL");
        for (name, value) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                value.parse().expect("header value"),
            );
        }
        if let Some(protocol) = protocol {
            request.headers_mut().insert(
                "sec-websocket-protocol",
                protocol.parse().expect("protocol"),
            );
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(Self { socket }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response
                    .into_body()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                Err((status, body))
            }
            Err(error) => panic!("WebSocket connection failed: {error}"),
        }
    }

    /// Sends a text message.
    pub async fn send(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    /// Sends a JSON message.
    pub async fn send_json(&mut self, value: &serde_json::Value) {
        self.send(&value.to_string()).await;
    }

    /// The next text message or the end, skipping pings and pongs; panics after `within`.
    pub async fn receive(&mut self, within: Duration) -> WsReceived {
        loop {
            let next = tokio::time::timeout(within, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("nothing arrived on the WebSocket within {within:?}"));
            match next {
                Some(Ok(Message::Text(text))) => return WsReceived::Text(text.to_string()),
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame.map_or((1005, String::new()), |f: CloseFrame| {
                        (u16::from(f.code), f.reason.to_string())
                    });
                    return WsReceived::Closed(code, reason);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return WsReceived::Dropped,
            }
        }
    }

    /// The next text message as JSON; panics on anything else.
    pub async fn receive_json(&mut self, within: Duration) -> serde_json::Value {
        match self.receive(within).await {
            WsReceived::Text(text) => serde_json::from_str(&text).expect("a JSON message"),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Whether a ping arrives within `within` (other messages are skipped).
    pub async fn pinged_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Ok(Some(Ok(Message::Ping(_)))) => return true,
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) | Err(_) => return false,
            }
        }
    }
}
