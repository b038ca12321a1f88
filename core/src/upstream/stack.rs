//! The constructor of the upstream call path: per service, an entity cache in front of an
//! HTTP client whose every attempt runs inside that service's guard.
//!
//! ```text
//! Cached* (fresh hits, single-flight, stale-if-error)
//!   └─ Http* (pooled reqwest client, one per service)
//!        └─ Guard::run (deadline → breaker → bulkhead → attempt → retry)
//! ```

use std::sync::Arc;

use super::api::{CustomersApi, InventoryApi, OrdersApi};
use super::cache::{CachedCustomers, CachedInventory, CachedOrders};
use super::config::UpstreamsConfig;
use super::guard::{BreakerState, Guard};
use super::http::{HttpCustomers, HttpInventory, HttpOrders};
use crate::config::ConfigError;

/// The three upstream clients a BFF works with, shared for the life of the process.
#[derive(Clone)]
pub struct Upstreams {
    /// Customers service client.
    pub customers: Arc<dyn CustomersApi>,
    /// Orders service client.
    pub orders: Arc<dyn OrdersApi>,
    /// Inventory service client.
    pub inventory: Arc<dyn InventoryApi>,
    guards: Guards,
}

/// The guard of each service, read by health checks (and metrics) without going through
/// the service traits.
#[derive(Clone)]
pub struct Guards {
    /// The customers service's guard.
    pub customers: Arc<Guard>,
    /// The orders service's guard.
    pub orders: Arc<Guard>,
    /// The inventory service's guard.
    pub inventory: Arc<Guard>,
}

/// Breaker state of each upstream, as `/readyz` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UpstreamsHealth {
    /// The customers service's breaker.
    pub customers: BreakerState,
    /// The orders service's breaker.
    pub orders: BreakerState,
    /// The inventory service's breaker.
    pub inventory: BreakerState,
}

impl Guards {
    /// The breaker state of each service (no network call).
    pub fn health(&self) -> UpstreamsHealth {
        UpstreamsHealth {
            customers: self.customers.breaker_state(),
            orders: self.orders.breaker_state(),
            inventory: self.inventory.breaker_state(),
        }
    }
}

impl Upstreams {
    /// HTTP clients for the configured services, each with its own connection pool and
    /// guard, behind entity caches.
    pub fn from_config(config: &UpstreamsConfig) -> Result<Self, ConfigError> {
        let customers = HttpCustomers::new(&config.customers)?;
        let orders = HttpOrders::new(&config.orders)?;
        let inventory = HttpInventory::new(&config.inventory)?;
        let guards = Guards {
            customers: Arc::clone(customers.guard()),
            orders: Arc::clone(orders.guard()),
            inventory: Arc::clone(inventory.guard()),
        };
        Ok(Self {
            customers: Arc::new(CachedCustomers::new(
                Arc::new(customers),
                &config.customers.cache,
            )),
            orders: Arc::new(CachedOrders::new(Arc::new(orders), &config.orders.cache)),
            inventory: Arc::new(CachedInventory::new(
                Arc::new(inventory),
                &config.inventory.cache,
            )),
            guards,
        })
    }

    /// The guards in front of the services.
    pub fn guards(&self) -> &Guards {
        &self.guards
    }

    /// The breaker state of each service (no network call).
    pub fn health(&self) -> UpstreamsHealth {
        self.guards.health()
    }
}
