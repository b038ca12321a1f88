//! `switchyard-sandbox`: run the simulated upstreams and every BFF in one process, or mint
//! a dev token.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchyard_core::bff::BffConfig;
use switchyard_core::config::LogConfig;
use switchyard_core::{server, telemetry};
use switchyard_sandbox::issuer::{DEFAULT_SCOPES, DEV_API_KEY, Issuer, TokenRequest, dev_api_key};
use switchyard_sandbox::{Faults, Sandbox, SandboxOptions, data};

/// The Switchyard sandbox: simulated customers, orders and inventory services, a dev token
/// issuer, and the BFFs wired to them.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Inject a fault at start, as SERVICE:KEY=VALUE (repeatable), e.g.
    /// `inventory:outage=true` or `orders:latency_ms=200`. Keys: latency_ms, jitter_ms,
    /// error_rate, outage.
    #[arg(long = "fault", value_name = "SERVICE:KEY=VALUE")]
    faults: Vec<String>,
    /// Only run the simulated services and the issuer, not the BFFs.
    #[arg(long)]
    upstreams_only: bool,
    /// Address the simulated services and the issuer bind to (ports stay 7100–7103);
    /// `0.0.0.0` to reach them from other containers.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Dataset seed.
    #[arg(long, default_value_t = data::DEFAULT_SEED)]
    seed: u64,
    /// Random orders whose status the orders service advances each second (0: only
    /// `POST /orders/{id}/advance`); their events stream at `GET /orders/events`.
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    order_activity: f64,
    /// Listen address of the web BFF.
    #[arg(long, default_value = "127.0.0.1:8081")]
    web_listen: SocketAddr,
    /// Listen address of the mobile BFF.
    #[arg(long, default_value = "127.0.0.1:8082")]
    mobile_listen: SocketAddr,
    /// Listen address of the IoT BFF.
    #[arg(long, default_value = "127.0.0.1:8083")]
    iot_listen: SocketAddr,
    /// Listen address of the partner BFF.
    #[arg(long, default_value = "127.0.0.1:8084")]
    partner_listen: SocketAddr,
    /// Share usage plans, persisted queries and IoT acks through this Redis (`redis.url` of
    /// every BFF started), e.g. `redis://127.0.0.1:6379`; unset, each BFF keeps its own.
    #[arg(long, value_name = "URL")]
    redis_url: Option<String>,
    /// Also publish every order event to this NATS server's JetStream (stream `ORDERS`),
    /// and have the web and mobile BFFs follow order events there instead of the orders
    /// service's feed, e.g. `nats://127.0.0.1:4222`.
    #[arg(long, value_name = "URL")]
    nats_url: Option<String>,
    /// Also produce every order event to topic `orders.events` on these Kafka bootstrap
    /// brokers (`host:port,…`), and have the web and mobile BFFs follow order events there
    /// (unless `--nats-url` is given too, which they then follow).
    #[arg(long, value_name = "BROKERS")]
    kafka_brokers: Option<String>,
}

/// Where the launcher serves each BFF.
struct BffListeners {
    web: SocketAddr,
    mobile: SocketAddr,
    iot: SocketAddr,
    partner: SocketAddr,
}

#[derive(Subcommand)]
enum Command {
    /// Print a signed dev JWT (and nothing else).
    Token {
        /// Subject: a customer id (`cus_00001`…), a device id, or a service name.
        #[arg(long, default_value = data::DEMO_CUSTOMER_ID)]
        sub: String,
        /// Space-separated scopes.
        #[arg(long, default_value = DEFAULT_SCOPES)]
        scope: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Tier claim: free, pro or enterprise.
        #[arg(long, default_value = "pro")]
        tier: String,
        /// Mint a device token instead: `sub` = this device id, scope `data:inventory:write`.
        #[arg(long, value_name = "DEVICE_ID", conflicts_with_all = ["sub", "scope"])]
        device: Option<String>,
    },
    /// Print the development API key the launcher's partner BFF accepts (and nothing else).
    ApiKey,
    /// Simulate warehouse devices posting stock readings to the IoT BFF, with retries.
    Devices {
        /// Number of devices (`dev-0001`…).
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Messages per second across all devices.
        #[arg(long, default_value_t = 5.0)]
        rate: f64,
        /// Readings per message.
        #[arg(long, default_value_t = 20)]
        readings: usize,
        /// Fraction of acknowledged messages sent again, as a device that lost the ack would.
        #[arg(long, default_value_t = 0.05)]
        resend_rate: f64,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration: Option<u64>,
        /// Base URL of the IoT BFF.
        #[arg(long, default_value = "http://127.0.0.1:8083")]
        url: String,
    },
}

fn apply_fault(options: &mut SandboxOptions, spec: &str) -> Result<(), String> {
    let (service, setting) = spec
        .split_once(':')
        .ok_or_else(|| format!("--fault {spec:?}: expected SERVICE:KEY=VALUE"))?;
    let (key, value) = setting
        .split_once('=')
        .ok_or_else(|| format!("--fault {spec:?}: expected SERVICE:KEY=VALUE"))?;
    let faults: &mut Faults = match service {
        "customers" => &mut options.faults.customers,
        "orders" => &mut options.faults.orders,
        "inventory" => &mut options.faults.inventory,
        other => {
            return Err(format!(
                "--fault {spec:?}: unknown service {other:?} (customers, orders, inventory)"
            ));
        }
    };
    faults
        .set(key, value)
        .map_err(|e| format!("--fault {spec:?}: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match args.command {
        Some(Command::Token {
            sub,
            scope,
            ttl,
            tier,
            device,
        }) => {
            if switchyard_core::domain::Tier::parse(&tier).is_none() {
                eprintln!("switchyard-sandbox: --tier must be free, pro or enterprise");
                return ExitCode::from(2);
            }
            let (sub, scope) = match device {
                Some(device) => (device, "data:inventory:write".to_owned()),
                None => (sub, scope),
            };
            let token = Issuer::dev().mint(&TokenRequest {
                sub,
                scope,
                ttl,
                tier,
            });
            println!("{token}");
            return ExitCode::SUCCESS;
        }
        Some(Command::ApiKey) => {
            println!("{DEV_API_KEY}");
            return ExitCode::SUCCESS;
        }
        Some(Command::Devices {
            count,
            rate,
            readings,
            resend_rate,
            duration,
            url,
        }) => {
            if count == 0
                || rate.is_nan()
                || rate <= 0.0
                || !(1..=100).contains(&readings)
                || !(0.0..=1.0).contains(&resend_rate)
            {
                eprintln!(
                    "switchyard-sandbox devices: --count > 0, --rate > 0, --readings 1..=100, --resend-rate 0..=1"
                );
                return ExitCode::from(2);
            }
            let options = switchyard_sandbox::devices::SimulatorOptions {
                url,
                count,
                rate,
                readings,
                resend_rate,
                skus: data::SKU_COUNT,
                seed: args.seed,
            };
            simulate_devices(options, duration.map(std::time::Duration::from_secs)).await;
            return ExitCode::SUCCESS;
        }
        None => {}
    }

    let mut options = SandboxOptions {
        seed: args.seed,
        order_activity: args.order_activity,
        nats_url: args.nats_url.clone(),
        kafka_brokers: args.kafka_brokers.clone(),
        ..SandboxOptions::default()
    };
    for addr in [
        &mut options.issuer,
        &mut options.customers,
        &mut options.orders,
        &mut options.inventory,
    ] {
        addr.set_ip(args.bind);
    }
    for spec in &args.faults {
        if let Err(message) = apply_fault(&mut options, spec) {
            eprintln!("switchyard-sandbox: {message}");
            return ExitCode::from(2);
        }
    }
    telemetry::init(&LogConfig {
        format: switchyard_core::config::LogFormat::Pretty,
        filter: "warn".into(),
        access: true,
    });
    let listeners = BffListeners {
        web: args.web_listen,
        mobile: args.mobile_listen,
        iot: args.iot_listen,
        partner: args.partner_listen,
    };
    let shared = Shared {
        redis_url: args.redis_url,
        nats_url: args.nats_url,
        kafka_brokers: args.kafka_brokers,
    };
    match run(options, args.upstreams_only, listeners, shared).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchyard-sandbox: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// What the BFFs the launcher starts share beyond the sandbox.
struct Shared {
    redis_url: Option<String>,
    nats_url: Option<String>,
    kafka_brokers: Option<String>,
}

/// A BFF's default config, sharing usage-plan state through `redis_url` when given.
fn config_with<C: BffConfig>(redis_url: Option<&str>) -> C {
    let mut config = C::default();
    config.redis_mut().url = redis_url.map(str::to_owned);
    config
}

/// Order events from JetStream at `nats_url`, or else Kafka at `kafka_brokers`, when
/// given (else the orders service's feed).
fn events_from(
    nats_url: Option<&str>,
    kafka_brokers: Option<&str>,
) -> switchyard_core::streaming::EventsConfig {
    use switchyard_core::streaming::SourceKind;
    let mut events = switchyard_core::streaming::EventsConfig::default();
    if let Some(url) = nats_url {
        events.source = SourceKind::Nats;
        url.clone_into(&mut events.nats_url);
    } else if let Some(brokers) = kafka_brokers {
        events.source = SourceKind::Kafka;
        brokers.clone_into(&mut events.kafka_brokers);
    }
    events
}

async fn run(
    options: SandboxOptions,
    upstreams_only: bool,
    listeners: BffListeners,
    shared: Shared,
) -> anyhow::Result<()> {
    let Shared {
        redis_url,
        nats_url,
        kafka_brokers,
    } = shared;
    use anyhow::Context as _;
    let sandbox = Sandbox::start(&options)
        .await
        .context("cannot start the simulated services (is another sandbox running?)")?;
    println!("Switchyard sandbox");
    println!(
        "  token issuer  {}  (JWKS: {})",
        sandbox.issuer_url,
        sandbox.jwks_url()
    );
    println!("  customers     {}", sandbox.customers.url);
    println!("  orders        {}", sandbox.orders.url);
    println!("  inventory     {}", sandbox.inventory.url);
    println!("  admin         GET|DELETE <service>/__stats, PUT <service>/__faults");

    if !upstreams_only {
        let redis = redis_url.as_deref();
        if let Some(url) = redis {
            println!("  usage plans   shared through {url}");
        }
        let BffListeners {
            web: web_listen,
            mobile: mobile_listen,
            iot: iot_listen,
            partner: partner_listen,
        } = listeners;
        if let Some(url) = &nats_url {
            println!("  order events  published to JetStream at {url} (stream ORDERS)");
        }
        if let Some(brokers) = &kafka_brokers {
            println!("  order events  produced to Kafka at {brokers} (topic orders.events)");
        }
        let mut web_config: web_bff::WebConfig = config_with(redis);
        web_config.events = events_from(nats_url.as_deref(), kafka_brokers.as_deref());
        let web = sandbox
            .start_bff::<web_bff::WebBff>(web_config, web_listen)
            .await?;
        println!("  web-bff       http://{web}/graphql  (GraphiQL in a browser)");
        let mut mobile_config: mobile_bff::MobileConfig = config_with(redis);
        mobile_config.events = events_from(nats_url.as_deref(), kafka_brokers.as_deref());
        let mobile = sandbox
            .start_bff::<mobile_bff::MobileBff>(mobile_config, mobile_listen)
            .await?;
        println!("  mobile-bff    http://{mobile}/v2/dashboard  (OpenAPI: /openapi.json)");
        let iot = sandbox
            .start_bff::<iot_bff::IotBff>(config_with(redis), iot_listen)
            .await?;
        println!(
            "  iot-bff       http://{iot}/v1/readings  (CBOR; feed it: switchyard-sandbox devices)"
        );
        let mut partner_config: partner_bff::PartnerConfig = config_with(redis);
        partner_config.auth.api_keys.push(dev_api_key());
        let partner = sandbox
            .start_bff::<partner_bff::PartnerBff>(partner_config, partner_listen)
            .await?;
        println!("  partner-bff   http://{partner}/partner/v1/orders  (OpenAPI: /openapi.json)");

        let token = sandbox.issuer.mint(&TokenRequest::default());
        println!();
        println!(
            "Token for {} (scopes: {DEFAULT_SCOPES}), valid 1 h:",
            data::DEMO_CUSTOMER_ID
        );
        println!("  {token}");
        println!();
        println!("Try:");
        println!(
            "  curl -s http://{web_listen}/graphql -H 'Authorization: Bearer {token}' \\\n    -H 'Content-Type: application/json' \\\n    -d '{{\"query\":\"{{ viewer {{ name orders(first: 3) {{ nodes {{ id status total {{ formatted }} items {{ sku quantity stock {{ name available }} }} }} }} }} }}\"}}'"
        );
        println!(
            "  curl -s --compressed http://{mobile_listen}/v2/dashboard -H 'Authorization: Bearer {token}'"
        );
        println!(
            "  curl -s 'http://{partner}/partner/v1/orders?status=paid&limit=5' -H 'Authorization: ApiKey {DEV_API_KEY}'"
        );
        println!("  curl -s {}/__stats", sandbox.inventory.url);
        println!("Live order updates (an order changes every second or so):");
        println!(
            "  curl -N http://{mobile_listen}/v2/orders/stream -H 'Authorization: Bearer {token}' -H 'Accept: text/event-stream'"
        );
        println!(
            "  curl -s -X POST {}/orders/<order id>/advance   # change one of yours now",
            sandbox.orders.url
        );
    }
    println!();
    println!("Ctrl-C to stop.");
    server::shutdown_signal().await;
    Ok(())
}

/// Runs the device simulator until `duration` passes or Ctrl-C, printing its counters
/// every 5 s and at the end.
async fn simulate_devices(
    options: switchyard_sandbox::devices::SimulatorOptions,
    duration: Option<std::time::Duration>,
) {
    use switchyard_sandbox::devices::Simulation;
    telemetry::init(&LogConfig {
        format: switchyard_core::config::LogFormat::Pretty,
        filter: "warn".into(),
        access: true,
    });
    println!(
        "{} devices posting {} readings per message at {} messages/s to {}",
        options.count, options.readings, options.rate, options.url
    );
    let simulation = Simulation::start(options, &Issuer::dev());
    let limit = async {
        match duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(limit);
    let stop = server::shutdown_signal();
    tokio::pin!(stop);
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(5));
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => println!("  {}", simulation.report.line()),
            () = &mut limit => break,
            () = &mut stop => break,
        }
    }
    let report = simulation.stop();
    println!("done: {}", report.line());
}
