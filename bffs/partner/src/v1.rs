//! Partner API v1: stock levels by SKU, and orders across customers, with their wire types.
//!
//! Every parameter is checked before any upstream call, so a bad request costs the
//! upstreams nothing. Money is integer minor units with its currency and timestamps are
//! RFC 3339: partners compute with the values, they do not display them.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use switchyard_core::ErrorCode;
use switchyard_core::auth::{Principal, Scope, mask_email, mask_phone};
use switchyard_core::cursor::{CursorCodec, CursorError};
use switchyard_core::domain::{Customer, Order, OrderStatus, StockLevel, Tier};
use switchyard_core::params::{bounded, parse_status, parse_timestamp};
use switchyard_core::problem::Problem;
use switchyard_core::upstream::{MAX_IDS_PER_CALL, OrdersQuery, UpstreamError, within_budget};
use time::OffsetDateTime;

use crate::AppState;

/// Cursors of `/partner/v1/orders`, bound to the status and `updated_since` filters.
const ORDER_CURSORS: CursorCodec = CursorCodec::new(b"switchyard-partner-orders-cursor-v1\0");

/// Longest SKU accepted (the upstream contract's limit for ids).
const MAX_SKU_LEN: usize = 64;

fn bad_query(rejection: QueryRejection) -> Problem {
    Problem::new(ErrorCode::BadUserInput, rejection.body_text())
}

/// Query of `GET /partner/v1/stock`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StockParams {
    skus: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StockRow<'a> {
    sku: &'a str,
    name: &'a str,
    available: i64,
    reserved: i64,
    warehouse_id: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl<'a> From<&'a StockLevel> for StockRow<'a> {
    fn from(level: &'a StockLevel) -> Self {
        Self {
            sku: &level.sku,
            name: &level.name,
            available: level.available,
            reserved: level.reserved,
            warehouse_id: &level.warehouse_id,
            updated_at: level.updated_at,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StockList<'a> {
    data: Vec<StockRow<'a>>,
    /// Requested SKUs the inventory does not know, in request order.
    unknown_skus: Vec<&'a str>,
}

/// `skus`: 1 to 100 comma-separated SKUs of printable characters; repeats are dropped.
fn parse_skus(value: Option<&str>) -> Result<Vec<String>, Problem> {
    let bad = |message: String| Problem::new(ErrorCode::BadUserInput, message);
    let value = value.ok_or_else(|| bad("skus is required: a comma-separated list".into()))?;
    let mut seen = HashSet::new();
    let mut skus = Vec::new();
    for sku in value.split(',') {
        if sku.is_empty() || sku.len() > MAX_SKU_LEN || !sku.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(format!(
                "every SKU in skus must be 1 to {MAX_SKU_LEN} printable characters"
            )));
        }
        if seen.insert(sku) {
            skus.push(sku.to_owned());
        }
        if skus.len() > MAX_IDS_PER_CALL {
            return Err(bad(format!("skus lists at most {MAX_IDS_PER_CALL} SKUs")));
        }
    }
    Ok(skus)
}

/// `GET /partner/v1/stock?skus=a,b`: current stock of up to 100 SKUs, one upstream call.
pub(crate) async fn stock(
    State(state): State<AppState>,
    principal: Principal,
    params: Result<Query<StockParams>, QueryRejection>,
) -> Result<Response, Problem> {
    principal.require(Scope::InventoryRead)?;
    let Query(params) = params.map_err(bad_query)?;
    let skus = parse_skus(params.skus.as_deref())?;
    let budget = Duration::from_millis(state.api.deadline_ms);
    let (levels, _freshness) =
        within_budget(budget, state.upstreams.inventory.stock_levels(&skus)).await;
    let levels = levels?;
    let known: HashSet<&str> = levels.iter().map(|level| level.sku.as_str()).collect();
    let body = StockList {
        data: levels.iter().map(StockRow::from).collect(),
        unknown_skus: skus
            .iter()
            .map(String::as_str)
            .filter(|sku| !known.contains(sku))
            .collect(),
    };
    Ok(Json(body).into_response())
}

/// Query of `GET /partner/v1/orders`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrdersParams {
    status: Option<String>,
    updated_since: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemRow<'a> {
    sku: &'a str,
    quantity: u32,
    unit_price_cents: i64,
}

/// A customer as a partner sees it: never its name, and e-mail and phone always masked.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CustomerRow<'a> {
    id: &'a str,
    tier: Tier,
    email: String,
    phone: String,
}

impl<'a> From<&'a Customer> for CustomerRow<'a> {
    fn from(customer: &'a Customer) -> Self {
        Self {
            id: &customer.id,
            tier: customer.tier,
            email: mask_email(&customer.email),
            phone: mask_phone(&customer.phone),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderRow<'a> {
    id: &'a str,
    customer_id: &'a str,
    status: OrderStatus,
    total_cents: i64,
    currency: &'a str,
    items: Vec<ItemRow<'a>>,
    /// `null` without `data:customers:read`, or when the customers service failed.
    customer: Option<CustomerRow<'a>>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Pagination {
    cursor: Option<String>,
    has_more: bool,
    limit: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderList<'a> {
    data: Vec<OrderRow<'a>>,
    pagination: Pagination,
    /// Services whose data is missing from this page (`["customers"]`).
    degraded: Vec<&'static str>,
}

/// The filter a cursor is bound to: `status|updated_since as unix seconds`.
fn filter_of(status: Option<OrderStatus>, since: Option<OffsetDateTime>) -> String {
    let status = status.map_or("", OrderStatus::as_str);
    match since {
        Some(since) => format!("{status}|{}", since.unix_timestamp()),
        None => format!("{status}|"),
    }
}

/// One page of orders and what the customers service said about their customers.
type PageWithCustomers = (
    Vec<Order>,
    Option<String>,
    Option<Result<Vec<Customer>, UpstreamError>>,
);

/// `GET /partner/v1/orders?status&updated_since&cursor&limit`: orders across customers,
/// newest first, for partners holding `data:orders:read` and `data:admin`.
///
/// `updated_since` filters each upstream page, so a page may hold fewer than `limit`
/// orders (even none) while `hasMore` is true: follow the cursor until it is `null`.
pub(crate) async fn orders(
    State(state): State<AppState>,
    principal: Principal,
    params: Result<Query<OrdersParams>, QueryRejection>,
) -> Result<Response, Problem> {
    principal.require(Scope::OrdersRead)?;
    principal.require(Scope::Admin)?;
    let Query(params) = params.map_err(bad_query)?;
    let api = &state.api;
    let limit = bounded(
        "limit",
        params.limit.as_deref(),
        api.default_page_size,
        1,
        api.max_page_size,
    )?;
    let status = parse_status(params.status.as_deref())?;
    let since = parse_timestamp("updated_since", params.updated_since.as_deref())?;
    let filter = filter_of(status, since);
    let cursor = params
        .cursor
        .as_deref()
        .map(|cursor| ORDER_CURSORS.decode(cursor, &filter))
        .transpose()
        .map_err(|error: CursorError| Problem::new(ErrorCode::BadRequest, error.to_string()))?;
    let query = OrdersQuery {
        customer_id: None,
        status,
        limit,
        cursor,
    };
    let with_customers = principal.has(Scope::CustomersRead);
    let upstreams = &state.upstreams;
    let (page, _freshness) = within_budget(Duration::from_millis(api.deadline_ms), async {
        let page = upstreams.orders.list_orders(&query).await?;
        let orders: Vec<Order> = page
            .data
            .into_iter()
            .filter(|order| since.is_none_or(|since| order.updated_at >= since))
            .collect();
        let customers = if with_customers && !orders.is_empty() {
            let mut ids: Vec<String> = orders.iter().map(|o| o.customer_id.clone()).collect();
            ids.sort_unstable();
            ids.dedup();
            Some(upstreams.customers.customers(&ids).await)
        } else {
            None
        };
        Ok::<PageWithCustomers, UpstreamError>((orders, page.next_cursor, customers))
    })
    .await;
    let (orders, next_cursor, customers) = page?;
    let mut degraded = Vec::new();
    let customers: HashMap<&str, &Customer> = match &customers {
        Some(Ok(customers)) => customers.iter().map(|c| (c.id.as_str(), c)).collect(),
        Some(Err(error)) => {
            error.report();
            degraded.push(error.service().as_str());
            HashMap::new()
        }
        None => HashMap::new(),
    };
    let body = OrderList {
        data: orders
            .iter()
            .map(|order| OrderRow {
                id: &order.id,
                customer_id: &order.customer_id,
                status: order.status,
                total_cents: order.total_cents,
                currency: &order.currency,
                items: order
                    .items
                    .iter()
                    .map(|item| ItemRow {
                        sku: &item.sku,
                        quantity: item.quantity,
                        unit_price_cents: item.unit_price_cents,
                    })
                    .collect(),
                customer: customers
                    .get(order.customer_id.as_str())
                    .map(|c| CustomerRow::from(*c)),
                created_at: order.created_at,
                updated_at: order.updated_at,
            })
            .collect(),
        pagination: Pagination {
            has_more: next_cursor.is_some(),
            cursor: next_cursor.map(|next| ORDER_CURSORS.encode(&filter, &next)),
            limit,
        },
        degraded,
    };
    Ok(Json(body).into_response())
}
