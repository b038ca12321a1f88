//! `switchyard-sandbox`: run the simulated upstreams and every BFF in one process, or mint
//! a dev token.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchyard_core::config::LogConfig;
use switchyard_core::{server, telemetry};
use switchyard_sandbox::issuer::{DEFAULT_SCOPES, Issuer, TokenRequest};
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
    /// Listen address of the web BFF.
    #[arg(long, default_value = "127.0.0.1:8081")]
    web_listen: SocketAddr,
    /// Listen address of the mobile BFF.
    #[arg(long, default_value = "127.0.0.1:8082")]
    mobile_listen: SocketAddr,
}

/// Where the launcher serves each BFF.
struct BffListeners {
    web: SocketAddr,
    mobile: SocketAddr,
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
    if let Some(Command::Token {
        sub,
        scope,
        ttl,
        tier,
    }) = args.command
    {
        if switchyard_core::domain::Tier::parse(&tier).is_none() {
            eprintln!("switchyard-sandbox: --tier must be free, pro or enterprise");
            return ExitCode::from(2);
        }
        let token = Issuer::dev().mint(&TokenRequest {
            sub,
            scope,
            ttl,
            tier,
        });
        println!("{token}");
        return ExitCode::SUCCESS;
    }

    let mut options = SandboxOptions {
        seed: args.seed,
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
    });
    let listeners = BffListeners {
        web: args.web_listen,
        mobile: args.mobile_listen,
    };
    match run(options, args.upstreams_only, listeners).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchyard-sandbox: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    options: SandboxOptions,
    upstreams_only: bool,
    listeners: BffListeners,
) -> anyhow::Result<()> {
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

    let mut bffs = Vec::new();
    if !upstreams_only {
        let BffListeners {
            web: web_listen,
            mobile: mobile_listen,
        } = listeners;
        let web_config = web_bff::WebConfig {
            listen: web_listen,
            upstreams: sandbox.upstreams_config(),
            auth: sandbox.auth_config(),
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind(web_listen)
            .await
            .with_context(|| format!("cannot listen on {web_listen} for web-bff"))?;
        println!("  web-bff       http://{web_listen}/graphql  (GraphiQL in a browser)");
        bffs.push(tokio::spawn(async move {
            web_bff::serve(&web_config, listener, std::future::pending()).await
        }));
        let mobile_config = mobile_bff::MobileConfig {
            listen: mobile_listen,
            upstreams: sandbox.upstreams_config(),
            auth: sandbox.auth_config(),
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind(mobile_listen)
            .await
            .with_context(|| format!("cannot listen on {mobile_listen} for mobile-bff"))?;
        println!("  mobile-bff    http://{mobile_listen}/v2/dashboard  (OpenAPI: /openapi.json)");
        bffs.push(tokio::spawn(async move {
            mobile_bff::serve(&mobile_config, listener, std::future::pending()).await
        }));

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
        println!("  curl -s {}/__stats", sandbox.inventory.url);
    }
    println!();
    println!("Ctrl-C to stop.");
    server::shutdown_signal().await;
    for bff in bffs {
        bff.abort();
    }
    Ok(())
}
