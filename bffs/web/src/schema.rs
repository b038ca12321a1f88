//! The GraphQL schema of the web BFF (checked in as `schema/web.graphql`).
//!
//! Resolvers are thin: they check scopes and ownership, then ask the per-request loaders
//! (for entities by id) or the upstream clients (for listings). Every list of orders is a
//! Relay-style connection whose cost, for the complexity limit, is its page size times the
//! cost of one node.
//!
//! Nullable fields return `Option<Result<T>>`: async-graphql turns an error *inside* the
//! option into `null` plus an entry in `errors`, as the GraphQL spec requires, whereas an
//! error from a `Result<Option<T>>` resolver would drop the field from its parent object.

use std::sync::Arc;

use async_graphql::{
    ComplexObject, Context, EmptyMutation, Enum, ID, InputValueError, InputValueResult, Object,
    Result, Scalar, ScalarType, Schema, SimpleObject, Value,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use switchyard_core::ErrorCode;
use switchyard_core::auth::{Principal, Scope};
use switchyard_core::domain::{self, Customer, Order, StockLevel};
use switchyard_core::upstream::{OrdersQuery, Upstreams};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::errors::{auth_error, graphql_error, upstream_error};
use crate::fetchers::Loaders;

/// The executable schema type.
pub type WebSchema = Schema<QueryRoot, EmptyMutation, crate::subscription::SubscriptionRoot>;

/// Page size of a connection when `first` is omitted (part of the schema contract).
pub const DEFAULT_PAGE_SIZE: i32 = 20;

/// Schema-wide settings resolvers read (stored as schema data).
#[derive(Clone, Copy, Debug)]
pub struct PageLimits {
    /// Largest accepted `first`.
    pub max_page_size: u32,
}

/// Per-request data: who is asking and the request's loaders.
pub struct RequestData {
    /// The authenticated consumer.
    pub principal: Principal,
    /// Loaders with caches scoped to this request (a subscription's forgets them between
    /// events).
    pub loaders: Arc<Loaders>,
}

fn request<'a>(ctx: &Context<'a>) -> Result<&'a RequestData> {
    ctx.data::<RequestData>()
}

pub(crate) fn require<'a>(ctx: &Context<'a>, scope: Scope) -> Result<&'a RequestData> {
    let data = request(ctx)?;
    data.principal.require(scope).map_err(|e| auth_error(&e))?;
    Ok(data)
}

pub(crate) fn forbidden(what: &str) -> async_graphql::Error {
    graphql_error(
        ErrorCode::Forbidden,
        format!("not allowed to see this {what}"),
    )
}

pub(crate) fn not_found(what: &str) -> async_graphql::Error {
    graphql_error(ErrorCode::NotFound, format!("{what} not found"))
}

/// An RFC 3339 timestamp.
#[derive(Clone, Copy, Debug)]
pub struct DateTime(OffsetDateTime);

impl From<OffsetDateTime> for DateTime {
    fn from(at: OffsetDateTime) -> Self {
        Self(at)
    }
}

/// An RFC 3339 date-time, e.g. `2026-01-02T03:04:05Z`.
#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => {
                OffsetDateTime::parse(text, &Rfc3339)
                    .map(DateTime)
                    .map_err(|e| {
                        InputValueError::custom(format!("expected an RFC 3339 date-time: {e}"))
                    })
            }
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format(&Rfc3339).unwrap_or_default())
    }
}

/// Lifecycle state of an order.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "OrderStatus")]
pub enum OrderStatusValue {
    /// Placed, not paid.
    Pending,
    /// Paid, not shipped.
    Paid,
    /// Handed to the carrier.
    Shipped,
    /// Arrived.
    Delivered,
    /// Cancelled before delivery.
    Cancelled,
}

impl From<domain::OrderStatus> for OrderStatusValue {
    fn from(status: domain::OrderStatus) -> Self {
        use domain::OrderStatus as S;
        match status {
            S::Pending => Self::Pending,
            S::Paid => Self::Paid,
            S::Shipped => Self::Shipped,
            S::Delivered => Self::Delivered,
            S::Cancelled => Self::Cancelled,
        }
    }
}

impl From<OrderStatusValue> for domain::OrderStatus {
    fn from(status: OrderStatusValue) -> Self {
        use OrderStatusValue as S;
        match status {
            S::Pending => Self::Pending,
            S::Paid => Self::Paid,
            S::Shipped => Self::Shipped,
            S::Delivered => Self::Delivered,
            S::Cancelled => Self::Cancelled,
        }
    }
}

/// Commercial tier of a customer.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "Tier")]
pub enum TierValue {
    /// Free plan.
    Free,
    /// Paid plan.
    Pro,
    /// Contracted plan.
    Enterprise,
}

impl From<domain::Tier> for TierValue {
    fn from(tier: domain::Tier) -> Self {
        match tier {
            domain::Tier::Free => Self::Free,
            domain::Tier::Pro => Self::Pro,
            domain::Tier::Enterprise => Self::Enterprise,
        }
    }
}

/// An amount of money.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "Money")]
pub struct MoneyValue {
    /// Amount in minor units (cents) of `currency`; never a float.
    pub minor_units: i64,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Display form, e.g. `€1,234.50`.
    pub formatted: String,
}

impl From<domain::Money> for MoneyValue {
    fn from(money: domain::Money) -> Self {
        Self {
            formatted: money.formatted(),
            minor_units: money.minor_units,
            currency: money.currency,
        }
    }
}

/// Encodes an order id as an opaque connection cursor.
pub fn encode_cursor(order_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("order:{order_id}"))
}

/// Decodes a cursor made by [`encode_cursor`]; anything else is `BAD_REQUEST`.
pub fn decode_cursor(cursor: &str) -> Result<String> {
    let invalid = || graphql_error(ErrorCode::BadRequest, "invalid cursor");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    match text.strip_prefix("order:") {
        Some(id) if !id.is_empty() && id.len() <= 128 => Ok(id.to_owned()),
        _ => Err(invalid()),
    }
}

/// Validates `first` against the configured maximum: too large is an error, not a clamp.
fn page_size(ctx: &Context<'_>, first: i32) -> Result<u32> {
    let max = ctx.data::<PageLimits>()?.max_page_size;
    match u32::try_from(first) {
        Ok(size) if (1..=max).contains(&size) => Ok(size),
        _ => Err(graphql_error(
            ErrorCode::BadUserInput,
            format!("first must be between 1 and {max}, got {first}"),
        )),
    }
}

/// Fetches one page of orders and wraps it as a connection.
async fn order_connection(
    ctx: &Context<'_>,
    customer_id: Option<String>,
    status: Option<OrderStatusValue>,
    first: i32,
    after: Option<String>,
) -> Result<OrderConnection> {
    let limit = page_size(ctx, first)?;
    let cursor = after.as_deref().map(decode_cursor).transpose()?;
    let upstreams = ctx.data::<Upstreams>()?;
    let query = OrdersQuery {
        customer_id,
        status: status.map(Into::into),
        limit,
        cursor,
    };
    let page = upstreams
        .orders
        .list_orders(&query)
        .await
        .map_err(|e| upstream_error(&e))?;
    let has_next_page = page.next_cursor.is_some();
    let nodes: Vec<OrderNode> = page
        .data
        .into_iter()
        .map(|o| OrderNode(Arc::new(o)))
        .collect();
    let end_cursor = match (page.next_cursor, nodes.last()) {
        (Some(next), _) => Some(encode_cursor(&next)),
        (None, Some(last)) => Some(encode_cursor(&last.0.id)),
        (None, None) => None,
    };
    Ok(OrderConnection {
        nodes,
        page_info: PageInfo {
            has_next_page,
            end_cursor,
        },
    })
}

/// The root of every query.
pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// The signed-in customer (the token's subject).
    async fn viewer(&self, ctx: &Context<'_>) -> Result<CustomerNode> {
        let data = require(ctx, Scope::CustomersRead)?;
        Ok(CustomerNode::by_id(data.principal.subject.clone()))
    }

    /// A customer by id: one's own, or any with `data:admin`.
    async fn customer(&self, ctx: &Context<'_>, id: ID) -> Option<Result<CustomerNode>> {
        let result = async {
            let data = require(ctx, Scope::CustomersRead)?;
            if !data.principal.may_access_customer(&id) {
                return Err(forbidden("customer"));
            }
            match data.loaders.customers.load(&id).await {
                Ok(Some(customer)) => Ok(CustomerNode::loaded(customer)),
                Ok(None) => Err(not_found("customer")),
                Err(e) => Err(upstream_error(&e)),
            }
        };
        Some(result.await)
    }

    /// An order by id: one of one's own, or any with `data:admin`.
    async fn order(&self, ctx: &Context<'_>, id: ID) -> Option<Result<OrderNode>> {
        let result = async {
            let data = require(ctx, Scope::OrdersRead)?;
            match data.loaders.orders.load(&id).await {
                Ok(Some(order)) if data.principal.may_access_customer(&order.customer_id) => {
                    Ok(OrderNode(order))
                }
                Ok(Some(_)) => Err(forbidden("order")),
                Ok(None) => Err(not_found("order")),
                Err(e) => Err(upstream_error(&e)),
            }
        };
        Some(result.await)
    }

    /// Orders, newest first. Without `customerId`, one's own (or everyone's with `data:admin`).
    #[graphql(complexity = "1 + child_complexity * first.max(0) as usize")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        customer_id: Option<ID>,
        status: Option<OrderStatusValue>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> Result<OrderConnection> {
        let data = require(ctx, Scope::OrdersRead)?;
        let principal = &data.principal;
        let customer_id = match customer_id {
            Some(id) if principal.may_access_customer(&id) => Some(id.to_string()),
            Some(_) => return Err(forbidden("customer's orders")),
            None if principal.has(Scope::Admin) => None,
            None => Some(principal.subject.clone()),
        };
        order_connection(ctx, customer_id, status, first, after).await
    }

    /// Stock levels of up to 100 SKUs; `null` for unknown SKUs.
    #[graphql(complexity = "1 + child_complexity * skus.len()")]
    async fn stock(
        &self,
        ctx: &Context<'_>,
        skus: Vec<ID>,
    ) -> Option<Result<Vec<Option<StockLevelNode>>>> {
        let result = async {
            let data = require(ctx, Scope::InventoryRead)?;
            let max = ctx.data::<PageLimits>()?.max_page_size as usize;
            if skus.len() > max {
                return Err(graphql_error(
                    ErrorCode::BadUserInput,
                    format!("at most {max} skus per query, got {}", skus.len()),
                ));
            }
            let loads = skus.iter().map(|sku| data.loaders.stock.load(sku));
            futures_util::future::join_all(loads)
                .await
                .into_iter()
                .map(|result| match result {
                    Ok(level) => Ok(level.map(StockLevelNode)),
                    Err(e) => Err(upstream_error(&e)),
                })
                .collect()
        };
        Some(result.await)
    }
}

/// A customer, known by id and loaded when a field other than `id` or `orders` needs it.
///
/// `viewer` is such a node: `viewer { name orders { … } }` fetches the customer and lists
/// their orders concurrently, in one upstream round trip, instead of waiting for the
/// customer before asking for the orders. A signed-in customer the customers service does
/// not know is therefore reported on the first field that needs the record (`viewer.name`),
/// while `viewer.id` is the token's subject as is.
pub struct CustomerNode {
    id: String,
    record: tokio::sync::OnceCell<Arc<Customer>>,
}

impl CustomerNode {
    /// A node for an already loaded customer.
    fn loaded(customer: Arc<Customer>) -> Self {
        Self {
            id: customer.id.clone(),
            record: tokio::sync::OnceCell::new_with(Some(customer)),
        }
    }

    /// A node for the customer `id`, loaded on first use.
    fn by_id(id: String) -> Self {
        Self {
            id,
            record: tokio::sync::OnceCell::new(),
        }
    }

    /// The customer record, through the request's loader (one fetch per request).
    async fn record(&self, ctx: &Context<'_>) -> Result<&Customer> {
        let record = self
            .record
            .get_or_try_init(|| async {
                match request(ctx)?.loaders.customers.load(&self.id).await {
                    Ok(Some(customer)) => Ok(customer),
                    Ok(None) => Err(not_found("customer")),
                    Err(e) => Err(upstream_error(&e)),
                }
            })
            .await?;
        Ok(record)
    }
}

#[Object(name = "Customer")]
impl CustomerNode {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }

    async fn name(&self, ctx: &Context<'_>) -> Result<&str> {
        Ok(&self.record(ctx).await?.name)
    }

    /// E-mail address; masked (`j***@example.com`) without `data:customers:pii`.
    async fn email(&self, ctx: &Context<'_>) -> Result<String> {
        let customer = self.record(ctx).await?;
        Ok(request(ctx)?.principal.visible_email(customer).into_owned())
    }

    /// Phone number; all but the last two digits masked without `data:customers:pii`.
    async fn phone(&self, ctx: &Context<'_>) -> Result<String> {
        let customer = self.record(ctx).await?;
        Ok(request(ctx)?.principal.visible_phone(customer).into_owned())
    }

    async fn tier(&self, ctx: &Context<'_>) -> Result<TierValue> {
        Ok(self.record(ctx).await?.tier.into())
    }

    async fn avatar_url(&self, ctx: &Context<'_>) -> Result<&str> {
        Ok(&self.record(ctx).await?.avatar_url)
    }

    async fn avatar_thumb_url(&self, ctx: &Context<'_>) -> Result<&str> {
        Ok(&self.record(ctx).await?.avatar_thumb_url)
    }

    async fn created_at(&self, ctx: &Context<'_>) -> Result<DateTime> {
        Ok(DateTime(self.record(ctx).await?.created_at))
    }

    /// This customer's orders, newest first.
    #[graphql(complexity = "1 + child_complexity * first.max(0) as usize")]
    async fn orders(
        &self,
        ctx: &Context<'_>,
        status: Option<OrderStatusValue>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> Result<OrderConnection> {
        require(ctx, Scope::OrdersRead)?;
        order_connection(ctx, Some(self.id.clone()), status, first, after).await
    }
}

/// An order.
pub struct OrderNode(Arc<Order>);

impl OrderNode {
    /// The node of a loaded order.
    pub(crate) fn from_arc(order: Arc<Order>) -> Self {
        Self(order)
    }
}

#[Object(name = "Order")]
impl OrderNode {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn status(&self) -> OrderStatusValue {
        self.0.status.into()
    }

    /// Sum of the items.
    async fn total(&self) -> MoneyValue {
        self.0.total().into()
    }

    /// Units across all items.
    async fn item_count(&self) -> u64 {
        self.0.item_count()
    }

    async fn created_at(&self) -> DateTime {
        DateTime(self.0.created_at)
    }

    async fn updated_at(&self) -> DateTime {
        DateTime(self.0.updated_at)
    }

    async fn items(&self) -> Vec<OrderItemNode> {
        self.0
            .items
            .iter()
            .map(|item| OrderItemNode {
                item: item.clone(),
                currency: self.0.currency.clone(),
            })
            .collect()
    }

    /// The customer who placed the order.
    async fn customer(&self, ctx: &Context<'_>) -> Option<Result<CustomerNode>> {
        let result = async {
            let data = require(ctx, Scope::CustomersRead)?;
            match data.loaders.customers.load(&self.0.customer_id).await {
                Ok(customer) => Ok(customer.map(CustomerNode::loaded)),
                Err(e) => Err(upstream_error(&e)),
            }
        };
        result.await.transpose()
    }
}

/// One line of an order.
pub struct OrderItemNode {
    item: domain::OrderItem,
    currency: String,
}

#[Object(name = "OrderItem")]
impl OrderItemNode {
    async fn sku(&self) -> ID {
        ID(self.item.sku.clone())
    }

    async fn quantity(&self) -> u32 {
        self.item.quantity
    }

    /// Price of one unit.
    async fn unit_price(&self) -> MoneyValue {
        domain::Money::new(self.item.unit_price_cents, &self.currency).into()
    }

    /// Current stock of the SKU; `null` (with an error) when inventory cannot be reached.
    async fn stock(&self, ctx: &Context<'_>) -> Option<Result<StockLevelNode>> {
        let result = async {
            let data = require(ctx, Scope::InventoryRead)?;
            match data.loaders.stock.load(&self.item.sku).await {
                Ok(level) => Ok(level.map(StockLevelNode)),
                Err(e) => Err(upstream_error(&e)),
            }
        };
        result.await.transpose()
    }
}

/// Stock of one SKU.
pub struct StockLevelNode(Arc<StockLevel>);

#[Object(name = "StockLevel")]
impl StockLevelNode {
    async fn sku(&self) -> ID {
        ID(self.0.sku.clone())
    }

    /// Product name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Units that can be sold now.
    async fn available(&self) -> i64 {
        self.0.available
    }

    /// Units held for unshipped orders.
    async fn reserved(&self) -> i64 {
        self.0.reserved
    }

    async fn warehouse_id(&self) -> ID {
        ID(self.0.warehouse_id.clone())
    }

    async fn updated_at(&self) -> DateTime {
        DateTime(self.0.updated_at)
    }
}

/// A page of orders.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct OrderConnection {
    /// The orders of this page, without cursors.
    nodes: Vec<OrderNode>,
    /// Where this page ends.
    page_info: PageInfo,
}

#[ComplexObject]
impl OrderConnection {
    /// The orders of this page, each with its cursor.
    async fn edges(&self) -> Vec<OrderEdge> {
        self.nodes
            .iter()
            .map(|node| OrderEdge {
                cursor: encode_cursor(&node.0.id),
                node: OrderNode(Arc::clone(&node.0)),
            })
            .collect()
    }
}

/// An order and its cursor.
#[derive(SimpleObject)]
pub struct OrderEdge {
    /// Pass as `after` to continue after this order.
    cursor: String,
    /// The order.
    node: OrderNode,
}

/// Relay page information.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// Whether another page follows.
    has_next_page: bool,
    /// Cursor of the last order of this page; pass as `after` for the next page.
    end_cursor: Option<String>,
}
