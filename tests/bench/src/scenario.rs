//! The scenarios, and the runner that measures each against its floor.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::json;
use switchyard_sandbox::{Faults, Sandbox, SandboxOptions, TokenRequest};

use crate::load::{self, CheckBody, Latencies, MakeRequest, Workload};
use crate::process::Target;

/// The device that posts the IoT scenario's readings.
const BENCH_DEVICE: &str = "dev-bench";

/// At most this many distinct signed-in customers take turns, so that requests ask for
/// different data (as real traffic does) and no cache or in-flight sharing between
/// requests for one customer flatters the BFF.
const MAX_CALLERS: usize = 256;

/// One client request shape, served by one BFF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// web-bff: viewer → orders(first: N) → items → stock, and each order's customer.
    Web(u32),
    /// mobile-bff: `GET /v2/dashboard`.
    Mobile,
    /// iot-bff: a 20-reading CBOR message.
    Iot,
    /// mobile-bff's dashboard with usage plans on (a plan no request exhausts), decided in
    /// the process or in Redis, against the same BFF with plans off: what the limiter costs.
    MobilePlans(PlanStore),
    /// mobile-bff's dashboard past its capacity (many more connections than it can serve
    /// at once), with admission control (`server.max_in_flight = 64`) against without.
    MobileOverload,
    /// web-bff (N = 5 or 50) against the peer, an Apollo Server 5 + DataLoader BFF on Node
    /// answering the same query with the same upstream calls (`peer/apollo/`): the ratio
    /// users care about. Run when `node` is installed and `--scenario apollo` names it.
    Apollo(u32),
    /// A BFF with its access log on and every request's spans exported over OTLP to a
    /// receiver in the benchmark process, against the same BFF with neither (metrics are
    /// on in both): what observability costs. `true`: web (N = 5); `false`: mobile.
    Observed(bool),
}

/// Where the usage-plan scenario's decisions are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanStore {
    /// The in-process store.
    Local,
    /// A real Redis on loopback.
    Redis,
}

/// The `serve` name of the Apollo Server peer (started with `node`, not re-executed).
pub(crate) const PEER_TARGET: &str = "peer-apollo";

/// Connections of the overload phase: eight times the admission limit.
const OVERLOAD_CONNECTIONS: usize = 512;

impl Scenario {
    /// Every BFF-against-floor scenario, in report order (the default run).
    pub const ALL: [Self; 4] = [Self::Web(5), Self::Web(50), Self::Mobile, Self::Iot];

    /// Scenarios that compare a BFF with itself, run when `--scenario` names them.
    pub const GATEWAY: [Self; 3] = [
        Self::MobilePlans(PlanStore::Local),
        Self::MobilePlans(PlanStore::Redis),
        Self::MobileOverload,
    ];

    /// Scenarios that measure observability, run when `--scenario observability` names them.
    pub const OBSERVABILITY: [Self; 2] = [Self::Observed(true), Self::Observed(false)];
    /// The web BFF against the Apollo Server peer, run when `--scenario apollo` names them.
    pub const PEER: [Self; 2] = [Self::Apollo(5), Self::Apollo(50)];

    /// Whether both sides are the BFF (with and without a feature) rather than a floor.
    fn compares_the_bff_with_itself(self) -> bool {
        matches!(
            self,
            Self::MobilePlans(_) | Self::MobileOverload | Self::Observed(_) | Self::Apollo(_)
        )
    }

    /// The request shape this scenario sends.
    fn shape(self) -> Self {
        match self {
            Self::Observed(true) => Self::Web(5),
            Self::Apollo(n) => Self::Web(n),
            _ if self.compares_the_bff_with_itself() => Self::Mobile,
            _ => self,
        }
    }

    /// Whether `--scenario wanted` selects a scenario called `name`: the exact name of
    /// a scenario selects that one alone (`web-dashboard-n5` is not also `-n50`), any
    /// other text every name that contains it.
    pub fn selects(wanted: &str, name: &str) -> bool {
        let exact = Self::ALL
            .iter()
            .chain(&Self::GATEWAY)
            .chain(&Self::OBSERVABILITY)
            .chain(&Self::PEER)
            .any(|scenario| scenario.name() == wanted);
        if exact {
            name == wanted
        } else {
            name.contains(wanted)
        }
    }

    /// Name in reports.
    pub fn name(self) -> String {
        match self {
            Self::Web(n) => format!("web-dashboard-n{n}"),
            Self::Mobile => "mobile-dashboard".to_owned(),
            Self::Iot => "iot-readings-20".to_owned(),
            Self::MobilePlans(PlanStore::Local) => "mobile-plans-local".to_owned(),
            Self::MobilePlans(PlanStore::Redis) => "mobile-plans-redis".to_owned(),
            Self::MobileOverload => "mobile-overload".to_owned(),
            Self::Observed(true) => "web-observed".to_owned(),
            Self::Observed(false) => "mobile-observed".to_owned(),
            Self::Apollo(n) => format!("web-vs-apollo-n{n}"),
        }
    }

    /// The `serve` argument of the BFF and of the floor.
    pub(crate) fn targets(self) -> (&'static str, String) {
        match self {
            Self::Web(n) => ("web", format!("floor-web-{n}")),
            Self::Mobile => ("mobile", "floor-mobile".to_owned()),
            Self::Iot => ("iot", "floor-iot".to_owned()),
            Self::MobilePlans(PlanStore::Local) => ("mobile-plans-local", "mobile".to_owned()),
            Self::MobilePlans(PlanStore::Redis) => ("mobile-plans-redis", "mobile".to_owned()),
            Self::MobileOverload => ("mobile-admission-64", "mobile-unbounded".to_owned()),
            Self::Observed(true) => ("web-observed", "web".to_owned()),
            Self::Observed(false) => ("mobile-observed", "mobile".to_owned()),
            Self::Apollo(_) => ("web", PEER_TARGET.to_owned()),
        }
    }

    /// Whether a 2xx body of the BFF (`floor == false`) or the floor is a complete answer.
    pub(crate) fn check_body(self, floor: bool) -> CheckBody {
        let this = self.shape();
        fn contains(body: &[u8], needle: &[u8]) -> bool {
            body.windows(needle.len()).any(|w| w == needle)
        }
        match (this, floor) {
            (Self::Web(_), false) => Arc::new(|body: &[u8]| !contains(body, b"\"errors\"")),
            (Self::Mobile, false) => Arc::new(|body: &[u8]| contains(body, b"\"degraded\":[]")),
            _ => Arc::new(|_: &[u8]| true),
        }
    }

    /// The fewest orders a customer must have for this scenario's response to be full size.
    fn orders_needed(self) -> usize {
        match self.shape() {
            Self::Web(n) => n as usize,
            Self::Iot => 0,
            _ => 5,
        }
    }

    /// One signed-in caller per token: request `i` goes out as caller `i mod len`.
    pub(crate) fn tokens(self, sandbox: &Sandbox) -> anyhow::Result<Arc<Vec<String>>> {
        let tokens: Vec<String> = match self.shape() {
            Self::Iot => vec![sandbox.issuer.mint(&TokenRequest {
                sub: BENCH_DEVICE.into(),
                scope: "data:inventory:write".into(),
                ..TokenRequest::default()
            })],
            _ => sandbox
                .data
                .customers
                .iter()
                .filter(|c| sandbox.data.orders_of(&c.id).len() >= self.orders_needed())
                .take(MAX_CALLERS)
                .map(|c| {
                    sandbox.issuer.mint(&TokenRequest {
                        sub: c.id.clone(),
                        ..TokenRequest::default()
                    })
                })
                .collect(),
        };
        anyhow::ensure!(
            !tokens.is_empty(),
            "no sandbox customer has {} orders",
            self.orders_needed()
        );
        Ok(Arc::new(tokens))
    }

    /// Request `i` against the BFF (`floor == false`) or the floor.
    pub(crate) fn make_request(
        self,
        base: &str,
        floor: bool,
        tokens: Arc<Vec<String>>,
    ) -> MakeRequest {
        let base = base.to_owned();
        let token = move |i: u64| tokens[(i % tokens.len() as u64) as usize].clone();
        match self.shape() {
            Self::Web(n) => {
                let body = json!({ "query": format!(
                    "{{ viewer {{ name orders(first: {n}) {{ nodes {{ id status total {{ formatted }} \
                     customer {{ name }} items {{ sku quantity stock {{ available }} }} }} }} }} }}"
                )})
                .to_string();
                Arc::new(move |client: &reqwest::Client, i| {
                    let request = if floor {
                        client.get(format!("{base}/"))
                    } else {
                        client
                            .post(format!("{base}/graphql"))
                            .header("content-type", "application/json")
                            .body(body.clone())
                    };
                    request.bearer_auth(token(i))
                })
            }
            Self::Iot => {
                // Every message needs its own sequence number, across all phases.
                let seq = Arc::new(AtomicU64::new(1));
                Arc::new(move |client: &reqwest::Client, i| {
                    let n = seq.fetch_add(1, Ordering::Relaxed);
                    let body = iot_bff::samples::valid(BENCH_DEVICE, n, 20).to_cbor();
                    client
                        .post(format!("{base}/v1/readings"))
                        .header("content-type", "application/cbor")
                        .bearer_auth(token(i))
                        .body(body)
                })
            }
            _ => Arc::new(move |client: &reqwest::Client, i| {
                let path = if floor { "/" } else { "/v2/dashboard" };
                client.get(format!("{base}{path}")).bearer_auth(token(i))
            }),
        }
    }
}

/// How long and how hard to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Length of the throughput phase, per target.
    pub saturation: Duration,
    /// Rounds the throughput phase is cut into: the BFF and the floor take turns, one round
    /// each, so that both are measured over the same stretch of time.
    pub rounds: u32,
    /// Connections of the throughput phase.
    pub concurrency: usize,
    /// Fixed arrival rates of the latency phase, requests per second (those a BFF can take:
    /// see [`rates_within`]).
    pub rates: Vec<f64>,
    /// Length of each fixed-rate run.
    pub per_rate: Duration,
    /// Upstream latencies the latency phase sweeps, ms (the throughput phase uses 0 ms).
    pub upstream_latencies_ms: Vec<u64>,
    /// Scenarios to run.
    pub scenarios: Vec<Scenario>,
}

impl Plan {
    /// A second or two per phase: checks the tool, and gives rough figures.
    pub fn quick() -> Self {
        Self {
            saturation: Duration::from_secs(2),
            rounds: 2,
            concurrency: 16,
            rates: vec![200.0],
            per_rate: Duration::from_secs(1),
            upstream_latencies_ms: vec![0, 2],
            scenarios: Scenario::ALL.to_vec(),
        }
    }

    /// Half a second per phase, for the test suite: checks that every figure is produced.
    pub fn smoke() -> Self {
        Self {
            saturation: Duration::from_millis(500),
            rounds: 1,
            concurrency: 4,
            rates: vec![50.0],
            per_rate: Duration::from_millis(500),
            upstream_latencies_ms: vec![0, 2],
            scenarios: Scenario::ALL.to_vec(),
        }
    }

    /// The full run BENCHMARKS.md reports.
    pub fn full() -> Self {
        Self {
            saturation: Duration::from_secs(12),
            rounds: 6,
            concurrency: 32,
            rates: vec![500.0, 1000.0],
            per_rate: Duration::from_secs(8),
            upstream_latencies_ms: vec![0, 2],
            scenarios: Scenario::ALL.to_vec(),
        }
    }
}

/// Latency of one fixed-rate run.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct LatencyPoint {
    /// Latency every upstream call was given, ms.
    pub upstream_ms: u64,
    /// Arrival rate, requests per second.
    pub rate: f64,
    /// Quantiles of the end-to-end latency, measured from each request's scheduled start, ms.
    pub p50_ms: f64,
    /// …
    pub p99_ms: f64,
    /// …
    pub p999_ms: f64,
    /// Failed or incomplete requests in this run.
    pub errors: u64,
}

/// What one target (a BFF or its floor) measured.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    /// Successful requests per second at saturation (0 ms upstreams).
    pub rps: f64,
    /// CPU time of the target per request at saturation, microseconds.
    pub cpu_us_per_req: f64,
    /// The kernel's part of `cpu_us_per_req` (system time: sockets, wake-ups).
    pub system_us_per_req: f64,
    /// Upstream calls per request at saturation.
    pub upstream_calls_per_req: f64,
    /// One point per (upstream latency, rate).
    pub latency: Vec<LatencyPoint>,
    /// Peak resident memory, MB.
    pub rss_mb: f64,
    /// Body size of one response, bytes.
    pub response_bytes: usize,
    /// Failed or incomplete requests, all phases.
    pub errors: u64,
    /// The overload phase, when the scenario has one.
    pub overload: Option<OverloadPoint>,
}

/// A closed loop of [`OVERLOAD_CONNECTIONS`] connections against one side.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct OverloadPoint {
    /// Connections, each sending as fast as it is answered.
    pub connections: usize,
    /// Complete answers per second.
    pub admitted_rps: f64,
    /// Latency of complete answers, ms.
    pub admitted_p50_ms: f64,
    /// …
    pub admitted_p99_ms: f64,
    /// Requests shed with 503 `OVERLOADED`.
    pub shed: u64,
    /// Latency of shed requests, ms.
    pub shed_p50_ms: f64,
    /// …
    pub shed_p99_ms: f64,
    /// Requests that failed otherwise.
    pub failed: u64,
    /// Peak resident memory after the phase, MB.
    pub rss_mb: f64,
}

impl Measured {
    /// The headline point: the highest rate at the highest upstream latency.
    fn headline(&self) -> LatencyPoint {
        self.latency.last().copied().unwrap_or_default()
    }
}

/// One scenario's line of the report.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    /// Scenario name.
    pub scenario: String,
    /// BFF throughput at saturation (0 ms upstreams), successful requests per second.
    pub rps: f64,
    /// BFF latency at the headline point (highest rate, highest upstream latency), ms.
    pub p50_ms: f64,
    /// …
    pub p99_ms: f64,
    /// …
    pub p999_ms: f64,
    /// BFF p99 minus floor p99 at the headline point, ms.
    pub added_p99_ms: f64,
    /// BFF CPU per request, µs.
    pub cpu_us_per_req: f64,
    /// Floor CPU per request, µs.
    pub floor_cpu_us_per_req: f64,
    /// BFF upstream calls per request.
    pub upstream_calls_per_req: f64,
    /// BFF peak RSS, MB.
    pub rss_mb: f64,
    /// BFF response body, bytes.
    pub response_bytes: usize,
    /// The headline rate, requests per second.
    pub rate: f64,
    /// The headline upstream latency, ms.
    pub upstream_latency_ms: u64,
    /// Everything measured, for the BFF and for the floor.
    pub bff: Measured,
    /// …
    pub floor: Measured,
}

fn set_latency(sandbox: &Sandbox, latency_ms: u64) {
    for service in [&sandbox.customers, &sandbox.orders, &sandbox.inventory] {
        service.admin.set_faults(Faults {
            latency_ms,
            ..Faults::default()
        });
    }
}

fn upstream_calls(sandbox: &Sandbox) -> u64 {
    [&sandbox.customers, &sandbox.orders, &sandbox.inventory]
        .iter()
        .map(|s| s.admin.stats().total)
        .sum()
}

/// The environment that points a child at the sandbox: every upstream call made (the
/// customers cache is off, so the BFF makes the calls the floor makes), and usage plans
/// off (the floor has none, and the benchmark's 256 consumers would be throttled by a
/// tier's burst).
pub(crate) fn child_env(sandbox: &Sandbox) -> Vec<(String, String)> {
    let upstreams = sandbox.upstreams_config();
    vec![
        (
            "SWITCHYARD_UPSTREAMS__CUSTOMERS__URL".into(),
            upstreams.customers.url,
        ),
        (
            "SWITCHYARD_UPSTREAMS__ORDERS__URL".into(),
            upstreams.orders.url,
        ),
        (
            "SWITCHYARD_UPSTREAMS__INVENTORY__URL".into(),
            upstreams.inventory.url,
        ),
        ("SWITCHYARD_AUTH__JWKS_URL".into(), sandbox.jwks_url()),
        (
            "SWITCHYARD_UPSTREAMS__CUSTOMERS__CACHE__TTL_MS".into(),
            "0".into(),
        ),
        ("SWITCHYARD_RATELIMIT__ENABLED".into(), "false".into()),
    ]
}

/// The share of a BFF's saturation throughput its latency runs go up to: an open loop past
/// capacity measures nothing but its own queue growing.
const MAX_LOAD: f64 = 0.7;

/// The plan's fixed rates that a BFF saturating at `saturation_rps` can take; when it can
/// take none of them, one rate at [`MAX_LOAD`] of its capacity.
fn rates_within(plan: &Plan, saturation_rps: f64) -> Vec<f64> {
    let ceiling = saturation_rps * MAX_LOAD;
    let rates: Vec<f64> = plan
        .rates
        .iter()
        .copied()
        .filter(|&r| r <= ceiling)
        .collect();
    if rates.is_empty() {
        vec![((ceiling / 10.0).floor() * 10.0).max(10.0)]
    } else {
        rates
    }
}

/// One side of a comparison, the BFF or its floor: a running child, the requests it is
/// sent, and what has been measured of it so far.
struct Side {
    child: Target,
    client: reqwest::Client,
    work: Workload,
    response_bytes: usize,
    /// Successful and failed requests, CPU time and upstream calls of the saturation rounds.
    ok: u64,
    failed: u64,
    cpu: Duration,
    system: Duration,
    calls: u64,
    /// Failed requests of every phase.
    errors: u64,
    latency: Vec<LatencyPoint>,
    overload: Option<OverloadPoint>,
}

impl Side {
    /// Starts `target`, and checks that one request gets a complete answer.
    async fn start(
        sandbox: &Sandbox,
        plan: &Plan,
        scenario: Scenario,
        target: &str,
        floor: bool,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let child = Target::start(target, env).await?;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(plan.concurrency * 4)
            .build()?;
        let work = Workload {
            make: scenario.make_request(&child.base, floor, scenario.tokens(sandbox)?),
            check: scenario.check_body(floor),
        };
        let sample = (work.make)(&client, 0).send().await?;
        let status = sample.status();
        let body = sample.bytes().await?;
        anyhow::ensure!(
            status.is_success() && (work.check)(&body),
            "{target} answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
        Ok(Self {
            child,
            client,
            work,
            response_bytes: body.len(),
            ok: 0,
            failed: 0,
            cpu: Duration::ZERO,
            system: Duration::ZERO,
            calls: 0,
            errors: 0,
            latency: Vec::new(),
            overload: None,
        })
    }

    /// Runs the overload phase: far more connections than the BFF serves at once.
    async fn overload(&mut self, duration: Duration) {
        let seen =
            load::closed_loop_timed(&self.client, &self.work, OVERLOAD_CONNECTIONS, duration).await;
        self.overload = Some(OverloadPoint {
            connections: OVERLOAD_CONNECTIONS,
            admitted_rps: seen.admitted.micros.len() as f64 / duration.as_secs_f64(),
            admitted_p50_ms: seen.admitted.quantile_ms(0.5),
            admitted_p99_ms: seen.admitted.quantile_ms(0.99),
            shed: seen.shed.micros.len() as u64,
            shed_p50_ms: seen.shed.quantile_ms(0.5),
            shed_p99_ms: seen.shed.quantile_ms(0.99),
            failed: seen.failed,
            rss_mb: self.child.usage().peak_rss as f64 / (1024.0 * 1024.0),
        });
    }

    /// Runs the closed loop for `duration`; `measured` adds its figures to the totals.
    async fn saturate(
        &mut self,
        sandbox: &Sandbox,
        plan: &Plan,
        duration: Duration,
        measured: bool,
    ) {
        let (before, calls_before) = (self.child.usage(), upstream_calls(sandbox));
        let (ok, failed) =
            load::closed_loop(&self.client, &self.work, plan.concurrency, duration).await;
        let (after, calls_after) = (self.child.usage(), upstream_calls(sandbox));
        self.errors += failed;
        if measured {
            self.ok += ok;
            self.failed += failed;
            self.cpu += after.cpu.saturating_sub(before.cpu);
            self.system += after.system.saturating_sub(before.system);
            self.calls += calls_after - calls_before;
        }
    }

    /// Measures one fixed-rate point, after an unmeasured quarter run at the same rate so
    /// that connections are open. `run` numbers the requests apart from other runs.
    async fn latency_point(&mut self, plan: &Plan, upstream_ms: u64, rate: f64, run: u64) {
        let warm =
            load::open_loop(&self.client, &self.work, rate, plan.per_rate / 4, run << 40).await;
        let measured: Latencies = load::open_loop(
            &self.client,
            &self.work,
            rate,
            plan.per_rate,
            (run + 1) << 40,
        )
        .await;
        self.errors += warm.errors + measured.errors;
        self.latency.push(LatencyPoint {
            upstream_ms,
            rate,
            p50_ms: measured.quantile_ms(0.5),
            p99_ms: measured.quantile_ms(0.99),
            p999_ms: measured.quantile_ms(0.999),
            errors: measured.errors,
        });
    }

    /// Successful requests per second over `saturation`, the measured rounds' total.
    fn rps(&self, saturation: Duration) -> f64 {
        self.ok as f64 / saturation.as_secs_f64()
    }

    fn measured(self, saturation: Duration) -> Measured {
        let requests = (self.ok + self.failed).max(1) as f64;
        Measured {
            rps: self.rps(saturation),
            cpu_us_per_req: self.cpu.as_secs_f64() * 1e6 / requests,
            system_us_per_req: self.system.as_secs_f64() * 1e6 / requests,
            upstream_calls_per_req: self.calls as f64 / requests,
            latency: self.latency,
            rss_mb: self.child.usage().peak_rss as f64 / (1024.0 * 1024.0),
            response_bytes: self.response_bytes,
            errors: self.errors,
            overload: self.overload,
        }
    }
}

/// Checks that both sides answer the same requests with the same `data` (the peer must
/// make the same upstream calls for the same answer, or the comparison means nothing).
async fn same_data(a: &Side, b: &Side) -> anyhow::Result<()> {
    for i in 0..8 {
        let data = |side: &Side| {
            let request = (side.work.make)(&side.client, i);
            async move {
                let body: serde_json::Value = request.send().await?.json().await?;
                anyhow::Ok(body["data"].clone())
            }
        };
        let (left, right) = (data(a).await?, data(b).await?);
        anyhow::ensure!(
            left == right && !left.is_null(),
            "the peer answers request {i} differently:\n{left}\n{right}"
        );
    }
    Ok(())
}

/// The two sides in the order they take turns: round `i` starts with the BFF when `i` is
/// even and with the floor when it is odd (A B B A …), so that a slow drift of the
/// machine's speed weighs on both alike.
fn in_turn<'a>(bff: &'a mut Side, floor: &'a mut Side, round: u64) -> [&'a mut Side; 2] {
    if round.is_multiple_of(2) {
        [bff, floor]
    } else {
        [floor, bff]
    }
}

/// Measures a scenario's BFF and its floor, both running at once and loaded in turn: the
/// saturation phase in [`Plan::rounds`] alternating rounds, then each latency point for
/// one right after the other. Measured side by side this way, the two figures of a ratio
/// come from the same minutes of the machine's life.
async fn measure_pair(
    sandbox: &Sandbox,
    plan: &Plan,
    scenario: Scenario,
    env: &[(String, String)],
) -> anyhow::Result<(Measured, Measured)> {
    let (bff_target, floor_target) = scenario.targets();
    let floor_is_floor = !scenario.compares_the_bff_with_itself();
    let mut bff = Side::start(sandbox, plan, scenario, bff_target, false, env).await?;
    let mut floor =
        Side::start(sandbox, plan, scenario, &floor_target, floor_is_floor, env).await?;
    if matches!(scenario, Scenario::Apollo(_)) {
        same_data(&bff, &floor).await?;
    }

    set_latency(sandbox, 0);
    let rounds = plan.rounds.max(1);
    let round = plan.saturation / rounds;
    for side in [&mut bff, &mut floor] {
        side.saturate(sandbox, plan, plan.saturation / 4, false)
            .await;
    }
    for i in 0..u64::from(rounds) {
        for side in in_turn(&mut bff, &mut floor, i) {
            side.saturate(sandbox, plan, round, true).await;
        }
    }
    let saturation = round * rounds;
    let rates = rates_within(plan, bff.rps(saturation));

    let mut run = 1u64;
    let mut point = 0u64;
    for &upstream_ms in &plan.upstream_latencies_ms {
        set_latency(sandbox, upstream_ms);
        for &rate in &rates {
            for side in in_turn(&mut bff, &mut floor, point) {
                side.latency_point(plan, upstream_ms, rate, run).await;
                run += 2;
            }
            point += 1;
        }
    }
    set_latency(sandbox, 0);
    if scenario == Scenario::MobileOverload {
        for side in [&mut bff, &mut floor] {
            side.overload(plan.per_rate).await;
        }
    }
    Ok((bff.measured(saturation), floor.measured(saturation)))
}

/// Runs `plan` on a fresh sandbox (and a Redis, when a scenario needs one).
pub async fn run(plan: &Plan) -> anyhow::Result<Vec<ScenarioReport>> {
    let sandbox = Sandbox::start(&SandboxOptions::ephemeral()).await?;
    let redis = if plan
        .scenarios
        .contains(&Scenario::MobilePlans(PlanStore::Redis))
    {
        Some(
            switchyard_sandbox::redis::RedisServer::start("switchyard-bench mobile-plans-redis")
                .ok_or_else(|| {
                    anyhow::anyhow!("mobile-plans-redis needs redis-server installed")
                })?,
        )
    } else {
        None
    };
    let mut env = child_env(&sandbox);
    if let Some(redis) = &redis {
        env.push(("SWITCHYARD_REDIS__URL".into(), redis.url()));
    }
    let otlp = if plan
        .scenarios
        .iter()
        .any(|s| matches!(s, Scenario::Observed(_)))
    {
        Some(crate::otlp::Receiver::start().await?)
    } else {
        None
    };
    if let Some(otlp) = &otlp {
        env.push(("BENCH_OTLP_URL".into(), otlp.url.clone()));
    }
    let mut reports = Vec::new();
    for &scenario in &plan.scenarios {
        let (bff, floor) = measure_pair(&sandbox, plan, scenario, &env).await?;
        let headline = bff.headline();
        let floor_p99 = floor.headline().p99_ms;
        reports.push(ScenarioReport {
            scenario: scenario.name(),
            rps: bff.rps,
            p50_ms: headline.p50_ms,
            p99_ms: headline.p99_ms,
            p999_ms: headline.p999_ms,
            added_p99_ms: headline.p99_ms - floor_p99,
            cpu_us_per_req: bff.cpu_us_per_req,
            floor_cpu_us_per_req: floor.cpu_us_per_req,
            upstream_calls_per_req: bff.upstream_calls_per_req,
            rss_mb: bff.rss_mb,
            response_bytes: bff.response_bytes,
            rate: headline.rate,
            upstream_latency_ms: headline.upstream_ms,
            bff,
            floor,
        });
    }
    Ok(reports)
}

/// One side's figures from [`profile`].
#[derive(Clone, Debug)]
pub struct ProfiledSide {
    /// The target served (`web`, `floor-web-5`, …).
    pub target: String,
    /// Successful requests over the profiled stretch.
    pub requests: u64,
    /// User + system CPU per request, µs.
    pub cpu_us_per_req: f64,
    /// The system part, µs.
    pub system_us_per_req: f64,
    /// Peak resident memory of the server, MB.
    pub peak_rss_mb: f64,
}

/// Saturates `scenario`'s BFF, then its floor, for `duration` each (after a warm-up of a
/// quarter of it), with `record` running alongside each: a command line in which `{pid}`
/// and `{target}` are replaced (e.g. `perf record -F 999 -p {pid} -o {target}.data`),
/// started when the measured stretch starts and sent SIGINT when it ends. Per-request
/// figures let two profiles be compared sample for sample.
pub async fn profile(
    plan: &Plan,
    scenario: Scenario,
    duration: Duration,
    record: Option<&str>,
) -> anyhow::Result<Vec<ProfiledSide>> {
    let sandbox = Sandbox::start(&SandboxOptions::ephemeral()).await?;
    let env = child_env(&sandbox);
    set_latency(&sandbox, 0);
    let (bff_target, floor_target) = scenario.targets();
    let floor_is_floor = !scenario.compares_the_bff_with_itself();
    let mut sides = Vec::new();
    for (target, floor) in [(bff_target, false), (floor_target.as_str(), floor_is_floor)] {
        let mut side = Side::start(&sandbox, plan, scenario, target, floor, &env).await?;
        side.saturate(&sandbox, plan, duration / 4, false).await;
        let recorder = match record {
            Some(command) => {
                let pid = side.child.pid().context("the server's pid")?;
                let line = command
                    .replace("{pid}", &pid.to_string())
                    .replace("{target}", target);
                let mut words = line.split_whitespace();
                let program = words.next().context("an empty --record command")?;
                let child = tokio::process::Command::new(program)
                    .args(words)
                    .spawn()
                    .with_context(|| format!("starting {line}"))?;
                // Give the recorder a moment to attach before the load starts.
                tokio::time::sleep(Duration::from_millis(500)).await;
                Some(child)
            }
            None => None,
        };
        side.saturate(&sandbox, plan, duration, true).await;
        if let Some(mut recorder) = recorder {
            if let Some(pid) = recorder.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-INT", &pid.to_string()])
                    .status();
            }
            let _ = recorder.wait().await;
        }
        let requests = (side.ok + side.failed).max(1);
        sides.push(ProfiledSide {
            target: target.to_owned(),
            requests: side.ok,
            cpu_us_per_req: side.cpu.as_secs_f64() * 1e6 / requests as f64,
            system_us_per_req: side.system.as_secs_f64() * 1e6 / requests as f64,
            peak_rss_mb: side.child.usage().peak_rss as f64 / (1024.0 * 1024.0),
        });
    }
    Ok(sides)
}
