//! The Switchyard sandbox: simulated upstream services, a dev token issuer, and a launcher
//! that runs them together with the BFFs in one process.
//!
//! Tests start it on port 0 with [`Sandbox::start`]; `switchyard-sandbox` (no arguments)
//! starts it on the default ports together with every BFF.

pub mod admin;
pub mod data;
pub mod devices;
pub mod events;
pub mod issuer;
pub mod kafka;
pub mod nats;
pub mod redis;
pub mod servers;
pub mod services;
pub mod stock;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use switchyard_core::bff::{App, Bff, BffConfig as _};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use crate::admin::{Admin, Faults, Stats};
pub use crate::data::Dataset;
pub use crate::issuer::{Issuer, IssuerStats, TokenRequest};

/// Where to run the simulated services and with which faults.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Token issuer (JWKS) address.
    pub issuer: SocketAddr,
    /// Customers service address.
    pub customers: SocketAddr,
    /// Orders service address.
    pub orders: SocketAddr,
    /// Inventory service address.
    pub inventory: SocketAddr,
    /// Dataset seed.
    pub seed: u64,
    /// Faults each service starts with.
    pub faults: ServiceFaults,
    /// Random orders advanced per second (0: only `POST /orders/{id}/advance` does).
    pub order_activity: f64,
    /// NATS server to publish every order event to as well (JetStream stream `ORDERS`).
    pub nats_url: Option<String>,
    /// Kafka bootstrap brokers to publish every order event to as well (topic
    /// `orders.events`).
    pub kafka_brokers: Option<String>,
}

/// Initial faults per simulated service.
#[derive(Clone, Debug, Default)]
pub struct ServiceFaults {
    /// Faults of the customers service.
    pub customers: Faults,
    /// Faults of the orders service.
    pub orders: Faults,
    /// Faults of the inventory service.
    pub inventory: Faults,
}

fn addr(text: &str) -> SocketAddr {
    text.parse()
        .expect("default sandbox addresses are valid socket addresses")
}

impl Default for SandboxOptions {
    /// The DESIGN.md ports on loopback.
    fn default() -> Self {
        use switchyard_core::config as c;
        Self {
            issuer: addr(c::SANDBOX_ISSUER_ADDR),
            customers: addr(c::SANDBOX_CUSTOMERS_ADDR),
            orders: addr(c::SANDBOX_ORDERS_ADDR),
            inventory: addr(c::SANDBOX_INVENTORY_ADDR),
            seed: data::DEFAULT_SEED,
            faults: ServiceFaults::default(),
            order_activity: 0.0,
            nats_url: None,
            kafka_brokers: None,
        }
    }
}

impl SandboxOptions {
    /// Every service on an ephemeral loopback port (for tests).
    pub fn ephemeral() -> Self {
        let any = addr("127.0.0.1:0");
        Self {
            issuer: any,
            customers: any,
            orders: any,
            inventory: any,
            ..Self::default()
        }
    }
}

/// A running simulated service.
#[derive(Clone)]
pub struct RunningService {
    /// Base URL, e.g. `http://127.0.0.1:7101`.
    pub url: String,
    /// Its counters and fault switches.
    pub admin: Admin,
}

/// The running sandbox; its servers stop when it is dropped.
pub struct Sandbox {
    /// Token issuer base URL.
    pub issuer_url: String,
    /// The issuer, for minting tokens in-process.
    pub issuer: Arc<Issuer>,
    /// The customers service.
    pub customers: RunningService,
    /// The orders service.
    pub orders: RunningService,
    /// The inventory service.
    pub inventory: RunningService,
    /// The dataset served.
    pub data: Arc<Dataset>,
    /// Current stock levels, moved by device readings.
    pub stock: Arc<stock::StockBook>,
    /// Order statuses as they change, and their events.
    pub activity: Arc<events::OrderActivity>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn spawn(addr: SocketAddr, router: Router) -> std::io::Result<(String, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, %bound, "sandbox server stopped");
        }
    });
    Ok((format!("http://{bound}"), task))
}

impl Sandbox {
    /// Generates the dataset and starts the issuer and the three services.
    pub async fn start(options: &SandboxOptions) -> std::io::Result<Self> {
        let data = Arc::new(Dataset::generate(options.seed));
        let stock = Arc::new(stock::StockBook::new(Arc::clone(&data)));
        let issuer = Arc::new(Issuer::dev());
        let mut tasks = Vec::new();

        let (issuer_url, task) = spawn(options.issuer, Arc::clone(&issuer).router()).await?;
        tasks.push(task);

        let mut start_service = async |addr, faults, routes: Router| {
            let admin = Admin::with_faults(faults);
            let (url, task) = spawn(addr, admin.wrap(routes)).await?;
            tasks.push(task);
            Ok::<_, std::io::Error>(RunningService { url, admin })
        };
        let customers = start_service(
            options.customers,
            options.faults.customers,
            services::customers(Arc::clone(&data)),
        )
        .await?;
        let activity = events::OrderActivity::new(Arc::clone(&data));
        let orders = start_service(
            options.orders,
            options.faults.orders,
            services::orders(Arc::clone(&data), Arc::clone(&activity)),
        )
        .await?;
        let inventory = start_service(
            options.inventory,
            options.faults.inventory,
            services::inventory(Arc::clone(&stock)),
        )
        .await?;
        if let Some(url) = &options.nats_url {
            let (forward, events) = tokio::sync::mpsc::unbounded_channel();
            activity.forward_to(forward);
            tasks.push(tokio::spawn(nats::publish(url.clone(), events)));
        }
        if let Some(brokers) = &options.kafka_brokers {
            let (forward, events) = tokio::sync::mpsc::unbounded_channel();
            activity.forward_to(forward);
            tasks.push(tokio::spawn(kafka::publish(brokers.clone(), events)));
        }
        tasks.push(tokio::spawn(
            Arc::clone(&activity).run(options.order_activity),
        ));
        Ok(Self {
            issuer_url,
            issuer,
            customers,
            orders,
            inventory,
            data,
            stock,
            activity,
            tasks,
        })
    }

    /// The JWKS URL BFFs should verify tokens against.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.issuer_url)
    }

    /// Upstream config pointing at this sandbox's services.
    pub fn upstreams_config(&self) -> switchyard_core::upstream::UpstreamsConfig {
        let mut config = switchyard_core::upstream::UpstreamsConfig::default();
        config.customers.url.clone_from(&self.customers.url);
        config.orders.url.clone_from(&self.orders.url);
        config.inventory.url.clone_from(&self.inventory.url);
        config
    }

    /// Auth config trusting this sandbox's issuer.
    pub fn auth_config(&self) -> switchyard_core::auth::AuthConfig {
        switchyard_core::auth::AuthConfig {
            jwks_url: Some(self.jwks_url()),
            ..Default::default()
        }
    }

    /// Starts BFF `B` in a task on `listen` (port 0: any free port), with `config`'s
    /// upstreams and JWKS pointed at this sandbox (its other settings are kept). Returns the
    /// address it serves on; it runs until the process ends.
    pub async fn start_bff<B: Bff>(
        &self,
        mut config: B::Config,
        listen: SocketAddr,
    ) -> anyhow::Result<SocketAddr> {
        use anyhow::Context as _;
        *config.upstreams_mut() = self.upstreams_config();
        config.auth_mut().jwks_url = Some(self.jwks_url());
        let app = App::<B>::new(&config)?;
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen} for {}", B::NAME))?;
        let addr = listener.local_addr()?;
        tokio::spawn(app.serve(listener, std::future::pending()));
        Ok(addr)
    }
}
