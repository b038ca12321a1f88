//! API v2: the dashboard, a cursor-paged order list and order details, shaped for a phone
//! screen: thumbnails, preformatted money, nothing the screen does not show.
//!
//! Each handler checks scopes, makes its upstream calls concurrently under the request's
//! deadline, and degrades rather than fails: a part whose upstream is down is `null` and its
//! service is listed in `meta.degraded`. Orders of another customer answer 404 exactly like
//! unknown ones, so their existence does not leak.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchyard_core::ErrorCode;
use switchyard_core::auth::{Principal, Scope};
use switchyard_core::conditional::IfNoneMatch;
use switchyard_core::domain::{Customer, Money, Order, OrderStatus, Page, StockLevel};
use switchyard_core::upstream::{Freshness, OrdersQuery, Service, UpstreamError, UpstreamResult};
use time::format_description::well_known::Rfc3339;

use crate::AppState;
use crate::representation::{Meta, cacheable_json};
use switchyard_core::cursor::{CursorCodec, CursorError};
use switchyard_core::params::{bounded, parse_status};
use switchyard_core::problem::Problem;

/// The signed-in customer as the dashboard header shows them.
#[derive(Serialize)]
struct User<'a> {
    id: &'a str,
    name: &'a str,
    /// Thumbnail URL.
    avatar: &'a str,
}

/// One row of the dashboard's recent orders.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecentOrder<'a> {
    id: &'a str,
    status: OrderStatus,
    total: String,
    item_count: u64,
}

impl<'a> From<&'a Order> for RecentOrder<'a> {
    fn from(order: &'a Order) -> Self {
        Self {
            id: &order.id,
            status: order.status,
            total: order.total().formatted(),
            item_count: order.item_count(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dashboard<'a> {
    user: Option<User<'a>>,
    recent_orders: Option<Vec<RecentOrder<'a>>>,
}

/// `GET /v2/dashboard`: the customer and their latest orders, fetched concurrently.
pub(crate) async fn dashboard(
    State(state): State<AppState>,
    principal: Principal,
    if_none_match: IfNoneMatch,
) -> Result<Response, Problem> {
    let ((customer, orders), freshness) = fetch_dashboard(&state, &principal).await?;
    let mut failed = Vec::new();
    let mut first_error = None;
    let customer = match customer {
        Ok(customer) => Some(customer),
        Err(UpstreamError::NotFound { .. }) => {
            return Err(Problem::new(
                ErrorCode::NotFound,
                "the signed-in customer does not exist",
            ));
        }
        Err(error) => degrade(&mut failed, &mut first_error, error),
    };
    let orders = orders
        .map(Some)
        .unwrap_or_else(|error| degrade(&mut failed, &mut first_error, error));
    if let (None, None, Some(error)) = (&customer, &orders, first_error) {
        // Nothing at all to show: a clear error beats an empty screen.
        return Err(error);
    }
    let content = Dashboard {
        user: customer.as_ref().map(|c| User {
            id: &c.id,
            name: &c.name,
            avatar: &c.avatar_thumb_url,
        }),
        recent_orders: orders
            .as_ref()
            .map(|page| page.data.iter().map(RecentOrder::from).collect()),
    };
    Ok(cacheable_json(
        &if_none_match,
        &content,
        Some(&Meta::new(&failed, &freshness)),
    ))
}

/// The customer and their latest orders, fetched concurrently under the request deadline,
/// after checking the scopes both need (shared by v1 and v2).
pub(crate) async fn fetch_dashboard(
    state: &AppState,
    principal: &Principal,
) -> Result<
    (
        (UpstreamResult<Customer>, UpstreamResult<Page<Order>>),
        Freshness,
    ),
    Problem,
> {
    principal.require(Scope::CustomersRead)?;
    principal.require(Scope::OrdersRead)?;
    let query = OrdersQuery {
        customer_id: Some(principal.subject.clone()),
        status: None,
        limit: state.api.dashboard_orders,
        cursor: None,
    };
    let upstreams = &state.upstreams;
    Ok(state
        .within_budget(async {
            tokio::join!(
                upstreams.customers.customer(&principal.subject),
                upstreams.orders.list_orders(&query),
            )
        })
        .await)
}

/// Records a failed part of a degradable response; the part becomes `None`.
fn degrade<T>(
    failed: &mut Vec<Service>,
    first_error: &mut Option<Problem>,
    error: UpstreamError,
) -> Option<T> {
    failed.push(error.service());
    first_error.get_or_insert_with(|| Problem::upstream(&error));
    None
}

/// Query of `GET /v2/orders`; values are parsed by hand for precise messages.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrdersParams {
    limit: Option<String>,
    cursor: Option<String>,
    status: Option<String>,
}

/// One row of the order list.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderRow<'a> {
    id: &'a str,
    status: OrderStatus,
    total: String,
    item_count: u64,
    created_at: String,
}

#[derive(Serialize)]
struct Pagination {
    /// Pass as `cursor` to get the next page; `null` on the last page.
    cursor: Option<String>,
    #[serde(rename = "hasMore")]
    has_more: bool,
    limit: u32,
}

#[derive(Serialize)]
struct OrderList<'a> {
    data: Vec<OrderRow<'a>>,
    pagination: Pagination,
}

/// Cursors of `/v2/orders`, bound to the status filter. The customer filter always comes
/// from the token, so a forged cursor can only move within one's own orders.
const ORDER_CURSORS: CursorCodec = CursorCodec::new(b"switchyard-mobile-orders-cursor-v1\0");

/// `GET /v2/orders?limit&cursor&status`: the customer's orders, newest first.
pub(crate) async fn orders(
    State(state): State<AppState>,
    principal: Principal,
    if_none_match: IfNoneMatch,
    params: Result<Query<OrdersParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    principal.require(Scope::OrdersRead)?;
    let Query(params) =
        params.map_err(|rejection| Problem::new(ErrorCode::BadUserInput, rejection.body_text()))?;
    let limit = bounded(
        "limit",
        params.limit.as_deref(),
        state.api.default_page_size,
        1,
        state.api.max_page_size,
    )?;
    let status = parse_status(params.status.as_deref())?;
    // An empty cursor is the first page, as a client that templated a `null` one meant.
    let upstream_cursor = params
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| ORDER_CURSORS.decode(c, status.map_or("", OrderStatus::as_str)))
        .transpose()
        .map_err(|error: CursorError| Problem::new(ErrorCode::BadRequest, error.to_string()))?;
    let query = OrdersQuery {
        customer_id: Some(principal.subject.clone()),
        status,
        limit,
        cursor: upstream_cursor,
    };
    let (page, _freshness) = state
        .within_budget(state.upstreams.orders.list_orders(&query))
        .await;
    let page = page?;
    let content = OrderList {
        data: page
            .data
            .iter()
            .map(|order| OrderRow {
                id: &order.id,
                status: order.status,
                total: order.total().formatted(),
                item_count: order.item_count(),
                created_at: rfc3339(order.created_at),
            })
            .collect(),
        pagination: Pagination {
            has_more: page.next_cursor.is_some(),
            cursor: page
                .next_cursor
                .as_deref()
                .map(|next| ORDER_CURSORS.encode(status.map_or("", OrderStatus::as_str), next)),
            limit,
        },
    };
    Ok(cacheable_json(&if_none_match, &content, None))
}

/// How much of an item is left, as the app shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StockBand {
    /// At least the configured low-stock threshold.
    High,
    /// In stock, below the threshold.
    Low,
    /// None available.
    Out,
}

impl StockBand {
    /// The band of `available` units with the low-stock threshold `low_below`.
    pub fn of(available: i64, low_below: i64) -> Self {
        if available <= 0 {
            Self::Out
        } else if available < low_below {
            Self::Low
        } else {
            Self::High
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DetailItem<'a> {
    sku: &'a str,
    /// Product name, from the inventory service (`null` when it is unavailable).
    name: Option<&'a str>,
    quantity: u32,
    unit_price: String,
    in_stock: Option<bool>,
    stock_level: Option<StockBand>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrderDetail<'a> {
    id: &'a str,
    status: OrderStatus,
    total: String,
    item_count: u64,
    created_at: String,
    updated_at: String,
    items: Vec<DetailItem<'a>>,
}

/// `GET /v2/orders/{id}`: one order with the stock of each item (one batched inventory
/// call). Stock needs `data:inventory:read`; without it, or with inventory down, the stock
/// fields are `null`.
pub(crate) async fn order(
    State(state): State<AppState>,
    principal: Principal,
    if_none_match: IfNoneMatch,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    principal.require(Scope::OrdersRead)?;
    let not_found = || Problem::new(ErrorCode::NotFound, "order not found");
    let upstreams = &state.upstreams;
    let sees_stock = principal.has(Scope::InventoryRead);
    let (result, freshness) = state
        .within_budget(async {
            let order = upstreams.orders.order(&id).await?;
            // Authorise before touching inventory: nothing is fetched for a hidden order.
            if !principal.may_access_customer(&order.customer_id) {
                return Ok((order, None, false));
            }
            if !sees_stock {
                return Ok((order, None, true));
            }
            let mut skus: Vec<String> = order.items.iter().map(|i| i.sku.clone()).collect();
            skus.sort();
            skus.dedup();
            let stock = upstreams.inventory.stock_levels(&skus).await;
            Ok::<_, UpstreamError>((order, Some(stock), true))
        })
        .await;
    let (order, stock, visible) = match result {
        Ok(found) => found,
        Err(UpstreamError::NotFound { .. }) => return Err(not_found()),
        Err(error) => return Err(error.into()),
    };
    if !visible {
        return Err(not_found());
    }
    let mut failed = Vec::new();
    let stock: Option<HashMap<&str, &StockLevel>> = match &stock {
        Some(Ok(levels)) => Some(levels.iter().map(|s| (s.sku.as_str(), s)).collect()),
        Some(Err(error)) => {
            tracing::warn!(%error, "stock of an order's items unavailable");
            failed.push(error.service());
            None
        }
        None => None,
    };
    let low_below = state.api.low_stock_below;
    let items = order
        .items
        .iter()
        .map(|item| {
            let level = stock.as_ref().map(|s| s.get(item.sku.as_str()).copied());
            // An SKU the inventory service does not know has no stock.
            let available = level.map(|l| l.map_or(0, |l| l.available));
            DetailItem {
                sku: &item.sku,
                name: level.flatten().map(|l| l.name.as_str()),
                quantity: item.quantity,
                unit_price: Money::new(item.unit_price_cents, &order.currency).formatted(),
                in_stock: available.map(|a| a > 0),
                stock_level: available.map(|a| StockBand::of(a, low_below)),
            }
        })
        .collect();
    let content = OrderDetail {
        id: &order.id,
        status: order.status,
        total: order.total().formatted(),
        item_count: order.item_count(),
        created_at: rfc3339(order.created_at),
        updated_at: rfc3339(order.updated_at),
        items,
    };
    Ok(cacheable_json(
        &if_none_match,
        &content,
        Some(&Meta::new(&failed, &freshness)),
    ))
}

/// A timestamp as RFC 3339.
pub(crate) fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}
