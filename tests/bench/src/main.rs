//! `switchyard-bench [--quick] [--json FILE]`: the benchmark suite (see BENCHMARKS.md).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchyard_bench::floor::{self, FloorKind};
use switchyard_bench::report;
use switchyard_bench::scenario::{Plan, Scenario, run};
use switchyard_core::bff::{self, App, Bff, BffConfig};
use switchyard_core::config;

/// Benchmarks the Switchyard BFFs against a hand-written floor on the sandbox.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// A second or two per scenario: checks the tool, not the numbers.
    #[arg(long)]
    quick: bool,
    /// (tests) Half a second per phase.
    #[arg(long, hide = true)]
    smoke: bool,
    /// Also write the report as JSON here, and the chart next to it (`.svg`).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Run only the scenarios whose name contains this (repeatable).
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// (internal) Serve one target on an ephemeral port, configured from the environment.
    #[command(hide = true)]
    Serve {
        /// web, mobile, iot, floor-web-N, floor-mobile or floor-iot.
        target: String,
    },
    /// The cost per request of metrics, the request record, trace context and the access line.
    Observe {
        /// Requests to time.
        #[arg(long, default_value_t = 1_000_000)]
        requests: u64,
    },
    /// Live order updates: N streams on the mobile BFF, events at a fixed rate.
    Stream {
        /// Streams to open, one run each (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        subscribers: Vec<usize>,
        /// Order events the sandbox makes per second.
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        /// Seconds of events per run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Also write the figures as JSON here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Instructions per request of each BFF and its floor, counted under valgrind's
    /// callgrind (exact and repeatable on a noisy machine).
    Instructions {
        /// Requests counted per server (after as many warm-up ones).
        #[arg(long, default_value_t = 300)]
        requests: u64,
        /// Also write the counts as JSON here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Keep each server's callgrind dump in this folder (for `callgrind_annotate`).
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
        /// Requests in flight at once (1: one after the other).
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Also simulate the caches (`--cache-sim=yes`, a 1 MiB last level), print the misses
        /// per request, and estimate cycles per request from them.
        #[arg(long)]
        cache_sim: bool,
    },
    /// The cost of one usage-plan decision, in the process and in a Redis on loopback.
    Limiter {
        /// Decisions to time (the Redis store times a tenth as many).
        #[arg(long, default_value_t = 200_000)]
        decisions: u64,
    },
    /// Saturates one scenario's BFF, then its floor, for a fixed time each, with a
    /// profiler attached to each (CPU and requests are printed, to compare per request).
    Profile {
        /// The scenario (its exact name).
        scenario: String,
        /// Seconds of saturation per server.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Run alongside each server; `{pid}` and `{target}` are replaced, and it gets
        /// SIGINT at the end, e.g. `perf record -F 999 -p {pid} -o {target}.data`.
        #[arg(long, value_name = "COMMAND")]
        record: Option<String>,
    },
}

async fn serve(target: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    match target {
        "web" => serve_bff::<web_bff::WebBff>(listener).await,
        "mobile" => serve_bff::<mobile_bff::MobileBff>(listener).await,
        "mobile-plans-local"
        | "mobile-plans-redis"
        | "mobile-admission-64"
        | "mobile-unbounded" => serve_variant(target, listener).await,
        "web-observed" => serve_observed::<web_bff::WebBff>(listener).await,
        "mobile-observed" => serve_observed::<mobile_bff::MobileBff>(listener).await,
        "iot" => serve_bff::<iot_bff::IotBff>(listener).await,
        other => {
            let kind = match other {
                "floor-mobile" => FloorKind::Mobile,
                "floor-iot" => FloorKind::Iot,
                _ => FloorKind::Web(
                    other
                        .strip_prefix("floor-web-")
                        .and_then(|n| n.parse().ok())
                        .ok_or_else(|| anyhow::anyhow!("unknown target {other}"))?,
                ),
            };
            let config: web_bff::WebConfig = config::load(None)?;
            floor::serve(kind, listener, &config.upstreams, &config.auth).await
        }
    }
}

/// Serves the mobile BFF with one gateway feature changed from the environment's config:
/// usage plans on (a plan no request exhausts; decided in the process, or in the Redis of
/// `SWITCHYARD_REDIS__URL`), or admission control at 64 requests, or none at all.
async fn serve_variant(target: &str, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    use switchyard_core::domain::Tier;
    use switchyard_core::ratelimit::TierPlan;
    let mut config: mobile_bff::MobileConfig = config::load(None)?;
    match target {
        "mobile-plans-local" | "mobile-plans-redis" => {
            config.ratelimit.enabled = true;
            let plan = TierPlan {
                rate_per_sec: 1e6,
                burst: 1_000_000,
                quotas: Vec::new(),
            };
            config.ratelimit.tiers = [(Tier::Pro, plan.clone()), (Tier::Free, plan)].into();
            // Every benchmark request comes from one loopback address: the limit per
            // address is measured too, but must not refuse.
            config.ratelimit.anonymous.rate_per_sec = 1e6;
            config.ratelimit.anonymous.burst = 1_000_000;
            if target == "mobile-plans-local" {
                config.redis.url = None;
            } else {
                anyhow::ensure!(
                    config.redis.url.is_some(),
                    "{target} needs SWITCHYARD_REDIS__URL"
                );
            }
        }
        "mobile-admission-64" => config.server.max_in_flight = 64,
        _ => config.server.max_in_flight = 1 << 20,
    }
    bff::install_workers::<mobile_bff::MobileBff>(&config.server)?;
    let app = App::<mobile_bff::MobileBff>::new(&config)?;
    app.serve(listener, std::future::pending()).await?;
    Ok(())
}

/// Serves BFF `B` with its access log on and spans exported to the benchmark's OTLP
/// receiver (`BENCH_OTLP_URL`), every trace sampled.
async fn serve_observed<B: Bff>(listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let otlp = std::env::var("BENCH_OTLP_URL")?;
    // On top of the environment, as an operator would set them.
    let observed = [
        "SWITCHYARD_LOG__ACCESS",
        "SWITCHYARD_TELEMETRY__OTLP_ENDPOINT",
        "SWITCHYARD_TELEMETRY__SAMPLE_RATIO",
        "SWITCHYARD_TELEMETRY__EXPORT_INTERVAL_MS",
    ]
    .into_iter()
    .zip(["true", otlp.as_str(), "1.0", "1000"])
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let config: B::Config = config::load_from_sources(None, std::env::vars().chain(observed))?;
    bff::install_workers::<B>(config.server())?;
    let app = App::<B>::new(&config)?;
    app.serve(listener, std::future::pending()).await?;
    Ok(())
}

/// Serves BFF `B` on `listener`, configured from the environment, until the process ends:
/// as its binary does (`bff::run`), on connection workers unless the config says not to.
async fn serve_bff<B: Bff>(listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    let config: B::Config = config::load(None)?;
    bff::install_workers::<B>(config.server())?;
    let app = App::<B>::new(&config)?;
    app.serve(listener, std::future::pending()).await?;
    Ok(())
}

/// Writes `figures` as JSON to `path`, when given.
fn write_json(path: Option<&std::path::Path>, figures: &impl serde::Serialize) -> ExitCode {
    let Some(path) = path else {
        return ExitCode::SUCCESS;
    };
    let text = serde_json::to_string_pretty(figures).unwrap_or_default();
    match std::fs::write(path, text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchyard-bench: cannot write {}: {error}", path.display());
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::Observe { requests }) = args.command {
        println!("{:<34} {:>10}", "per request", "ns");
        for figure in switchyard_bench::observe::run(requests).await {
            println!("{:<34} {:>10.0}", figure.what, figure.ns);
        }
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Stream {
        subscribers,
        rate,
        seconds,
        json,
    }) = &args.command
    {
        return match switchyard_bench::streaming::run(subscribers, *rate, *seconds).await {
            Ok(figures) => {
                println!(
                    "{:>11} {:>9} {:>12} {:>9} {:>9} {:>14} {:>9} {:>12} {:>10}",
                    "subscribers",
                    "events/s",
                    "deliveries/s",
                    "p50 ms",
                    "p99 ms",
                    "RSS/stream B",
                    "RSS MB",
                    "CPU/deliv µs",
                    "idle CPU %"
                );
                for f in &figures {
                    println!(
                        "{:>11} {:>9.0} {:>12.0} {:>9.2} {:>9.2} {:>14.0} {:>9.1} {:>12.1} {:>10.1}",
                        f.subscribers,
                        f.events_per_sec,
                        f.deliveries_per_sec,
                        f.p50_ms,
                        f.p99_ms,
                        f.rss_per_stream_bytes,
                        f.rss_bytes as f64 / 1e6,
                        f.cpu_per_delivery_us,
                        f.idle_cpu_percent
                    );
                }
                write_json(json.as_deref(), &figures)
            }
            Err(error) => {
                eprintln!("switchyard-bench stream: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::Profile {
        scenario,
        seconds,
        record,
    }) = &args.command
    {
        let Some(chosen) = Scenario::ALL
            .into_iter()
            .chain(Scenario::PEER)
            .find(|s| s.name() == *scenario)
        else {
            eprintln!("switchyard-bench profile: no scenario is called {scenario}");
            return ExitCode::FAILURE;
        };
        let plan = Plan::full();
        let duration = std::time::Duration::from_secs(*seconds);
        return match switchyard_bench::scenario::profile(&plan, chosen, duration, record.as_deref())
            .await
        {
            Ok(sides) => {
                println!(
                    "{:<20} {:>10} {:>12} {:>12} {:>12}",
                    "target", "requests", "cpu µs/req", "sys µs/req", "peak RSS MB"
                );
                for side in &sides {
                    println!(
                        "{:<20} {:>10} {:>12.1} {:>12.1} {:>12.1}",
                        side.target,
                        side.requests,
                        side.cpu_us_per_req,
                        side.system_us_per_req,
                        side.peak_rss_mb
                    );
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("switchyard-bench profile: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::Instructions {
        requests,
        json,
        keep,
        concurrency,
        cache_sim,
    }) = &args.command
    {
        let scenarios: Vec<Scenario> = Scenario::ALL
            .into_iter()
            .filter(|s| {
                args.scenarios.is_empty()
                    || args
                        .scenarios
                        .iter()
                        .any(|n| Scenario::selects(n, &s.name()))
            })
            .collect();
        return match switchyard_bench::instructions::count(
            &scenarios,
            *requests,
            *concurrency,
            *cache_sim,
            keep.as_deref(),
        )
        .await
        {
            Ok(counts) => {
                println!(
                    "{:<20} {:>16} {:>16} {:>7}",
                    "scenario", "BFF instr/req", "floor instr/req", "ratio"
                );
                for c in &counts {
                    println!(
                        "{:<20} {:>16} {:>16} {:>7.2}",
                        c.scenario,
                        c.bff_instructions_per_req,
                        c.floor_instructions_per_req,
                        c.ratio
                    );
                }
                if *cache_sim {
                    println!(
                        "{:<20} {:>16} {:>16} {:>7}",
                        "scenario", "BFF est. cycles", "floor est. cycles", "ratio"
                    );
                    for c in &counts {
                        let (Some(bff), Some(floor)) = (
                            c.bff_estimated_cycles_per_req,
                            c.floor_estimated_cycles_per_req,
                        ) else {
                            continue;
                        };
                        println!(
                            "{:<20} {:>16} {:>16} {:>7.2}",
                            c.scenario,
                            bff,
                            floor,
                            bff as f64 / floor.max(1) as f64
                        );
                    }
                }
                write_json(json.as_deref(), &counts)
            }
            Err(error) => {
                eprintln!("switchyard-bench instructions: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::Limiter { decisions }) = args.command {
        return match switchyard_bench::limiter::run(decisions).await {
            Ok(figures) => {
                println!(
                    "{:<12} {:>14} {:>20}",
                    "store", "µs/decision", "decisions/s (64 tasks)"
                );
                for f in figures {
                    println!(
                        "{:<12} {:>14.2} {:>20.0}",
                        f.store, f.sequential_us, f.concurrent_per_sec
                    );
                }
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("switchyard-bench limiter: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::Serve { target }) = args.command {
        return match serve(&target).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("switchyard-bench serve {target}: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    let mut plan = if args.smoke {
        Plan::smoke()
    } else if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    if !args.scenarios.is_empty() {
        plan.scenarios.extend(Scenario::GATEWAY);
        plan.scenarios.extend(Scenario::OBSERVABILITY);
        plan.scenarios.extend(Scenario::PEER);
        plan.scenarios.retain(|scenario| {
            let name = scenario.name();
            args.scenarios.iter().any(|wanted| {
                let wanted = wanted.as_str();
                // The gateway scenarios run when named ("plans", "overload") or all at
                // once ("gateway"), not whenever a BFF's name matches.
                if Scenario::OBSERVABILITY.contains(scenario) {
                    wanted == "observability" || wanted == name
                } else if Scenario::PEER.contains(scenario) {
                    wanted == "apollo" || wanted == name
                } else if Scenario::GATEWAY.contains(scenario) {
                    wanted == "gateway"
                        || ((wanted.contains("plans") || wanted.contains("overload"))
                            && name.contains(wanted))
                } else {
                    Scenario::selects(wanted, &name)
                }
            })
        });
        if plan.scenarios.is_empty() {
            eprintln!("switchyard-bench: no scenario matches {:?}", args.scenarios);
            return ExitCode::FAILURE;
        }
    }
    let reports = match run(&plan).await {
        Ok(reports) => reports,
        Err(error) => {
            eprintln!("switchyard-bench: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report::table(&reports));
    if let Some(path) = args.json {
        let json = serde_json::to_string_pretty(&reports).unwrap_or_default();
        let svg_path = path.with_extension("svg");
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(error) = std::fs::write(&path, json)
            .and_then(|()| std::fs::write(&svg_path, report::svg(&reports)))
        {
            eprintln!("switchyard-bench: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {} and {}", path.display(), svg_path.display());
    }
    ExitCode::SUCCESS
}
