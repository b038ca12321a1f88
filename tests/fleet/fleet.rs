//! The fleet under test, as real processes: BFF replicas (the binaries cargo built),
//! haproxy in front of them routing on `/readyz`, with Redis and NATS JetStream from the
//! sandbox's server support and the sandbox upstreams in this process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchyard_sandbox::Sandbox;
use switchyard_sandbox::servers::{free_port, wait_for_port};

/// Which BFF a replica runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Web,
    Mobile,
    Iot,
}

impl Kind {
    pub(crate) fn binary(self) -> &'static str {
        match self {
            Self::Web => "web-bff",
            Self::Mobile => "mobile-bff",
            Self::Iot => "iot-bff",
        }
    }

    fn backend(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Mobile => "mobile",
            Self::Iot => "iot",
        }
    }
}

/// Where cargo put the workspace's binaries: next to this test's `deps` folder.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the fleet's binaries first \
         (cargo build -p web-bff -p mobile-bff -p iot-bff)",
        path.display()
    );
    path
}

/// The config every replica of `kind` gets, on `sandbox`'s upstreams, sharing `redis_url`
/// and following `nats_url`'s JetStream.
pub(crate) fn config(kind: Kind, sandbox: &Sandbox, redis_url: &str, nats_url: &str) -> String {
    let mut toml = format!(
        r#"
[log]
access = false

[auth]
jwks_url = "{jwks}"

[upstreams.customers]
url = "{customers}"

[upstreams.orders]
url = "{orders}"

[upstreams.inventory]
url = "{inventory}"

[redis]
url = "{redis_url}"
# Debug builds, seven BFFs, the balancer and the clients on 2 cores.
timeout_ms = 500

[ratelimit]
on_store_error = "local"

# Every client is this machine: the limit per address must not be what the test meets.
[ratelimit.anonymous]
rate_per_sec = 100000.0
burst = 100000

# A burst of 50 that does not refill within the test.
[ratelimit.tiers.pro]
rate_per_sec = 0.001
burst = 50

# A quota of 60 a day, no burst to speak of.
[ratelimit.tiers.free]
rate_per_sec = 100000.0
burst = 100000
quotas = [{{ limit = 60, period = "day" }}]

[ratelimit.tiers.enterprise]
rate_per_sec = 100000.0
burst = 100000
"#,
        jwks = sandbox.jwks_url(),
        customers = sandbox.customers.url,
        orders = sandbox.orders.url,
        inventory = sandbox.inventory.url,
    );
    if kind != Kind::Iot {
        toml.push_str(&format!(
            r#"
[events]
source = "nats"
nats_url = "{nats_url}"
reconnect_initial_ms = 50
reconnect_max_ms = 500
"#
        ));
    }
    toml
}

/// One BFF process.
pub(crate) struct Replica {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Replica {
    /// Starts `name`, a `kind` replica, with `config` (TOML text), on a free port.
    pub(crate) fn start(name: &str, kind: Kind, config: &str, dir: &Path) -> Self {
        let mut replica = Self {
            name: name.to_owned(),
            kind,
            port: free_port(),
            config: dir.join(format!("{name}.toml")),
            log: dir.join(format!("{name}.log")),
            child: None,
        };
        replica.restart_with(config);
        replica
    }

    /// Kills it (SIGKILL, as a crashed node) if running, then starts it again on the
    /// same port with `config`.
    pub(crate) fn restart_with(&mut self, config: &str) {
        self.kill();
        std::fs::write(&self.config, config).expect("config file");
        let log = std::fs::File::create(&self.log).expect("log file");
        let child = Command::new(binary(self.kind.binary()))
            .arg("--config")
            .arg(&self.config)
            .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{}", self.port))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the BFF starts");
        self.child = Some(child);
        assert!(
            wait_for_port(self.port, 20),
            "{} did not listen: {}",
            self.name,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// SIGKILL: no drain, no goodbye.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until `/readyz` answers 200 (keys loaded, upstreams reachable).
    pub(crate) async fn wait_ready(&self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(response) = client.get(format!("{}/readyz", self.url())).send().await
                && response.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{} never became ready: {}",
            self.name,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// haproxy in front of the replicas: one frontend per BFF, round robin, health checks on
/// `/readyz` every 200 ms (one failure takes a replica out, one success puts it back),
/// retries as `deploy/haproxy/haproxy.cfg` has them (a request that got no answer is
/// replayed on another replica), and its stats page for the test to read what it thinks
/// of each server.
pub(crate) struct Balancer {
    pub(crate) web: u16,
    pub(crate) mobile: u16,
    pub(crate) iot: u16,
    stats: u16,
    child: Child,
}

impl Balancer {
    pub(crate) fn start(replicas: &[&Replica], dir: &Path) -> Self {
        let (web, mobile, iot, stats) = (free_port(), free_port(), free_port(), free_port());
        let mut config = String::from(
            "global\n    maxconn 4000\n\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n    \
             timeout server 30s\n    timeout tunnel 1h\n    retries 2\n    option redispatch 1\n    \
             retry-on conn-failure empty-response\n    \
             default-server check inter 200ms fall 1 rise 1\n\n",
        );
        for (kind, port) in [(Kind::Web, web), (Kind::Mobile, mobile), (Kind::Iot, iot)] {
            let backend = kind.backend();
            config.push_str(&format!(
                "backend {backend}\n    balance roundrobin\n    option httpchk GET /readyz\n    \
                 http-check expect status 200\n"
            ));
            for replica in replicas.iter().filter(|r| r.kind == kind) {
                config.push_str(&format!(
                    "    server {} 127.0.0.1:{}\n",
                    replica.name, replica.port
                ));
            }
            config.push_str(&format!(
                "\nfrontend {backend}_in\n    bind 127.0.0.1:{port}\n    default_backend {backend}\n\n"
            ));
        }
        config.push_str(&format!(
            "listen stats\n    bind 127.0.0.1:{stats}\n    stats enable\n    stats uri /stats\n"
        ));
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).expect("haproxy.cfg");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy starts");
        assert!(wait_for_port(stats, 10), "haproxy did not start");
        Self {
            web,
            mobile,
            iot,
            stats,
            child,
        }
    }

    pub(crate) fn url(&self, kind: Kind) -> String {
        let port = match kind {
            Kind::Web => self.web,
            Kind::Mobile => self.mobile,
            Kind::Iot => self.iot,
        };
        format!("http://127.0.0.1:{port}")
    }

    /// What haproxy says of `server` (`UP`, `DOWN`, …).
    pub(crate) async fn status(&self, client: &reqwest::Client, server: &str) -> String {
        let csv = client
            .get(format!("http://127.0.0.1:{}/stats;csv", self.stats))
            .send()
            .await
            .expect("stats")
            .text()
            .await
            .expect("stats text");
        // pxname,svname,…; the status is column 18 (index 17).
        csv.lines()
            .map(|line| line.split(',').collect::<Vec<_>>())
            .find(|columns| columns.get(1) == Some(&server))
            .and_then(|columns| columns.get(17).map(|s| (*s).to_owned()))
            .unwrap_or_default()
    }

    /// Waits until haproxy sees every one of `servers` as `UP`.
    pub(crate) async fn wait_up(&self, client: &reqwest::Client, servers: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let mut all = true;
            for server in servers {
                all &= self.status(client, server).await == "UP";
            }
            if all {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("haproxy did not see {servers:?} up");
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sum of `switchyard_http_requests_total` for `route` that `replica` reports.
pub(crate) async fn requests_served(replica: &Replica, route: &str) -> f64 {
    switchyard_tests::MetricsScrape::fetch(&format!("{}/metrics", replica.url()))
        .await
        .value("switchyard_http_requests_total", &[("route", route)])
        .unwrap_or(0.0)
}
