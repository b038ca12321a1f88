//! `Subscription.orderUpdated`: live status changes of one order, or of every order the
//! consumer may see, from core's [`OrderFeed`]. `order` resolves through the request's
//! loaders (forgotten between events, so each event shows the order as it is then).
//!
//! Ends and resets are GraphQL errors on the stream: a cursor past retention gets one
//! `GONE` error ("refetch, then follow") and the stream goes on; a client that fell behind
//! gets `OVERLOADED` naming the cursor to resume `after`, and its stream completes; an
//! expired token gets `UNAUTHENTICATED`. The transports (`ws.rs`, `sse.rs`) close the
//! connection itself on expiry and shutdown.

use async_graphql::{Context, ID, Object, Result, Subscription};
use futures_util::Stream;
use switchyard_core::ErrorCode;
use switchyard_core::auth::Scope;
use switchyard_core::streaming::{
    Cursor, FeedEvent, Filter, OrderFeed, Refusal, StreamEnd, StreamItem,
};

use crate::errors::{graphql_error, upstream_error};
use crate::schema::{
    DateTime, OrderNode, OrderStatusValue, RequestData, forbidden, not_found, require,
};

/// The root of every subscription.
pub struct SubscriptionRoot;

/// The error a refused stream gets.
fn refused(refusal: &Refusal) -> async_graphql::Error {
    let code = match refusal {
        Refusal::TooManyForConsumer(_) => ErrorCode::RateLimited,
        Refusal::AtCapacity(_) => ErrorCode::Overloaded,
        Refusal::SourceUnavailable => ErrorCode::UpstreamUnavailable,
    };
    graphql_error(code, refusal.to_string())
}

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Status changes of order `orderId` (one of one's own, or any with `data:admin`), or
    /// without it of every order one may see. `after` is the `id` of the last event
    /// received: every later one is sent first, in order, then live ones.
    async fn order_updated(
        &self,
        ctx: &Context<'_>,
        order_id: Option<ID>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<OrderEventNode>> + use<>> {
        let data = require(ctx, Scope::OrdersRead)?;
        let feed = ctx.data::<OrderFeed>()?.clone();
        let after = match after.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                Cursor::decode(text)
                    .map_err(|e| graphql_error(ErrorCode::BadUserInput, e.to_string()))?,
            ),
        };
        if let Some(id) = &order_id {
            // An order one may not see is an error now, not a silent stream.
            match data.loaders.orders.load(id).await {
                Ok(Some(order)) if data.principal.may_access_customer(&order.customer_id) => {}
                Ok(Some(_)) => return Err(forbidden("order")),
                Ok(None) => return Err(not_found("order")),
                Err(e) => return Err(upstream_error(&e)),
            }
        }
        let filter = Filter::for_principal(&data.principal, order_id.map(|id| id.0));
        let mut subscription = feed
            .subscribe(&data.principal, filter, after)
            .await
            .map_err(|refusal| refused(&refusal))?;
        subscription.expire_at(data.principal.expires_at());
        let loaders = std::sync::Arc::clone(&data.loaders);
        Ok(futures_util::stream::unfold(
            Some(subscription),
            move |subscription| {
                let loaders = std::sync::Arc::clone(&loaders);
                async move {
                    let mut subscription = subscription?;
                    loop {
                        let item = match subscription.next().await {
                            StreamItem::Event(event) => {
                                // Each event is resolved with what the upstreams say now.
                                loaders.forget_answers();
                                Ok(OrderEventNode(event))
                            }
                            StreamItem::Reset => Err(graphql_error(
                                ErrorCode::Gone,
                                "events after this cursor are no longer retained; refetch, then follow",
                            )),
                            StreamItem::Heartbeat => continue,
                            StreamItem::End(StreamEnd::FellBehind { resume_after }) => {
                                let message = match resume_after {
                                    Some(cursor) => format!(
                                        "fell behind the event stream; subscribe again with after: \"{cursor}\""
                                    ),
                                    None => {
                                        "fell behind the event stream; subscribe again".to_owned()
                                    }
                                };
                                return Some((
                                    Err(graphql_error(ErrorCode::Overloaded, message)),
                                    None,
                                ));
                            }
                            StreamItem::End(StreamEnd::TokenExpired) => {
                                let error =
                                    graphql_error(ErrorCode::Unauthenticated, "token expired");
                                return Some((Err(error), None));
                            }
                            StreamItem::End(StreamEnd::ShuttingDown) => return None,
                        };
                        return Some((item, Some(subscription)));
                    }
                }
            },
        ))
    }
}

/// One status change of an order.
pub struct OrderEventNode(std::sync::Arc<FeedEvent>);

#[Object(name = "OrderEvent")]
impl OrderEventNode {
    /// The cursor to resume after this event (`orderUpdated(after:)`).
    async fn id(&self) -> String {
        self.0.cursor.clone()
    }

    /// The order as it is now.
    async fn order(&self, ctx: &Context<'_>) -> Result<OrderNode> {
        let data = ctx.data::<RequestData>()?;
        match data.loaders.orders.load(&self.0.event.order_id).await {
            Ok(Some(order)) => Ok(OrderNode::from_arc(order)),
            Ok(None) => Err(not_found("order")),
            Err(e) => Err(upstream_error(&e)),
        }
    }

    /// The status it changed to.
    async fn status(&self) -> OrderStatusValue {
        self.0.event.status.into()
    }

    /// The status it changed from.
    async fn previous_status(&self) -> Option<OrderStatusValue> {
        Some(self.0.event.previous_status.into())
    }

    /// When it changed.
    async fn occurred_at(&self) -> DateTime {
        DateTime::from(self.0.event.occurred_at)
    }
}
