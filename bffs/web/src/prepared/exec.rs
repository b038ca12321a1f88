//! Running a plan: fetches in the order async-graphql would make them, then the response
//! written straight into bytes.
//!
//! Each object with something to wait for (an entity to load, a listing to call) is one
//! future that joins its children in field order and fails on the first non-null child
//! that fails, as async-graphql's containers do; scalar fields are written without a
//! future, a map or a `Value`. Loads go through the request's batch loaders, so the same
//! calls are batched the same way, and every upstream call runs under the request's
//! deadline, guards and caches.
//!
//! Errors follow the GraphQL rules async-graphql applies: a failing nullable field is
//! `null` plus an error; a failing non-null field fails its parent, up to the nearest
//! nullable field (or `data: null`).

use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::{Name, PathSegment, Pos, ServerError};
use futures_util::future::join_all;
use switchyard_core::ErrorCode;
use switchyard_core::auth::{Principal, Scope};
use switchyard_core::domain::{self, Customer, Order, StockLevel};
use switchyard_core::upstream::{OrdersQuery, Upstreams};
use time::format_description::well_known::Rfc3339;

use super::plan::{
    Condition, ConnectionArgs, ConnectionField, CustomerField, EdgeField, ItemField, MoneyField,
    OrderField, PageInfoField, Planned, RootField, Selection, StockField,
};
use super::vars::Variables;
use crate::errors::{auth_error, graphql_error, upstream_error};
use crate::fetchers::Loaders;
use crate::loader::LoadResult;
use crate::schema::{decode_cursor, encode_cursor, forbidden, not_found};

/// Where a field is in the response, as a linked list up to the root (no allocation
/// unless an error needs it).
#[derive(Clone, Copy)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    segment: Segment<'a>,
}

#[derive(Clone, Copy)]
enum Segment<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

impl<'a> Path<'a> {
    const ROOT: Path<'static> = Path {
        parent: None,
        segment: Segment::Root,
    };

    fn key(&'a self, key: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Segment::Key(key),
        }
    }

    fn index(&'a self, index: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            segment: Segment::Index(index),
        }
    }

    fn segments(&self) -> Vec<PathSegment> {
        let mut segments = Vec::new();
        let mut node = Some(self);
        while let Some(path) = node {
            match path.segment {
                Segment::Root => {}
                Segment::Key(key) => segments.push(PathSegment::Field(key.to_owned())),
                Segment::Index(index) => segments.push(PathSegment::Index(index)),
            }
            node = path.parent;
        }
        segments.reverse();
        segments
    }
}

/// What one request's execution needs.
pub(crate) struct Exec<'a> {
    pub(crate) principal: &'a Principal,
    pub(crate) loaders: &'a Loaders,
    pub(crate) upstreams: &'a Upstreams,
    pub(crate) max_page_size: u32,
    pub(crate) variables: &'a Variables,
    errors: Mutex<Vec<ServerError>>,
}

/// A resolver's result: the value, or the error it failed with.
type Outcome<T> = Result<T, async_graphql::Error>;

impl<'a> Exec<'a> {
    pub(crate) fn new(
        principal: &'a Principal,
        loaders: &'a Loaders,
        upstreams: &'a Upstreams,
        max_page_size: u32,
        variables: &'a Variables,
    ) -> Self {
        Self {
            principal,
            loaders,
            upstreams,
            max_page_size,
            variables,
            errors: Mutex::new(Vec::new()),
        }
    }

    /// Records `error` as the error of the field at `path` (written at `pos`).
    fn fail(&self, error: &async_graphql::Error, pos: Pos, path: &Path<'_>) {
        let mut error = error.clone().into_server_error(pos);
        error.path = path.segments();
        self.errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(error);
    }

    fn included<F>(&self, field: &Planned<F>) -> bool {
        field.conditions.iter().all(|condition| match condition {
            Condition::Skip(arg) => !self.variables.boolean(arg),
            Condition::Include(arg) => self.variables.boolean(arg),
        })
    }

    /// The fields of `selection` this request includes.
    fn collect<'s, F>(
        &'s self,
        selection: &'s Selection<F>,
    ) -> impl Iterator<Item = &'s Planned<F>> + 's {
        selection.iter().filter(|f| self.included(f))
    }

    fn require(&self, scope: Scope) -> Outcome<()> {
        self.principal.require(scope).map_err(|e| auth_error(&e))
    }

    /// Runs the root selection: appends the response's `data` to `out` (`null` when it
    /// failed) and returns its errors.
    pub(crate) async fn run(
        &self,
        root: &Selection<RootField>,
        out: &mut Vec<u8>,
    ) -> Vec<ServerError> {
        let fields: Vec<_> = self.collect(root).collect();
        let fetched = join_all(fields.iter().map(|field| self.fetch_root(&field.field))).await;
        let start = out.len();
        let written = write_object(out, fields.iter().zip(&fetched), |out, (field, fetched)| {
            write_key(out, &field.key);
            self.write_root(out, field, fetched)
        });
        if !written {
            out.truncate(start);
            out.extend_from_slice(b"null");
        }
        std::mem::take(&mut *self.errors.lock().unwrap_or_else(PoisonError::into_inner))
    }

    async fn fetch_root(&self, field: &RootField) -> RootFetched {
        match field {
            RootField::Typename => RootFetched::Typename,
            RootField::Viewer(selection) => {
                RootFetched::Customer(match self.require(Scope::CustomersRead) {
                    Ok(()) => {
                        let node = CustomerNode::by_id(&self.principal.subject);
                        Ok(self.fetch_customer(node, selection).await)
                    }
                    Err(error) => Err(error),
                })
            }
            RootField::Customer(id, selection) => {
                let id = self.variables.string(id);
                let loaded = async {
                    self.require(Scope::CustomersRead)?;
                    if !self.principal.may_access_customer(&id) {
                        return Err(forbidden("customer"));
                    }
                    match self.loaders.customers.load(&id).await {
                        Ok(Some(customer)) => Ok(customer),
                        Ok(None) => Err(not_found("customer")),
                        Err(e) => Err(upstream_error(&e)),
                    }
                };
                RootFetched::Customer(match loaded.await {
                    Ok(customer) => Ok(self
                        .fetch_customer(CustomerNode::loaded(customer), selection)
                        .await),
                    Err(error) => Err(error),
                })
            }
            RootField::Order(id, selection) => {
                let id = self.variables.string(id);
                let loaded = async {
                    self.require(Scope::OrdersRead)?;
                    match self.loaders.orders.load(&id).await {
                        Ok(Some(order))
                            if self.principal.may_access_customer(&order.customer_id) =>
                        {
                            Ok(order)
                        }
                        Ok(Some(_)) => Err(forbidden("order")),
                        Ok(None) => Err(not_found("order")),
                        Err(e) => Err(upstream_error(&e)),
                    }
                };
                RootFetched::Order(match loaded.await {
                    Ok(order) => Ok(self.fetch_order(order, selection).await),
                    Err(error) => Err(error),
                })
            }
            RootField::Orders(args, selection) => {
                let scope = || {
                    self.require(Scope::OrdersRead)?;
                    let customer_id = args
                        .customer_id
                        .as_ref()
                        .and_then(|a| self.variables.optional_string(a));
                    Ok(match customer_id {
                        Some(id) if self.principal.may_access_customer(&id) => Some(id),
                        Some(_) => return Err(forbidden("customer's orders")),
                        None if self.principal.has(Scope::Admin) => None,
                        None => Some(self.principal.subject.clone()),
                    })
                };
                RootFetched::Connection(match scope() {
                    Ok(customer_id) => self.fetch_connection(customer_id, args, selection).await,
                    Err(error) => Err(error),
                })
            }
            RootField::Stock(skus, _) => {
                let skus = self.variables.string_list(skus);
                let loaded = async {
                    self.require(Scope::InventoryRead)?;
                    let max = self.max_page_size as usize;
                    if skus.len() > max {
                        return Err(graphql_error(
                            ErrorCode::BadUserInput,
                            format!("at most {max} skus per query, got {}", skus.len()),
                        ));
                    }
                    self.loaders
                        .stock
                        .load_many(skus.iter().map(String::as_str))
                        .await
                        .into_iter()
                        .map(|result| result.map_err(|e| upstream_error(&e)))
                        .collect::<Result<Vec<_>, _>>()
                };
                RootFetched::Stock(loaded.await)
            }
        }
    }

    /// Writes a root field's value; `false` when the field is left out (its resolver
    /// failed, as async-graphql leaves out a failed non-null field).
    fn write_root(
        &self,
        out: &mut Vec<u8>,
        field: &Planned<RootField>,
        fetched: &RootFetched,
    ) -> bool {
        let path = Path::ROOT.key(&field.key);
        match (&field.field, fetched) {
            (RootField::Typename, _) => write_str(out, "Query"),
            (RootField::Viewer(selection), RootFetched::Customer(customer)) => match customer {
                Ok(customer) => self.write_customer(out, customer, selection, &path),
                Err(error) => {
                    self.fail(error, field.pos, &path);
                    return false;
                }
            },
            (RootField::Customer(_, selection), RootFetched::Customer(customer)) => {
                match customer {
                    Ok(customer) => self.write_customer(out, customer, selection, &path),
                    Err(error) => {
                        self.fail(error, field.pos, &path);
                        out.extend_from_slice(b"null");
                    }
                }
            }
            (RootField::Order(_, selection), RootFetched::Order(order)) => match order {
                Ok(order) => self.write_order(out, order, selection, &path),
                Err(error) => {
                    self.fail(error, field.pos, &path);
                    out.extend_from_slice(b"null");
                }
            },
            (RootField::Orders(_, selection), RootFetched::Connection(connection)) => {
                match connection {
                    Ok(connection) => self.write_connection(out, connection, selection, &path),
                    Err(error) => {
                        self.fail(error, field.pos, &path);
                        return false;
                    }
                }
            }
            (RootField::Stock(_, selection), RootFetched::Stock(levels)) => match levels {
                Ok(levels) => {
                    out.push(b'[');
                    for (i, level) in levels.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        match level {
                            Some(level) => self.write_stock(out, level, selection),
                            None => out.extend_from_slice(b"null"),
                        }
                    }
                    out.push(b']');
                }
                Err(error) => {
                    self.fail(error, field.pos, &path);
                    out.extend_from_slice(b"null");
                }
            },
            _ => out.extend_from_slice(b"null"),
        }
        true
    }

    /// Everything a customer object selects that must be awaited: its record (once, when
    /// a field needs it) and each of its connections.
    fn fetch_customer<'s>(
        &'s self,
        node: CustomerNode,
        selection: &'s Selection<CustomerField>,
    ) -> futures_util::future::BoxFuture<'s, CustomerFetched> {
        Box::pin(async move {
            let fields: Vec<_> = self.collect(selection).collect();
            let needs_record = fields.iter().any(|f| f.field.needs_record());
            let record = async {
                if needs_record {
                    Some(node.record(self.loaders).await)
                } else {
                    None
                }
            };
            let connections = join_all(fields.iter().filter_map(|field| match &field.field {
                CustomerField::Orders(args, connection) => Some(async {
                    self.require(Scope::OrdersRead)?;
                    self.fetch_connection(Some(node.id.clone()), args, connection)
                        .await
                }),
                _ => None,
            }));
            let (record, connections) = futures_util::future::join(record, connections).await;
            CustomerFetched {
                id: node.id.clone(),
                record,
                connections,
            }
        })
    }

    fn write_customer(
        &self,
        out: &mut Vec<u8>,
        fetched: &CustomerFetched,
        selection: &Selection<CustomerField>,
        path: &Path<'_>,
    ) {
        let mut connections = fetched.connections.iter();
        write_object(out, self.collect(selection), |out, field| {
            let record = match (field.field.needs_record(), &fetched.record) {
                (true, Some(Ok(record))) => Some(record.as_ref()),
                (true, Some(Err(error))) => {
                    self.fail(error, field.pos, &path.key(&field.key));
                    return false;
                }
                _ => None,
            };
            write_key(out, &field.key);
            match (&field.field, record) {
                (CustomerField::Typename, _) => write_str(out, "Customer"),
                (CustomerField::Id, _) => write_str(out, &fetched.id),
                (CustomerField::Orders(_, selection), _) => match connections.next() {
                    Some(Ok(connection)) => {
                        self.write_connection(out, connection, selection, &path.key(&field.key))
                    }
                    Some(Err(error)) => {
                        self.fail(error, field.pos, &path.key(&field.key));
                        return false;
                    }
                    None => return false,
                },
                (CustomerField::Name, Some(c)) => write_str(out, &c.name),
                (CustomerField::Email, Some(c)) => write_str(out, &self.principal.visible_email(c)),
                (CustomerField::Phone, Some(c)) => write_str(out, &self.principal.visible_phone(c)),
                (CustomerField::Tier, Some(c)) => write_str(out, tier_name(c.tier)),
                (CustomerField::AvatarUrl, Some(c)) => write_str(out, &c.avatar_url),
                (CustomerField::AvatarThumbUrl, Some(c)) => write_str(out, &c.avatar_thumb_url),
                (CustomerField::CreatedAt, Some(c)) => write_time(out, c.created_at),
                (_, None) => return false,
            }
            true
        });
    }

    /// One page of orders and what its orders select (the caller checked the scope).
    async fn fetch_connection(
        &self,
        customer_id: Option<String>,
        args: &ConnectionArgs,
        selection: &Selection<ConnectionField>,
    ) -> Outcome<ConnectionFetched> {
        let first = args
            .first
            .as_ref()
            .and_then(|a| self.variables.optional_int(a))
            .unwrap_or(crate::schema::DEFAULT_PAGE_SIZE);
        let max = self.max_page_size;
        let limit = match u32::try_from(first) {
            Ok(size) if (1..=max).contains(&size) => size,
            _ => {
                return Err(graphql_error(
                    ErrorCode::BadUserInput,
                    format!("first must be between 1 and {max}, got {first}"),
                ));
            }
        };
        let cursor = args
            .after
            .as_ref()
            .and_then(|a| self.variables.optional_string(a))
            .map(|after| decode_cursor(&after))
            .transpose()?;
        let status = args
            .status
            .as_ref()
            .and_then(|a| self.variables.optional_status(a));
        let query = OrdersQuery {
            customer_id,
            status,
            limit,
            cursor,
        };
        let page = self
            .upstreams
            .orders
            .list_orders(&query)
            .await
            .map_err(|e| upstream_error(&e))?;
        let has_next_page = page.next_cursor.is_some();
        let orders: Vec<Arc<Order>> = page.data.into_iter().map(Arc::new).collect();
        let end_cursor = match (&page.next_cursor, orders.last()) {
            (Some(next), _) => Some(encode_cursor(next)),
            (None, Some(last)) => Some(encode_cursor(&last.id)),
            (None, None) => None,
        };
        // Each order selection (every `nodes`, every `edges.node`), in field order.
        let mut order_selections: Vec<&Selection<OrderField>> = Vec::new();
        for field in self.collect(selection) {
            match &field.field {
                ConnectionField::Nodes(s) => order_selections.push(s),
                ConnectionField::Edges(edge) => {
                    for edge_field in self.collect(edge) {
                        if let EdgeField::Node(s) = &edge_field.field {
                            order_selections.push(s);
                        }
                    }
                }
                _ => {}
            }
        }
        let fetched_orders = join_all(order_selections.iter().map(|s| {
            let orders = &orders;
            async move {
                join_all(
                    orders
                        .iter()
                        .map(|order| self.fetch_order(Arc::clone(order), s)),
                )
                .await
            }
        }))
        .await;
        Ok(ConnectionFetched {
            orders,
            fetched_orders,
            has_next_page,
            end_cursor,
        })
    }

    fn write_connection(
        &self,
        out: &mut Vec<u8>,
        fetched: &ConnectionFetched,
        selection: &Selection<ConnectionField>,
        path: &Path<'_>,
    ) {
        let mut lists = fetched.fetched_orders.iter();
        write_object(out, self.collect(selection), |out, field| {
            write_key(out, &field.key);
            let field_path = path.key(&field.key);
            match &field.field {
                ConnectionField::Typename => write_str(out, "OrderConnection"),
                ConnectionField::Nodes(s) => {
                    let list = lists.next();
                    out.push(b'[');
                    for (j, order) in list.into_iter().flatten().enumerate() {
                        if j > 0 {
                            out.push(b',');
                        }
                        self.write_order(out, order, s, &field_path.index(j));
                    }
                    out.push(b']');
                }
                ConnectionField::PageInfo(s) => {
                    write_object(out, self.collect(s), |out, f| {
                        write_key(out, &f.key);
                        match f.field {
                            PageInfoField::Typename => write_str(out, "PageInfo"),
                            PageInfoField::HasNextPage => write_bool(out, fetched.has_next_page),
                            PageInfoField::EndCursor => match &fetched.end_cursor {
                                Some(cursor) => write_str(out, cursor),
                                None => out.extend_from_slice(b"null"),
                            },
                        }
                        true
                    });
                }
                ConnectionField::Edges(edge) => {
                    let edge_fields: Vec<_> = self.collect(edge).collect();
                    let node_lists: Vec<_> = edge_fields
                        .iter()
                        .filter(|f| matches!(f.field, EdgeField::Node(_)))
                        .map(|_| lists.next())
                        .collect();
                    out.push(b'[');
                    for (j, order) in fetched.orders.iter().enumerate() {
                        if j > 0 {
                            out.push(b',');
                        }
                        let edge_path = field_path.index(j);
                        let mut nodes = node_lists.iter();
                        write_object(out, edge_fields.iter(), |out, f| {
                            write_key(out, &f.key);
                            match &f.field {
                                EdgeField::Typename => write_str(out, "OrderEdge"),
                                EdgeField::Cursor => write_str(out, &encode_cursor(&order.id)),
                                EdgeField::Node(s) => match nodes
                                    .next()
                                    .copied()
                                    .flatten()
                                    .and_then(|list| list.get(j))
                                {
                                    Some(fetched) => {
                                        self.write_order(out, fetched, s, &edge_path.key(&f.key))
                                    }
                                    None => out.extend_from_slice(b"null"),
                                },
                            }
                            true
                        });
                    }
                    out.push(b']');
                }
            }
            true
        });
    }

    /// What an order selects that must be awaited: its customer and its items' stock.
    async fn fetch_order(
        &self,
        order: Arc<Order>,
        selection: &Selection<OrderField>,
    ) -> OrderFetched {
        let customers = join_all(
            self.collect(selection)
                .filter_map(|field| match &field.field {
                    OrderField::Customer(s) => Some(async {
                        self.require(Scope::CustomersRead)?;
                        match self.loaders.customers.load(&order.customer_id).await {
                            Ok(Some(customer)) => Ok(Some(
                                self.fetch_customer(CustomerNode::loaded(customer), s).await,
                            )),
                            Ok(None) => Ok(None),
                            Err(e) => Err(upstream_error(&e)),
                        }
                    }),
                    _ => None,
                }),
        );
        // Every `stock` field of every `items` field resolves its item's one SKU, and the
        // loader answers a key once per request: one load of the order's SKUs serves them.
        let selects_stock = self.collect(selection).any(|field| match &field.field {
            OrderField::Items(s) => self
                .collect(s)
                .any(|f| matches!(f.field, ItemField::Stock(_))),
            _ => false,
        });
        let stock = async {
            if !selects_stock {
                return Ok(Vec::new());
            }
            self.require(Scope::InventoryRead)?;
            let skus = order.items.iter().map(|item| item.sku.as_str());
            Ok(self.loaders.stock.load_many(skus).await)
        };
        let (customers, stock) = futures_util::future::join(customers, stock).await;
        OrderFetched {
            order,
            customers,
            stock,
        }
    }

    fn write_order(
        &self,
        out: &mut Vec<u8>,
        fetched: &OrderFetched,
        selection: &Selection<OrderField>,
        path: &Path<'_>,
    ) {
        let order = &fetched.order;
        let mut customers = fetched.customers.iter();
        write_object(out, self.collect(selection), |out, field| {
            write_key(out, &field.key);
            match &field.field {
                OrderField::Typename => write_str(out, "Order"),
                OrderField::Id => write_str(out, &order.id),
                OrderField::Status => write_str(out, status_name(order.status)),
                OrderField::Total(s) => {
                    self.write_money(out, order.total_cents, &order.currency, s)
                }
                OrderField::ItemCount => write_u64(out, order.item_count()),
                OrderField::CreatedAt => write_time(out, order.created_at),
                OrderField::UpdatedAt => write_time(out, order.updated_at),
                OrderField::Items(s) => {
                    let items_path = path.key(&field.key);
                    out.push(b'[');
                    for (j, item) in order.items.iter().enumerate() {
                        if j > 0 {
                            out.push(b',');
                        }
                        let item_path = items_path.index(j);
                        write_object(out, self.collect(s), |out, f| {
                            write_key(out, &f.key);
                            match &f.field {
                                ItemField::Typename => write_str(out, "OrderItem"),
                                ItemField::Sku => write_str(out, &item.sku),
                                ItemField::Quantity => write_u64(out, u64::from(item.quantity)),
                                ItemField::UnitPrice(m) => {
                                    self.write_money(
                                        out,
                                        item.unit_price_cents,
                                        &order.currency,
                                        m,
                                    );
                                }
                                ItemField::Stock(st) => match item_stock(&fetched.stock, j) {
                                    Ok(Some(level)) => self.write_stock(out, level, st),
                                    Ok(None) => out.extend_from_slice(b"null"),
                                    Err(error) => {
                                        self.fail(&error, f.pos, &item_path.key(&f.key));
                                        out.extend_from_slice(b"null");
                                    }
                                },
                            }
                            true
                        });
                    }
                    out.push(b']');
                }
                OrderField::Customer(s) => match customers.next() {
                    Some(Ok(Some(customer))) => {
                        self.write_customer(out, customer, s, &path.key(&field.key))
                    }
                    Some(Err(error)) => {
                        self.fail(error, field.pos, &path.key(&field.key));
                        out.extend_from_slice(b"null");
                    }
                    _ => out.extend_from_slice(b"null"),
                },
            }
            true
        });
    }

    fn write_money(
        &self,
        out: &mut Vec<u8>,
        minor_units: i64,
        currency: &str,
        selection: &Selection<MoneyField>,
    ) {
        write_object(out, self.collect(selection), |out, field| {
            write_key(out, &field.key);
            match field.field {
                MoneyField::Typename => write_str(out, "Money"),
                MoneyField::MinorUnits => write_i64(out, minor_units),
                MoneyField::Currency => write_str(out, currency),
                MoneyField::Formatted => {
                    write_str(out, &domain::Money::new(minor_units, currency).formatted());
                }
            }
            true
        });
    }

    fn write_stock(
        &self,
        out: &mut Vec<u8>,
        level: &StockLevel,
        selection: &Selection<StockField>,
    ) {
        write_object(out, self.collect(selection), |out, field| {
            write_key(out, &field.key);
            match field.field {
                StockField::Typename => write_str(out, "StockLevel"),
                StockField::Sku => write_str(out, &level.sku),
                StockField::Name => write_str(out, &level.name),
                StockField::Available => write_i64(out, level.available),
                StockField::Reserved => write_i64(out, level.reserved),
                StockField::WarehouseId => write_str(out, &level.warehouse_id),
                StockField::UpdatedAt => write_time(out, level.updated_at),
            }
            true
        });
    }
}

/// Writes an object of the fields `write` writes (it returns `false` for a field left
/// out, having written nothing that stays); an object left with no field is `null`, as
/// async-graphql makes it. Returns whether the object has a field.
fn write_object<I: IntoIterator>(
    out: &mut Vec<u8>,
    fields: I,
    mut write: impl FnMut(&mut Vec<u8>, I::Item) -> bool,
) -> bool {
    let start = out.len();
    out.push(b'{');
    let mut written = 0;
    for field in fields {
        let mark = out.len();
        if written > 0 {
            out.push(b',');
        }
        if write(out, field) {
            written += 1;
        } else {
            out.truncate(mark);
        }
    }
    if written == 0 {
        out.truncate(start);
        out.extend_from_slice(b"null");
        false
    } else {
        out.push(b'}');
        true
    }
}

/// A customer known by id, its record loaded on first need (as the schema's node is).
struct CustomerNode {
    id: String,
    record: Option<Arc<Customer>>,
}

impl CustomerNode {
    fn by_id(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            record: None,
        }
    }

    fn loaded(customer: Arc<Customer>) -> Self {
        Self {
            id: customer.id.clone(),
            record: Some(customer),
        }
    }

    async fn record(&self, loaders: &Loaders) -> Outcome<Arc<Customer>> {
        if let Some(record) = &self.record {
            return Ok(Arc::clone(record));
        }
        match loaders.customers.load(&self.id).await {
            Ok(Some(customer)) => Ok(customer),
            Ok(None) => Err(not_found("customer")),
            Err(e) => Err(upstream_error(&e)),
        }
    }
}

enum RootFetched {
    Typename,
    Customer(Outcome<CustomerFetched>),
    Order(Outcome<OrderFetched>),
    Connection(Outcome<ConnectionFetched>),
    Stock(Outcome<Vec<Option<Arc<StockLevel>>>>),
}

struct CustomerFetched {
    id: String,
    /// Loaded when a field needs it.
    record: Option<Outcome<Arc<Customer>>>,
    /// One per `orders` field, in field order.
    connections: Vec<Outcome<ConnectionFetched>>,
}

struct ConnectionFetched {
    orders: Vec<Arc<Order>>,
    /// Per order selection (each `nodes`, each `edges.node`), the orders fetched for it.
    fetched_orders: Vec<Vec<OrderFetched>>,
    has_next_page: bool,
    end_cursor: Option<String>,
}

struct OrderFetched {
    order: Arc<Order>,
    /// One per `customer` field (`Ok(None)`: no such customer, `null`).
    customers: Vec<Outcome<Option<CustomerFetched>>>,
    /// Per item, its stock as loaded (`Ok(None)`: no such SKU, `null`), which every
    /// `stock` field of the item writes; empty when no `items` field selects `stock`, and
    /// the refusal when the principal may not read stock.
    stock: Outcome<Vec<LoadResult<StockLevel>>>,
}

/// The stock of an order's item `j` as its `stock` fields write it: the level, `None`
/// for an unknown SKU (or none loaded), or the error (the refusal, or the upstream's).
fn item_stock(
    stock: &Outcome<Vec<LoadResult<StockLevel>>>,
    j: usize,
) -> Outcome<Option<&StockLevel>> {
    match stock {
        Ok(levels) => match levels.get(j) {
            Some(Ok(level)) => Ok(level.as_deref()),
            Some(Err(error)) => Err(upstream_error(error)),
            None => Ok(None),
        },
        Err(refused) => Err(refused.clone()),
    }
}

fn write_key(out: &mut Vec<u8>, key: &Name) {
    write_str(out, key);
    out.push(b':');
}

fn write_str(out: &mut Vec<u8>, text: &str) {
    // serde_json's escaping, as async-graphql's serialisation uses.
    let _ = serde_json::to_writer(&mut *out, text);
}

fn write_bool(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

fn write_u64(out: &mut Vec<u8>, value: u64) {
    // serde_json's integer writer: no formatting machinery.
    let _ = serde_json::to_writer(&mut *out, &value);
}

fn write_i64(out: &mut Vec<u8>, value: i64) {
    let _ = serde_json::to_writer(&mut *out, &value);
}

/// An RFC 3339 timestamp as a JSON string, formatted in place: its characters (digits,
/// `-:.TZ+`) never need escaping.
fn write_time(out: &mut Vec<u8>, at: time::OffsetDateTime) {
    let start = out.len();
    out.push(b'"');
    if at.format_into(out, &Rfc3339).is_ok() {
        out.push(b'"');
    } else {
        // A year outside 0..=9999 has no RFC 3339 form; async-graphql's scalar writes "".
        out.truncate(start);
        out.extend_from_slice(b"\"\"");
    }
}

fn tier_name(tier: domain::Tier) -> &'static str {
    match tier {
        domain::Tier::Free => "FREE",
        domain::Tier::Pro => "PRO",
        domain::Tier::Enterprise => "ENTERPRISE",
    }
}

fn status_name(status: domain::OrderStatus) -> &'static str {
    use domain::OrderStatus as S;
    match status {
        S::Pending => "PENDING",
        S::Paid => "PAID",
        S::Shipped => "SHIPPED",
        S::Delivered => "DELIVERED",
        S::Cancelled => "CANCELLED",
    }
}
