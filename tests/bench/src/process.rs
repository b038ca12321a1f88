//! The process under test: a BFF or a floor server, run as a child of the benchmark
//! (the benchmark binary re-executed with `serve …`), so that its CPU time and peak memory
//! can be read from `/proc` apart from the sandbox and the load generator.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running child server.
pub struct Target {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

/// CPU time and peak resident memory of a process, read from `/proc` (Linux only).
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// User + system CPU time.
    pub cpu: Duration,
    /// The system (kernel) part of `cpu`.
    pub system: Duration,
    /// Peak resident set size (`VmHWM`), in bytes.
    pub peak_rss: u64,
}

impl Target {
    /// Starts `serve <what>` with `env` and waits until it prints its address; the
    /// Apollo Server peer is started with `node` instead.
    pub async fn start(what: &str, env: &[(String, String)]) -> anyhow::Result<Self> {
        if what == crate::scenario::PEER_TARGET {
            return Self::start_peer(env).await;
        }
        Self::start_under(&[], what, env).await
    }

    /// Starts the Apollo Server peer (`peer/apollo/server.mjs`), installing its packages
    /// (`npm ci`) first when they are missing.
    async fn start_peer(env: &[(String, String)]) -> anyhow::Result<Self> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peer/apollo");
        if !dir.join("node_modules").exists() {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .await
                .context("the Apollo peer needs npm (Node.js 20+)")?;
            anyhow::ensure!(status.success(), "npm ci failed in {}", dir.display());
        }
        let url = |key: &str| {
            env.iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let mut command = Command::new("node");
        command
            .arg(dir.join("server.mjs"))
            .env("CUSTOMERS_URL", url("SWITCHYARD_UPSTREAMS__CUSTOMERS__URL"))
            .env("ORDERS_URL", url("SWITCHYARD_UPSTREAMS__ORDERS__URL"))
            .env("INVENTORY_URL", url("SWITCHYARD_UPSTREAMS__INVENTORY__URL"))
            .env("JWKS_URL", url("SWITCHYARD_AUTH__JWKS_URL"))
            .env("NODE_ENV", "production");
        Self::spawn(command, crate::scenario::PEER_TARGET).await
    }

    /// Like [`Target::start`], run by `wrapper` (e.g. `valgrind --tool=callgrind …`); the
    /// child's pid is then the wrapper's, which for valgrind is the program's.
    pub async fn start_under(
        wrapper: &[String],
        what: &str,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the benchmark binary")?;
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(exe);
                command
            }
            None => Command::new(exe),
        };
        command
            .arg("serve")
            .arg(what)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("SWITCHYARD_LOG__FILTER", "error")
            // The access log is off unless a scenario measures it.
            .env("SWITCHYARD_LOG__ACCESS", "false");
        Self::spawn(command, what).await
    }

    /// Spawns `command` and waits until it prints `listening on ADDR`.
    async fn spawn(mut command: Command, what: &str) -> anyhow::Result<Self> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .with_context(|| format!("{what} did not start within 120 s"))??
            .with_context(|| format!("{what} exited before listening"))?;
        let addr = line
            .strip_prefix("listening on ")
            .with_context(|| format!("{what} printed {line:?}"))?
            .to_owned();
        // Whatever it prints next (access lines, when on) is read and dropped, so that a
        // full pipe never blocks it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            base: format!("http://{addr}"),
        })
    }

    /// Resident memory now (`VmRSS`), in bytes.
    pub fn rss(&self) -> u64 {
        self.child
            .id()
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .and_then(|status| {
                let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .map_or(0, |kb| kb * 1024)
    }

    /// The child's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// CPU time and peak RSS so far.
    pub fn usage(&self) -> Usage {
        self.child.id().map(usage_of).unwrap_or_default()
    }
}

/// Reads `/proc/<pid>/stat` (utime, stime) and `/proc/<pid>/status` (VmHWM).
fn usage_of(pid: u32) -> Usage {
    let ticks_per_sec = 100.0; // USER_HZ, 100 on every Linux configuration in use
    let (cpu, system) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the parenthesised command name; utime and stime are 14th and 15th.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((
                Duration::from_secs_f64((utime + stime) / ticks_per_sec),
                Duration::from_secs_f64(stime / ticks_per_sec),
            ))
        })
        .unwrap_or_default();
    let peak_rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or_default();
    Usage {
        cpu,
        system,
        peak_rss,
    }
}
