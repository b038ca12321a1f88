//! Real Redis servers for the tests and benchmarks that need shared state: one server, or
//! a three-node Redis Cluster, started from the `redis-server` binary on free loopback
//! ports and stopped when dropped.
//!
//! Without `redis-server` on the `PATH` they cannot run: under `CI=true` that is a failure
//! (CI installs it), elsewhere the caller is told it is skipped.

use std::net::TcpListener;

use crate::servers::{free_port, installed};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process on a loopback port.
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

/// Whether `redis-server` can be started here; under `CI=true` its absence panics.
fn available(test: &str) -> bool {
    installed(
        "redis-server",
        "--version",
        test,
        "apt-get install redis-server",
    )
}

/// A free port for a cluster node: Redis Cluster also listens on the port + 10,000 (its
/// bus), so both must be free and below 65,536, which ephemeral ports often are not.
fn free_cluster_port() -> u16 {
    for _ in 0..1_000 {
        let port = free_port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
    // Ephemeral ports all too high: probe the low range directly.
    (20_000..45_000)
        .step_by(7)
        .find(|&port| {
            TcpListener::bind(("127.0.0.1", port)).is_ok()
                && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
        })
        .expect("a free port pair for a cluster node")
}

impl RedisServer {
    /// A fresh server, or `None` (after saying so) where `redis-server` is missing.
    pub fn start(test: &str) -> Option<Self> {
        available(test).then(|| Self::spawn(free_port(), &[]))
    }

    fn spawn(port: u16, extra: &[&str]) -> Self {
        let dir =
            std::env::temp_dir().join(format!("switchyard-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let server = Self { child, port, dir };
        server.wait_until_ready();
        server
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self
                .cli(&["PING"])
                .is_some_and(|reply| reply.trim() == "PONG")
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    /// Runs `redis-cli` against this server; its output, or `None` if it failed.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (as a crash would), keeping its port for [`RedisServer::restart`].
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a fresh server on the same port (its data is gone, as after a failover to
    /// an empty node).
    pub fn restart(&mut self) {
        self.kill();
        *self = Self::spawn(self.port, &[]);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of three masters on loopback, every slot assigned.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// A fresh cluster, or `None` (after saying so) where `redis-server` is missing.
    pub fn start(test: &str) -> Option<Self> {
        if !available(test) {
            return None;
        }
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                let port = free_cluster_port();
                let config = format!("nodes-{port}.conf");
                RedisServer::spawn(
                    port,
                    &["--cluster-enabled", "yes", "--cluster-config-file", &config],
                )
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(status.success(), "redis-cli --cluster create failed");
        let cluster = Self { nodes };
        cluster.wait_until_ok();
        Some(cluster)
    }

    fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let ok = self.nodes.iter().all(|node| {
                node.cli(&["CLUSTER", "INFO"])
                    .is_some_and(|info| info.contains("cluster_state:ok"))
            });
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the Redis Cluster did not reach cluster_state:ok");
    }

    /// `redis+cluster://127.0.0.1:a,127.0.0.1:b,127.0.0.1:c`.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port()))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }
}
