//! The per-request loaders of the web BFF and the upstream batch calls behind them.

use std::sync::Arc;

use async_trait::async_trait;
use switchyard_core::domain::{Customer, Order, StockLevel};
use switchyard_core::upstream::{
    CustomersApi, InventoryApi, Keyed, OrdersApi, UpstreamError, Upstreams,
};

use crate::loader::{BatchFetch, BatchLoader};

/// Batch-fetches customers by id.
pub struct CustomerFetch(Arc<dyn CustomersApi>);
/// Batch-fetches orders by id.
pub struct OrderFetch(Arc<dyn OrdersApi>);
/// Batch-fetches stock levels by SKU.
pub struct StockFetch(Arc<dyn InventoryApi>);

#[async_trait]
impl BatchFetch for CustomerFetch {
    type Value = Customer;
    async fn fetch(&self, keys: &[String]) -> Result<Keyed<Customer>, UpstreamError> {
        self.0.customers_keyed(keys).await
    }
}

#[async_trait]
impl BatchFetch for OrderFetch {
    type Value = Order;
    async fn fetch(&self, keys: &[String]) -> Result<Keyed<Order>, UpstreamError> {
        self.0.orders_keyed(keys).await
    }
}

#[async_trait]
impl BatchFetch for StockFetch {
    type Value = StockLevel;
    async fn fetch(&self, keys: &[String]) -> Result<Keyed<StockLevel>, UpstreamError> {
        self.0.stock_levels_keyed(keys).await
    }
}

/// The loaders of one GraphQL request.
pub struct Loaders {
    /// Customers by id.
    pub customers: BatchLoader<CustomerFetch>,
    /// Orders by id.
    pub orders: BatchLoader<OrderFetch>,
    /// Stock levels by SKU.
    pub stock: BatchLoader<StockFetch>,
}

impl Loaders {
    /// Fresh loaders (empty caches) over the process-wide upstream clients.
    pub fn new(upstreams: &Upstreams) -> Self {
        Self {
            customers: BatchLoader::new(CustomerFetch(Arc::clone(&upstreams.customers))),
            orders: BatchLoader::new(OrderFetch(Arc::clone(&upstreams.orders))),
            stock: BatchLoader::new(StockFetch(Arc::clone(&upstreams.inventory))),
        }
    }

    /// Forgets every answer cached so far (between the events of a subscription).
    pub fn forget_answers(&self) {
        self.customers.forget_answers();
        self.orders.forget_answers();
        self.stock.forget_answers();
    }
}
