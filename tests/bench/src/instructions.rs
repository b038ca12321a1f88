//! Instructions per request, counted by valgrind's callgrind: the BFF and its floor each
//! run under `valgrind --tool=callgrind`, take a warm-up, have their counters zeroed
//! (`callgrind_control --zero`), serve `requests` requests one after the other, and dump
//! (`callgrind_control --dump`). The count is exact and repeats for the same binary and
//! input whatever else the machine does, so a hot-path change can be judged on one run
//! while CPU times wander. The sandbox upstreams and the client run in this process,
//! outside valgrind, so only the server's own work is counted.
//!
//! With a concurrency above 1, the counted requests are sent that many at a time: the
//! count then includes what a server does only when requests overlap (wake-ups, contended
//! locks, work that grows with the number in flight), which one request at a time hides.
//!
//! With the cache simulation on, callgrind also counts the misses of a two-level cache
//! model, whose last level is set to [`SIMULATED_LAST_LEVEL_BYTES`] (not the host's, so
//! that counts repeat across machines), and each server gets an *estimated cycles* figure:
//! `Ir + 10 × L1 misses + 100 × last-level misses`, callgrind's own estimate. Instructions
//! alone do not see a larger footprint; this figure does, and like the instructions it
//! repeats whatever else the machine does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde::Serialize;
use switchyard_sandbox::{Sandbox, SandboxOptions};

use crate::process::Target;
use crate::scenario::Scenario;

/// Instructions per request of one scenario's BFF and floor.
#[derive(Clone, Debug, Serialize)]
pub struct InstructionCount {
    /// The scenario's name.
    pub scenario: String,
    /// Requests counted per server.
    pub requests: u64,
    /// Requests in flight at once while counting.
    pub concurrency: usize,
    /// The BFF's instructions per request.
    pub bff_instructions_per_req: u64,
    /// The floor's instructions per request.
    pub floor_instructions_per_req: u64,
    /// `bff / floor`.
    pub ratio: f64,
    /// With the cache simulation: the BFF's estimated cycles per request (module docs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bff_estimated_cycles_per_req: Option<u64>,
    /// The same for the floor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor_estimated_cycles_per_req: Option<u64>,
}

/// The simulated last-level cache: 1 MiB, 16-way, 64-byte lines. Smaller than a server's
/// L3, it stands for the share one process keeps when, as in the benchmark, a load
/// generator, the upstreams and other tenants run on the same cores.
pub const SIMULATED_LAST_LEVEL_BYTES: u64 = 1024 * 1024;

/// One server's counts per request.
struct PerRequest {
    instructions: u64,
    estimated_cycles: Option<u64>,
}

/// Counts `scenarios` with `requests` measured requests each (after as many warm-up ones),
/// `concurrency` of them in flight at once. With `keep`, each server's dump is left there
/// (`<target>.callgrind.1`, for `callgrind_annotate`) instead of deleted.
pub async fn count(
    scenarios: &[Scenario],
    requests: u64,
    concurrency: usize,
    cache_sim: bool,
    keep: Option<&Path>,
) -> anyhow::Result<Vec<InstructionCount>> {
    let concurrency = concurrency.max(1);
    for tool in ["valgrind", "callgrind_control"] {
        std::process::Command::new(tool)
            .arg("--version")
            .output()
            .with_context(|| format!("{tool} is needed (apt-get install valgrind)"))?;
    }
    let sandbox = Sandbox::start(&SandboxOptions::ephemeral()).await?;
    let env = crate::scenario::child_env(&sandbox);
    let dir = match keep {
        Some(dir) => dir.to_path_buf(),
        None => std::env::temp_dir().join(format!("switchyard-callgrind-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let counting = Counting {
        sandbox: &sandbox,
        env: &env,
        dir: &dir,
        requests,
        concurrency,
        cache_sim,
        keep_dumps: keep.is_some(),
    };
    let mut counts = Vec::new();
    for &scenario in scenarios {
        let (bff_target, floor_target) = scenario.targets();
        let bff = counting.per_request(scenario, bff_target, false).await?;
        let floor = counting.per_request(scenario, &floor_target, true).await?;
        let count = InstructionCount {
            scenario: scenario.name(),
            requests,
            concurrency,
            bff_instructions_per_req: bff.instructions,
            floor_instructions_per_req: floor.instructions,
            ratio: bff.instructions as f64 / floor.instructions.max(1) as f64,
            bff_estimated_cycles_per_req: bff.estimated_cycles,
            floor_estimated_cycles_per_req: floor.estimated_cycles,
        };
        eprintln!(
            "{}: {} instructions per request, floor {} ({:.2}×)",
            count.scenario, bff.instructions, floor.instructions, count.ratio
        );
        counts.push(count);
    }
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(counts)
}

/// What every count shares.
struct Counting<'a> {
    sandbox: &'a Sandbox,
    env: &'a [(String, String)],
    dir: &'a Path,
    requests: u64,
    concurrency: usize,
    cache_sim: bool,
    keep_dumps: bool,
}

impl Counting<'_> {
    /// Instructions per request of `target` serving `scenario`'s requests.
    async fn per_request(
        &self,
        scenario: Scenario,
        target: &str,
        floor: bool,
    ) -> anyhow::Result<PerRequest> {
        let Self {
            sandbox,
            env,
            dir,
            requests,
            concurrency,
            cache_sim,
            keep_dumps,
        } = *self;
        let out = dir.join(format!("{target}.callgrind"));
        let mut wrapper = vec![
            "valgrind".to_owned(),
            "--tool=callgrind".to_owned(),
            "--quiet".to_owned(),
            format!("--callgrind-out-file={}", out.display()),
        ];
        if cache_sim {
            wrapper.push("--cache-sim=yes".to_owned());
            wrapper.push(format!("--LL={SIMULATED_LAST_LEVEL_BYTES},16,64"));
        }
        // Deadlines and timeouts sized for a server running some fifty times slower.
        let mut env = env.to_vec();
        env.push(("SWITCHYARD_GRAPHQL__DEADLINE_MS".into(), "60000".into()));
        env.push(("SWITCHYARD_API__DEADLINE_MS".into(), "60000".into()));
        env.push(("SWITCHYARD_DEVICES__DEADLINE_MS".into(), "60000".into()));
        for service in ["CUSTOMERS", "ORDERS", "INVENTORY"] {
            env.push((
                format!("SWITCHYARD_UPSTREAMS__{service}__TIMEOUT_MS"),
                "60000".into(),
            ));
        }
        let target_process = Target::start_under(&wrapper, target, &env).await?;
        let pid = target_process.pid().context("the server's pid")?;
        let tokens = scenario.tokens(sandbox)?;
        let make = scenario.make_request(&target_process.base, floor, tokens);
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .timeout(Duration::from_secs(120))
            .build()?;
        let check = scenario.check_body(floor);
        let send = async |i: u64| -> anyhow::Result<()> {
            let response = make(&client, i).send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            anyhow::ensure!(
                status.is_success() && check(&body),
                "{target}: request {i} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
            Ok(())
        };
        // Both phases at the same concurrency, so that the counted one finds as many
        // connections open as it needs.
        let phase = |from: u64| {
            futures_util::stream::iter(from..from + requests)
                .map(send)
                .buffer_unordered(concurrency)
                .try_collect::<()>()
        };
        phase(0).await?;
        control(&["--zero", &pid.to_string()])?;
        phase(requests).await?;
        control(&["--dump", &pid.to_string()])?;
        drop(target_process);
        let totals = dumped_totals(dir, &out, keep_dumps)?;
        if cache_sim {
            let per_request: Vec<String> = totals
                .events
                .iter()
                .zip(&totals.counts)
                .map(|(event, count)| format!("{event} {}", count / requests))
                .collect();
            eprintln!("{target}: per request: {}", per_request.join(", "));
        }
        Ok(PerRequest {
            instructions: totals.counts.first().copied().unwrap_or(0) / requests,
            estimated_cycles: cache_sim
                .then(|| totals.estimated_cycles())
                .flatten()
                .map(|cycles| cycles / requests),
        })
    }
}

fn control(args: &[&str]) -> anyhow::Result<()> {
    let status = std::process::Command::new("callgrind_control")
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .context("callgrind_control")?;
    anyhow::ensure!(status.success(), "callgrind_control {args:?} failed");
    Ok(())
}

/// The events of a dump (`Ir` first) and their totals.
struct Totals {
    events: Vec<String>,
    counts: Vec<u64>,
}

impl Totals {
    fn event(&self, name: &str) -> Option<u64> {
        let at = self.events.iter().position(|event| event == name)?;
        self.counts.get(at).copied()
    }

    /// `Ir + 10 × (I1mr + D1mr + D1mw) + 100 × (ILmr + DLmr + DLmw)`, when the dump has
    /// the cache events.
    fn estimated_cycles(&self) -> Option<u64> {
        let sum = |names: &[&str]| -> Option<u64> {
            names
                .iter()
                .map(|name| self.event(name))
                .sum::<Option<u64>>()
        };
        let first_level = sum(&["I1mr", "D1mr", "D1mw"])?;
        let last_level = sum(&["ILmr", "DLmr", "DLmw"])?;
        Some(self.event("Ir")? + 10 * first_level + 100 * last_level)
    }
}

/// The `events:` and `totals:` (or `summary:`) lines of the dump `callgrind_control --dump`
/// wrote next to `out` (as `out.1`).
fn dumped_totals(dir: &Path, out: &Path, keep: bool) -> anyhow::Result<Totals> {
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .context("dump name")?
        .to_owned();
    let dumps: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{name}.")))
        })
        .collect();
    let dump = dumps
        .iter()
        .max()
        .with_context(|| format!("no dump of {name}"))?;
    let text = std::fs::read_to_string(dump)?;
    if !keep {
        for dump in &dumps {
            let _ = std::fs::remove_file(dump);
        }
        let _ = std::fs::remove_file(out);
    }
    let events = text
        .lines()
        .find_map(|line| line.strip_prefix("events:"))
        .map(|rest| rest.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let counts: Vec<u64> = text
        .lines()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or_else(|| line.strip_prefix("summary:"))
        })
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    anyhow::ensure!(!counts.is_empty(), "no totals in the callgrind dump");
    Ok(Totals { events, counts })
}
