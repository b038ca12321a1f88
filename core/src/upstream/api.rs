//! The bottom of the upstream call path: which services there are, how a call fails, and
//! one trait per service.
//!
//! BFF state holds `Arc<dyn CustomersApi>` and friends (through [`super::Upstreams`]), so
//! tests and alternative transports can stand in for the HTTP implementation. Every failure
//! is classified into an [`UpstreamError`], which maps onto the shared [`ErrorCode`].

use std::sync::Arc;

use async_trait::async_trait;
use foldhash::{HashMap, HashMapExt as _};

use crate::domain::{Customer, Order, OrderStatus, Page, ReadingsAck, ReadingsBatch, StockLevel};
use crate::error::ErrorCode;

/// Which upstream service a call went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// The customers service.
    Customers,
    /// The orders service.
    Orders,
    /// The inventory service.
    Inventory,
}

impl Service {
    /// Lower-case name used in errors, logs and `extensions.service`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customers => "customers",
            Self::Orders => "orders",
            Self::Inventory => "inventory",
        }
    }
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an upstream call did not produce a value.
#[derive(Clone, Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The entity does not exist (upstream 404).
    #[error("{service} service: not found")]
    NotFound {
        /// The service that answered.
        service: Service,
    },
    /// The upstream refused the request as invalid (4xx other than 404).
    #[error("{service} service rejected the request with status {status}")]
    Rejected {
        /// The service that answered.
        service: Service,
        /// Its HTTP status.
        status: u16,
    },
    /// Connection failed or the upstream answered 5xx.
    #[error("{service} service unavailable: {detail}")]
    Unavailable {
        /// The failing service.
        service: Service,
        /// What happened, for logs.
        detail: String,
    },
    /// No answer within the timeout.
    #[error("{service} service did not answer in time")]
    Timeout {
        /// The slow service.
        service: Service,
    },
    /// The upstream answered 2xx with a body that does not match its contract.
    #[error("{service} service sent a malformed response: {detail}")]
    Malformed {
        /// The misbehaving service.
        service: Service,
        /// The decoding error, for logs.
        detail: String,
    },
}

impl UpstreamError {
    /// The shared error code clients see.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::Rejected { .. } => ErrorCode::BadRequest,
            Self::Unavailable { .. } | Self::Malformed { .. } => ErrorCode::UpstreamUnavailable,
            Self::Timeout { .. } => ErrorCode::UpstreamTimeout,
        }
    }

    /// The service the error came from.
    pub fn service(&self) -> Service {
        match self {
            Self::NotFound { service }
            | Self::Rejected { service, .. }
            | Self::Unavailable { service, .. }
            | Self::Timeout { service }
            | Self::Malformed { service, .. } => *service,
        }
    }

    /// Logs the failure for operators, as every BFF does before answering: a plain not-found
    /// is an answer, not a failure, and is not logged.
    pub fn report(&self) {
        if !matches!(self, Self::NotFound { .. }) {
            tracing::warn!(error = %self, service = %self.service(), "upstream call failed");
        }
    }

    /// A message safe to show to clients: no internal addresses or upstream bodies.
    pub fn public_message(&self) -> String {
        let service = self.service();
        match self {
            Self::NotFound { .. } => "not found".to_owned(),
            Self::Rejected { .. } => format!("the {service} service rejected the request"),
            Self::Unavailable { .. } => format!("the {service} service is unavailable"),
            Self::Timeout { .. } => format!("the {service} service did not answer in time"),
            Self::Malformed { .. } => format!("the {service} service sent an invalid response"),
        }
    }
}

/// Result of an upstream call.
pub type UpstreamResult<T> = Result<T, UpstreamError>;

/// The customers service.
#[async_trait]
pub trait CustomersApi: Send + Sync {
    /// One customer; `NotFound` when it does not exist.
    async fn customer(&self, id: &str) -> UpstreamResult<Customer>;
    /// Many customers in as few calls as the upstream allows; unknown ids are omitted.
    async fn customers(&self, ids: &[String]) -> UpstreamResult<Vec<Customer>>;
    /// [`customers`](Self::customers) answered key by key ([`Keyed`]).
    async fn customers_keyed(&self, ids: &[String]) -> UpstreamResult<Keyed<Customer>> {
        Ok(keyed(ids, self.customers(ids).await?, |c| &c.id))
    }
}

/// One slot per key asked for, in the order asked, `None` for a key the upstream does not
/// know; each entity shared. A cache answers with the entries it keeps rather than copies
/// of them, and a caller that indexes by key needs no map of its own.
pub type Keyed<V> = Vec<Option<Arc<V>>>;

/// Lines `values` up with `keys` (the answer of an upstream that omits unknown keys).
fn keyed<V>(keys: &[String], values: Vec<V>, key_of: fn(&V) -> &str) -> Keyed<V> {
    let mut by_key: HashMap<&str, Arc<V>> = HashMap::with_capacity(values.len());
    let values: Vec<Arc<V>> = values.into_iter().map(Arc::new).collect();
    for value in &values {
        by_key.insert(key_of(value), Arc::clone(value));
    }
    keys.iter()
        .map(|key| by_key.get(key.as_str()).cloned())
        .collect()
}

/// Filter and page of an orders listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrdersQuery {
    /// Only this customer's orders; `None` lists every customer's.
    pub customer_id: Option<String>,
    /// Only orders in this state.
    pub status: Option<OrderStatus>,
    /// Page size (the upstream caps it at 100).
    pub limit: u32,
    /// Continue after this cursor (from a previous page's `next_cursor`).
    pub cursor: Option<String>,
}

/// The orders service.
#[async_trait]
pub trait OrdersApi: Send + Sync {
    /// One order; `NotFound` when it does not exist.
    async fn order(&self, id: &str) -> UpstreamResult<Order>;
    /// Many orders by id; unknown ids are omitted.
    async fn orders_by_ids(&self, ids: &[String]) -> UpstreamResult<Vec<Order>>;
    /// [`orders_by_ids`](Self::orders_by_ids) answered key by key ([`Keyed`]).
    async fn orders_keyed(&self, ids: &[String]) -> UpstreamResult<Keyed<Order>> {
        Ok(keyed(ids, self.orders_by_ids(ids).await?, |o| &o.id))
    }
    /// A page of orders, newest first.
    async fn list_orders(&self, query: &OrdersQuery) -> UpstreamResult<Page<Order>>;
}

/// The inventory service.
#[async_trait]
pub trait InventoryApi: Send + Sync {
    /// Stock of one SKU; `NotFound` when the SKU is unknown.
    async fn stock_level(&self, sku: &str) -> UpstreamResult<StockLevel>;
    /// Stock of many SKUs; unknown SKUs are omitted.
    async fn stock_levels(&self, skus: &[String]) -> UpstreamResult<Vec<StockLevel>>;
    /// [`stock_levels`](Self::stock_levels) answered key by key ([`Keyed`]).
    async fn stock_levels_keyed(&self, skus: &[String]) -> UpstreamResult<Keyed<StockLevel>> {
        Ok(keyed(skus, self.stock_levels(skus).await?, |s| &s.sku))
    }
    /// Applies observed stock counts. The service applies a batch at most once per
    /// `idempotency_key` and answers a repeat with the first answer, which is what makes
    /// retrying this write safe.
    async fn post_readings(
        &self,
        idempotency_key: &str,
        batch: &ReadingsBatch,
    ) -> UpstreamResult<ReadingsAck>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_lines_values_up_with_the_keys_asked_and_leaves_unknown_keys_empty() {
        let keys: Vec<String> = ["b", "missing", "a", "b"].map(str::to_owned).to_vec();
        // An upstream answers in its own order and omits what it does not know.
        let values = vec!["a".to_owned(), "b".to_owned()];
        let answer = keyed(&keys, values, |v| v);
        let slots: Vec<Option<&str>> = answer
            .iter()
            .map(|v| v.as_deref().map(String::as_str))
            .collect();
        assert_eq!(slots, [Some("b"), None, Some("a"), Some("b")]);
        assert!(
            Arc::ptr_eq(
                answer[0].as_ref().expect("b"),
                answer[3].as_ref().expect("b again")
            ),
            "a key asked twice shares one entity"
        );
    }
}
