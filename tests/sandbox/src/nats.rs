//! NATS JetStream for the sandbox: the publisher that puts every order event on the
//! `ORDERS` stream (`--nats-url`), and real `nats-server -js` processes for the tests and
//! benchmarks, started on free loopback ports and stopped when dropped.
//!
//! Without `nats-server` on the `PATH` the tests that need it cannot run: under `CI=true`
//! that is a failure (CI installs it), elsewhere the caller is told it is skipped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::mpsc;

use crate::events::OrderEvent;
use crate::servers::{free_port, installed, wait_for_port};

/// The stream order events go to (DESIGN.md: stream `ORDERS`).
pub const STREAM: &str = "ORDERS";

/// How long the stream keeps events (DESIGN.md: at least an hour).
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Creates the `ORDERS` stream if it is not there (subjects `orders.events.>`, file
/// storage, 24 h), then publishes every event `events` yields to
/// `orders.events.<customer_id>`, each acknowledged by the server before the next; a
/// failed publish is retried (with the event id as `Nats-Msg-Id`, so the server keeps one
/// copy), so no event is lost, repeated or reordered while the server is away.
pub async fn publish(url: String, mut events: mpsc::UnboundedReceiver<OrderEvent>) {
    let client = loop {
        match async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(url.as_str())
            .await
        {
            Ok(client) => break client,
            Err(error) => {
                tracing::warn!(%error, %url, "sandbox: cannot reach NATS; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut context = jetstream::new(client);
    // A publish the server does not acknowledge soon is retried (deduplicated by id).
    context.set_timeout(Duration::from_millis(500));
    let config = jetstream::stream::Config {
        name: STREAM.to_owned(),
        subjects: vec!["orders.events.>".to_owned()],
        max_age: RETENTION,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    };
    while let Err(error) = context.get_or_create_stream(config.clone()).await {
        tracing::warn!(%error, "sandbox: cannot create the ORDERS stream; retrying");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    while let Some(event) = events.recv().await {
        let subject = format!("orders.events.{}", event.customer_id);
        let payload: axum::body::Bytes = serde_json::to_vec(&event).unwrap_or_default().into();
        loop {
            // The event id as the message id: a retry of a publish that did reach the
            // server is dropped by its duplicate window, so the stream holds each once.
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                event.event_id.to_string().as_str(),
            );
            let acked = match context
                .publish_with_headers(subject.clone(), headers, payload.clone())
                .await
            {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match acked {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(%error, event_id = event.event_id, "sandbox: publish failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

/// A `nats-server -js` child process on a loopback port, with its store in a scratch
/// directory that outlives restarts.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl NatsServer {
    /// A fresh server with JetStream, or `None` (after saying so) where `nats-server` is
    /// missing.
    pub fn start(test: &str) -> Option<Self> {
        if !installed(
            "nats-server",
            "--version",
            test,
            "apt-get install nats-server",
        ) {
            return None;
        }
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("switchyard-nats-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let mut server = Self {
            child: None,
            port,
            dir,
        };
        server.spawn();
        Some(server)
    }

    fn spawn(&mut self) {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-sd")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        assert!(
            wait_for_port(self.port, 10),
            "nats-server on port {} did not start",
            self.port
        );
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its store stays), for a restart with [`NatsServer::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
