//! The simulated customers, orders and inventory services (schema/upstreams.openapi.yaml).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use switchyard_core::domain::{OrderStatus, ReadingsBatch};
use switchyard_core::upstream::IDEMPOTENCY_KEY_HEADER;

use crate::data::Dataset;
use crate::events::OrderActivity;
use crate::stock::{Delivery, StockBook};

/// Most ids a batch lookup accepts, and the largest page.
pub const MAX_BATCH: usize = 100;
/// Page size when `limit` is not given.
const DEFAULT_LIMIT: usize = 20;

#[derive(Serialize)]
struct DataEnvelope<T> {
    data: Vec<T>,
}

#[derive(Serialize)]
struct PageEnvelope<T> {
    data: Vec<T>,
    next_cursor: Option<String>,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not found")
}

/// Splits `a,b,c`, rejecting empty lists and lists over [`MAX_BATCH`].
fn parse_ids(raw: &str, param: &str) -> Result<Vec<String>, Response> {
    let ids: Vec<String> = raw
        .split(',')
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, format!("{param} is empty")));
    }
    if ids.len() > MAX_BATCH {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("at most {MAX_BATCH} {param} per call"),
        ));
    }
    Ok(ids)
}

/// Answers a batch lookup `?{param}=a,b,c` with the entities `lookup` knows.
fn batch_response<'a, T: Serialize + 'a>(
    raw: Option<String>,
    param: &str,
    lookup: impl Fn(&str) -> Option<&'a T>,
) -> Response {
    let Some(raw) = raw else {
        return error(StatusCode::BAD_REQUEST, format!("{param} is required"));
    };
    match parse_ids(&raw, param) {
        Ok(ids) => Json(DataEnvelope {
            data: ids.iter().filter_map(|id| lookup(id)).collect(),
        })
        .into_response(),
        Err(response) => response,
    }
}

/// Routes of the customers service.
pub fn customers(data: Arc<Dataset>) -> Router {
    #[derive(Deserialize)]
    struct BatchQuery {
        ids: Option<String>,
    }

    async fn one(State(data): State<Arc<Dataset>>, Path(id): Path<String>) -> Response {
        match data.customer(&id) {
            Some(customer) => Json(customer).into_response(),
            None => not_found(),
        }
    }

    async fn batch(State(data): State<Arc<Dataset>>, Query(query): Query<BatchQuery>) -> Response {
        batch_response(query.ids, "ids", |id| data.customer(id))
    }

    Router::new()
        .route("/customers", get(batch))
        .route("/customers/{id}", get(one))
        .with_state(data)
}

/// Routes of the orders service: orders as they are now (`activity` moves statuses), and
/// their events.
pub fn orders(data: Arc<Dataset>, activity: Arc<OrderActivity>) -> Router {
    type OrdersState = (Arc<Dataset>, Arc<OrderActivity>);
    #[derive(Deserialize)]
    struct ListQuery {
        ids: Option<String>,
        customer_id: Option<String>,
        status: Option<String>,
        limit: Option<usize>,
        cursor: Option<String>,
    }

    async fn one(State((data, activity)): State<OrdersState>, Path(id): Path<String>) -> Response {
        match data.order(&id) {
            Some(order) => Json(activity.current(order)).into_response(),
            None => not_found(),
        }
    }

    async fn list(
        State((data, activity)): State<OrdersState>,
        Query(query): Query<ListQuery>,
    ) -> Response {
        if let Some(raw) = query.ids {
            if query.customer_id.is_some() || query.cursor.is_some() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ids cannot be combined with a listing",
                );
            }
            return match parse_ids(&raw, "ids") {
                Ok(ids) => Json(DataEnvelope {
                    data: ids
                        .iter()
                        .filter_map(|id| data.order(id))
                        .map(|order| activity.current(order))
                        .collect::<Vec<_>>(),
                })
                .into_response(),
                Err(response) => response,
            };
        }
        let status = match query.status.as_deref() {
            None => None,
            Some(raw) => match OrderStatus::ALL.into_iter().find(|s| s.as_str() == raw) {
                Some(status) => Some(status),
                None => return error(StatusCode::BAD_REQUEST, format!("unknown status {raw:?}")),
            },
        };
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_BATCH {
            return error(
                StatusCode::BAD_REQUEST,
                format!("limit must be within 1..={MAX_BATCH}"),
            );
        }
        // Positions in the newest-first listing; the cursor is the last order id seen.
        let after = match query.cursor.as_deref() {
            None => None,
            Some(cursor) => match data.order_position(cursor) {
                Some(position) => Some(position),
                None => return error(StatusCode::BAD_REQUEST, "invalid cursor"),
            },
        };
        let candidates: Box<dyn Iterator<Item = usize> + '_> = match &query.customer_id {
            Some(customer_id) => Box::new(data.orders_of(customer_id).iter().copied()),
            None => Box::new(0..data.orders.len()),
        };
        let mut page: Vec<_> = candidates
            .filter(|&position| after.is_none_or(|after| position > after))
            .map(|position| &data.orders[position])
            .filter(|order| status.is_none_or(|status| activity.status_of(order) == status))
            .take(limit + 1)
            .map(|order| activity.current(order))
            .collect();
        let next_cursor = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|order| order.id.clone())
        } else {
            None
        };
        Json(PageEnvelope {
            data: page,
            next_cursor,
        })
        .into_response()
    }

    Router::new()
        .route("/orders", get(list))
        .route("/orders/{id}", get(one))
        .with_state((data, Arc::clone(&activity)))
        .merge(crate::events::routes(activity))
}

/// Routes of the inventory service: stock lookups from `book`, and device readings.
pub fn inventory(book: Arc<StockBook>) -> Router {
    #[derive(Deserialize)]
    struct BatchQuery {
        skus: Option<String>,
    }

    async fn one(State(book): State<Arc<StockBook>>, Path(sku): Path<String>) -> Response {
        match book.level(&sku) {
            Some(level) => Json(level).into_response(),
            None => not_found(),
        }
    }

    async fn batch(
        State(book): State<Arc<StockBook>>,
        Query(query): Query<BatchQuery>,
    ) -> Response {
        let Some(raw) = query.skus else {
            return error(StatusCode::BAD_REQUEST, "skus is required");
        };
        match parse_ids(&raw, "skus") {
            Ok(skus) => Json(DataEnvelope {
                data: book.levels(&skus),
            })
            .into_response(),
            Err(response) => response,
        }
    }

    /// `POST /inventory/readings`: applied once per `Idempotency-Key`; a repeat with the
    /// same body gets the first answer (`Idempotent-Replayed: true`), a repeat with another
    /// body is a 422.
    async fn readings(
        State(book): State<Arc<StockBook>>,
        headers: axum::http::HeaderMap,
        body: Result<Json<ReadingsBatch>, axum::extract::rejection::JsonRejection>,
    ) -> Response {
        let Some(key) = headers
            .get(IDEMPOTENCY_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|k| !k.is_empty() && k.len() <= 255)
        else {
            return error(
                StatusCode::BAD_REQUEST,
                "Idempotency-Key header is required",
            );
        };
        let batch = match body {
            Ok(Json(batch)) => batch,
            Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
        };
        if batch.device_id.is_empty() || batch.warehouse_id.is_empty() {
            return error(
                StatusCode::BAD_REQUEST,
                "device_id and warehouse_id must not be empty",
            );
        }
        if batch.readings.is_empty() || batch.readings.len() > MAX_BATCH {
            return error(
                StatusCode::BAD_REQUEST,
                format!("readings must hold 1 to {MAX_BATCH} entries"),
            );
        }
        match book.deliver(key, &batch) {
            Delivery::Applied(ack) => Json(ack).into_response(),
            Delivery::Replayed(ack) => {
                ([("idempotent-replayed", "true")], Json(ack)).into_response()
            }
            Delivery::KeyReused => error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Idempotency-Key was already used for a different body",
            ),
        }
    }

    Router::new()
        .route("/inventory", get(batch))
        .route("/inventory/readings", axum::routing::post(readings))
        .route("/inventory/{sku}", get(one))
        .with_state(book)
}
