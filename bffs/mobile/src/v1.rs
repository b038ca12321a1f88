//! API v1, kept for app versions that have not updated: the legacy page-based shapes.
//! Core's `versioning::retire` wraps every v1 route (see `lib.rs`): until `v1.sunset_on`
//! each response, errors included, carries `Deprecation`, `Sunset` and a `Link` to v2;
//! from then on v1 answers 410 Gone.
//!
//! v1 predates partial responses: when an upstream part fails, the whole request fails
//! (cached data is still served when an upstream is down).

use axum::extract::{Query, State};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchyard_core::ErrorCode;
use switchyard_core::auth::{Principal, Scope};
use switchyard_core::conditional::IfNoneMatch;
use switchyard_core::domain::{Order, OrderStatus};
use switchyard_core::params::bounded;
use switchyard_core::problem::Problem;
use switchyard_core::upstream::{OrdersQuery, UpstreamError};

use crate::AppState;
use crate::representation::cacheable_json;
use crate::v2::{fetch_dashboard, rfc3339};

/// Deepest v1 order reachable, so that walking the upstream's cursor pages costs at most
/// ten calls. Deeper lists need v2's cursors.
const MAX_V1_DEPTH: u32 = 1_000;

/// The last v1 page: the one that reaches [`MAX_V1_DEPTH`] at the largest page size. One
/// bound whatever `per_page` is, so that the OpenAPI document can state it.
pub fn last_page(max_page_size: u32) -> u32 {
    (MAX_V1_DEPTH / max_page_size.max(1)).max(1)
}
/// Largest page the orders service serves.
const UPSTREAM_PAGE: u32 = 100;

#[derive(Serialize)]
struct LegacyCustomer<'a> {
    id: &'a str,
    name: &'a str,
    avatar_url: &'a str,
}

#[derive(Serialize)]
struct LegacyOrder<'a> {
    id: &'a str,
    status: OrderStatus,
    total_cents: i64,
    currency: &'a str,
    item_count: u64,
    created_at: String,
}

impl<'a> From<&'a Order> for LegacyOrder<'a> {
    fn from(order: &'a Order) -> Self {
        Self {
            id: &order.id,
            status: order.status,
            total_cents: order.total_cents,
            currency: &order.currency,
            item_count: order.item_count(),
            created_at: rfc3339(order.created_at),
        }
    }
}

#[derive(Serialize)]
struct LegacyDashboard<'a> {
    customer: LegacyCustomer<'a>,
    orders: Vec<LegacyOrder<'a>>,
}

/// `GET /v1/dashboard`: the customer and their latest orders, all or nothing.
pub(crate) async fn dashboard(
    State(state): State<AppState>,
    principal: Principal,
    if_none_match: IfNoneMatch,
) -> Result<Response, Problem> {
    let ((customer, orders), _freshness) = fetch_dashboard(&state, &principal).await?;
    let customer = customer?;
    let orders = orders?;
    let content = LegacyDashboard {
        customer: LegacyCustomer {
            id: &customer.id,
            name: &customer.name,
            avatar_url: &customer.avatar_url,
        },
        orders: orders.data.iter().map(LegacyOrder::from).collect(),
    };
    Ok(cacheable_json(&if_none_match, &content, None))
}

/// Query of `GET /v1/orders`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LegacyOrdersParams {
    page: Option<String>,
    per_page: Option<String>,
}

#[derive(Serialize)]
struct LegacyOrderPage<'a> {
    orders: Vec<LegacyOrder<'a>>,
    page: u32,
    per_page: u32,
    has_next: bool,
}

/// `GET /v1/orders?page&per_page`: numbered pages over the upstream's cursor pages.
pub(crate) async fn orders(
    State(state): State<AppState>,
    principal: Principal,
    if_none_match: IfNoneMatch,
    params: Result<Query<LegacyOrdersParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    principal.require(Scope::OrdersRead)?;
    let Query(params) =
        params.map_err(|rejection| Problem::new(ErrorCode::BadUserInput, rejection.body_text()))?;
    let per_page = bounded(
        "per_page",
        params.per_page.as_deref(),
        state.api.default_page_size,
        1,
        state.api.max_page_size,
    )?;
    let page = bounded(
        "page",
        params.page.as_deref(),
        1,
        1,
        last_page(state.api.max_page_size),
    )?;
    let offset = ((page - 1) * per_page) as usize;
    let wanted = offset + per_page as usize;
    let subject = principal.subject.clone();
    let (walked, _freshness) = state
        .within_budget(async {
            let mut collected: Vec<Order> = Vec::with_capacity(wanted);
            let mut cursor = None;
            loop {
                let remaining = (wanted - collected.len()) as u32;
                let query = OrdersQuery {
                    customer_id: Some(subject.clone()),
                    status: None,
                    limit: remaining.min(UPSTREAM_PAGE),
                    cursor: cursor.take(),
                };
                let page = state.upstreams.orders.list_orders(&query).await?;
                let progressed = !page.data.is_empty();
                collected.extend(page.data);
                match page.next_cursor {
                    // An empty page with a cursor would loop forever; stop instead.
                    Some(next) if collected.len() < wanted && progressed => cursor = Some(next),
                    next => return Ok((collected, next.is_some())),
                }
            }
        })
        .await;
    let (collected, has_next) = walked.map_err(|e: UpstreamError| Problem::from(e))?;
    let content = LegacyOrderPage {
        orders: collected
            .iter()
            .skip(offset)
            .map(LegacyOrder::from)
            .collect(),
        page,
        per_page,
        has_next,
    };
    Ok(cacheable_json(&if_none_match, &content, None))
}
