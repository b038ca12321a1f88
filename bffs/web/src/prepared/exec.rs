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
use futures_util::future::{join_all, try_join_all};
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

/// A field that failed: its error travels up to the nearest nullable field.
type Failed = ServerError;

fn error_at(error: async_graphql::Error, pos: Pos, path: &Path<'_>) -> ServerError {
    let mut error = error.into_server_error(pos);
    error.path = path.segments();
    error
}

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

    fn add_error(&self, error: ServerError) {
        self.errors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(error);
    }

    /// The errors of nullable fields, in the order they happened.
    pub(crate) fn take_errors(&self) -> Vec<ServerError> {
        std::mem::take(&mut *self.errors.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn included<F>(&self, field: &Planned<F>) -> bool {
        field.conditions.iter().all(|condition| match condition {
            Condition::Skip(arg) => !self.variables.boolean(arg),
            Condition::Include(arg) => self.variables.boolean(arg),
        })
    }

    fn collect<'s, F>(&self, selection: &'s Selection<F>) -> Vec<&'s Planned<F>> {
        selection.iter().filter(|f| self.included(f)).collect()
    }

    fn require(&self, scope: Scope) -> Result<(), async_graphql::Error> {
        self.principal.require(scope).map_err(|e| auth_error(&e))
    }

    /// Runs the root selection: the response's `data` (`None`: `null`) and its errors.
    pub(crate) async fn run(
        &self,
        root: &Selection<RootField>,
    ) -> (Option<Vec<u8>>, Vec<ServerError>) {
        let fields = self.collect(root);
        let results = try_join_all(fields.iter().map(|field| self.root_field(field))).await;
        let data = match results {
            Ok(parts) => {
                let mut out = Vec::with_capacity(256 + parts.iter().map(Vec::len).sum::<usize>());
                out.push(b'{');
                for (i, (field, part)) in fields.iter().zip(&parts).enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_key(&mut out, &field.key);
                    out.extend_from_slice(part);
                }
                out.push(b'}');
                Some(out)
            }
            Err(error) => {
                self.add_error(error);
                None
            }
        };
        (data, self.take_errors())
    }

    /// One root field's JSON value.
    async fn root_field(&self, field: &Planned<RootField>) -> Result<Vec<u8>, Failed> {
        let path = Path::ROOT.key(&field.key);
        let mut out = Vec::new();
        match &field.field {
            RootField::Typename => write_str(&mut out, "Query"),
            RootField::Viewer(selection) => {
                if let Err(error) = self.require(Scope::CustomersRead) {
                    return Err(error_at(error, field.pos, &path));
                }
                let node = CustomerNode::by_id(&self.principal.subject);
                let fetched = self.fetch_customer(&node, selection, &path).await?;
                self.write_customer(&mut out, &fetched, selection);
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
                match loaded.await {
                    Ok(customer) => {
                        let node = CustomerNode::loaded(customer);
                        self.nullable(
                            &mut out,
                            self.fetch_customer(&node, selection, &path).await,
                            |out, fetched| {
                                self.write_customer(out, fetched, selection);
                            },
                        );
                    }
                    Err(error) => {
                        self.add_error(error_at(error, field.pos, &path));
                        out.extend_from_slice(b"null");
                    }
                }
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
                match loaded.await {
                    Ok(order) => {
                        let fetched = self.fetch_order(order, selection, &path).await;
                        self.write_order(&mut out, &fetched, selection);
                    }
                    Err(error) => {
                        self.add_error(error_at(error, field.pos, &path));
                        out.extend_from_slice(b"null");
                    }
                }
            }
            RootField::Orders(args, selection) => {
                let scope = async {
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
                let customer_id = scope.await.map_err(|e| error_at(e, field.pos, &path))?;
                let fetched = self
                    .fetch_connection(customer_id, args, selection, field.pos, &path)
                    .await?;
                self.write_connection(&mut out, &fetched, selection);
            }
            RootField::Stock(skus, selection) => {
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
                    let loads = skus.iter().map(|sku| self.loaders.stock.load(sku));
                    join_all(loads)
                        .await
                        .into_iter()
                        .map(|result| result.map_err(|e| upstream_error(&e)))
                        .collect::<Result<Vec<_>, _>>()
                };
                match loaded.await {
                    Ok(levels) => {
                        out.push(b'[');
                        for (i, level) in levels.iter().enumerate() {
                            if i > 0 {
                                out.push(b',');
                            }
                            match level {
                                Some(level) => self.write_stock(&mut out, level, selection),
                                None => out.extend_from_slice(b"null"),
                            }
                        }
                        out.push(b']');
                    }
                    Err(error) => {
                        self.add_error(error_at(error, field.pos, &path));
                        out.extend_from_slice(b"null");
                    }
                }
            }
        }
        Ok(out)
    }

    /// Writes `value` through `write`, or `null` (its error recorded) when it failed.
    fn nullable<T>(
        &self,
        out: &mut Vec<u8>,
        value: Result<T, Failed>,
        write: impl FnOnce(&mut Vec<u8>, &T),
    ) {
        match value {
            Ok(value) => write(out, &value),
            Err(error) => {
                self.add_error(error);
                out.extend_from_slice(b"null");
            }
        }
    }

    /// Everything a customer object selects that must be awaited: its record (when a
    /// field needs it) and its connections, in field order; the first failure fails it.
    fn fetch_customer<'s>(
        &'s self,
        node: &'s CustomerNode,
        selection: &'s Selection<CustomerField>,
        path: &'s Path<'s>,
    ) -> futures_util::future::BoxFuture<'s, Result<CustomerFetched, Failed>> {
        Box::pin(async move {
            let fields = self.collect(selection);
            let first_record_field = fields.iter().find(|f| f.field.needs_record());
            enum Part {
                Record(Arc<Customer>),
                Connection(ConnectionFetched),
            }
            let mut parts = Vec::new();
            let mut record_at = None;
            for field in &fields {
                match &field.field {
                    CustomerField::Orders(args, connection) => {
                        parts.push(futures_util::future::Either::Left(async move {
                            let field_path = path.key(&field.key);
                            if let Err(e) = self.require(Scope::OrdersRead) {
                                return Err(error_at(e, field.pos, &field_path));
                            }
                            self.fetch_connection(
                                Some(node.id.clone()),
                                args,
                                connection,
                                field.pos,
                                &field_path,
                            )
                            .await
                            .map(Part::Connection)
                        }));
                    }
                    _ if record_at.is_none()
                        && first_record_field.is_some_and(|f| std::ptr::eq(*f, *field)) =>
                    {
                        record_at = Some(parts.len());
                        parts.push(futures_util::future::Either::Right(async move {
                            let field_path = path.key(&field.key);
                            node.record(self.loaders)
                                .await
                                .map(Part::Record)
                                .map_err(|e| error_at(e, field.pos, &field_path))
                        }));
                    }
                    _ => {}
                }
            }
            let parts = try_join_all(parts).await?;
            let mut record = node.record.clone();
            let mut connections = Vec::new();
            for part in parts {
                match part {
                    Part::Record(customer) => record = Some(customer),
                    Part::Connection(connection) => connections.push(connection),
                }
            }
            Ok(CustomerFetched {
                id: node.id.clone(),
                record,
                connections,
            })
        })
    }

    fn write_customer(
        &self,
        out: &mut Vec<u8>,
        fetched: &CustomerFetched,
        selection: &Selection<CustomerField>,
    ) {
        let mut connections = fetched.connections.iter();
        out.push(b'{');
        for (i, field) in self.collect(selection).into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_key(out, &field.key);
            // The record is there whenever a field needs it (else the fetch failed).
            let record = fetched.record.as_deref();
            match (&field.field, record) {
                (CustomerField::Typename, _) => write_str(out, "Customer"),
                (CustomerField::Id, _) => write_str(out, &fetched.id),
                (CustomerField::Orders(_, selection), _) => {
                    if let Some(connection) = connections.next() {
                        self.write_connection(out, connection, selection);
                    }
                }
                (CustomerField::Name, Some(c)) => write_str(out, &c.name),
                (CustomerField::Email, Some(c)) => write_str(out, &self.principal.visible_email(c)),
                (CustomerField::Phone, Some(c)) => write_str(out, &self.principal.visible_phone(c)),
                (CustomerField::Tier, Some(c)) => write_str(out, tier_name(c.tier)),
                (CustomerField::AvatarUrl, Some(c)) => write_str(out, &c.avatar_url),
                (CustomerField::AvatarThumbUrl, Some(c)) => write_str(out, &c.avatar_thumb_url),
                (CustomerField::CreatedAt, Some(c)) => write_time(out, c.created_at),
                (_, None) => out.extend_from_slice(b"null"),
            }
        }
        out.push(b'}');
    }

    /// One page of orders and what its orders select.
    async fn fetch_connection(
        &self,
        customer_id: Option<String>,
        args: &ConnectionArgs,
        selection: &Selection<ConnectionField>,
        pos: Pos,
        path: &Path<'_>,
    ) -> Result<ConnectionFetched, Failed> {
        let page = async {
            let first = args
                .first
                .as_ref()
                .map_or(Some(crate::schema::DEFAULT_PAGE_SIZE), |a| {
                    self.variables.optional_int(a)
                })
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
            self.upstreams
                .orders
                .list_orders(&query)
                .await
                .map_err(|e| upstream_error(&e))
        };
        let page = page.await.map_err(|e| error_at(e, pos, path))?;
        let has_next_page = page.next_cursor.is_some();
        let orders: Vec<Arc<Order>> = page.data.into_iter().map(Arc::new).collect();
        let end_cursor = match (&page.next_cursor, orders.last()) {
            (Some(next), _) => Some(encode_cursor(next)),
            (None, Some(last)) => Some(encode_cursor(&last.id)),
            (None, None) => None,
        };
        // What each order selects, under `nodes` and under `edges.node`, in field order.
        let fields = self.collect(selection);
        let mut order_selections: Vec<(&str, Option<&str>, &Selection<OrderField>)> = Vec::new();
        for field in &fields {
            match &field.field {
                ConnectionField::Nodes(s) => order_selections.push((&field.key, None, s)),
                ConnectionField::Edges(edge) => {
                    for edge_field in self.collect(edge) {
                        if let EdgeField::Node(s) = &edge_field.field {
                            order_selections.push((&field.key, Some(&edge_field.key), s));
                        }
                    }
                }
                _ => {}
            }
        }
        let fetches = order_selections.iter().map(|(list_key, node_key, s)| {
            let orders = &orders;
            async move {
                let list_path = path.key(list_key);
                join_all(orders.iter().enumerate().map(|(i, order)| {
                    let list_path = &list_path;
                    async move {
                        let item_path = list_path.index(i);
                        match node_key {
                            Some(node_key) => {
                                let node_path = item_path.key(node_key);
                                self.fetch_order(Arc::clone(order), s, &node_path).await
                            }
                            None => self.fetch_order(Arc::clone(order), s, &item_path).await,
                        }
                    }
                }))
                .await
            }
        });
        let fetched_orders = join_all(fetches).await;
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
    ) {
        let mut lists = fetched.fetched_orders.iter();
        out.push(b'{');
        for (i, field) in self.collect(selection).into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_key(out, &field.key);
            match &field.field {
                ConnectionField::Typename => write_str(out, "OrderConnection"),
                ConnectionField::Nodes(s) => {
                    let list = lists.next();
                    out.push(b'[');
                    for (j, order) in list.into_iter().flatten().enumerate() {
                        if j > 0 {
                            out.push(b',');
                        }
                        self.write_order(out, order, s);
                    }
                    out.push(b']');
                }
                ConnectionField::PageInfo(s) => {
                    out.push(b'{');
                    for (j, f) in self.collect(s).into_iter().enumerate() {
                        if j > 0 {
                            out.push(b',');
                        }
                        write_key(out, &f.key);
                        match f.field {
                            PageInfoField::Typename => write_str(out, "PageInfo"),
                            PageInfoField::HasNextPage => write_bool(out, fetched.has_next_page),
                            PageInfoField::EndCursor => match &fetched.end_cursor {
                                Some(cursor) => write_str(out, cursor),
                                None => out.extend_from_slice(b"null"),
                            },
                        }
                    }
                    out.push(b'}');
                }
                ConnectionField::Edges(edge) => {
                    let edge_fields = self.collect(edge);
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
                        out.push(b'{');
                        let mut nodes = node_lists.iter();
                        for (k, f) in edge_fields.iter().enumerate() {
                            if k > 0 {
                                out.push(b',');
                            }
                            write_key(out, &f.key);
                            match &f.field {
                                EdgeField::Typename => write_str(out, "OrderEdge"),
                                EdgeField::Cursor => write_str(out, &encode_cursor(&order.id)),
                                EdgeField::Node(s) => {
                                    match nodes
                                        .next()
                                        .copied()
                                        .flatten()
                                        .and_then(|list| list.get(j))
                                    {
                                        Some(fetched) => self.write_order(out, fetched, s),
                                        None => out.extend_from_slice(b"null"),
                                    }
                                }
                            }
                        }
                        out.push(b'}');
                    }
                    out.push(b']');
                }
            }
        }
        out.push(b'}');
    }

    /// What an order selects that must be awaited: its customer and its items' stock.
    /// Both are nullable, so an order never fails.
    async fn fetch_order(
        &self,
        order: Arc<Order>,
        selection: &Selection<OrderField>,
        path: &Path<'_>,
    ) -> OrderFetched {
        let fields = self.collect(selection);
        let customers = fields.iter().filter_map(|field| match &field.field {
            OrderField::Customer(s) => Some((field, s)),
            _ => None,
        });
        let customer_fetches = customers.map(|(field, s)| {
            let order = &order;
            async move {
                let field_path = path.key(&field.key);
                let loaded = async {
                    self.require(Scope::CustomersRead)?;
                    self.loaders
                        .customers
                        .load(&order.customer_id)
                        .await
                        .map_err(|e| upstream_error(&e))
                };
                match loaded.await {
                    Ok(Some(customer)) => {
                        let node = CustomerNode::loaded(customer);
                        match self.fetch_customer(&node, s, &field_path).await {
                            Ok(fetched) => Some(fetched),
                            Err(error) => {
                                self.add_error(error);
                                None
                            }
                        }
                    }
                    Ok(None) => None,
                    Err(error) => {
                        self.add_error(error_at(error, field.pos, &field_path));
                        None
                    }
                }
            }
        });
        let items = fields.iter().filter_map(|field| match &field.field {
            OrderField::Items(s) => Some((field, s)),
            _ => None,
        });
        let item_fetches = items.map(|(field, s)| {
            let order = &order;
            async move {
                let items_path = path.key(&field.key);
                let stock_fields: Vec<_> = self
                    .collect(s)
                    .into_iter()
                    .filter(|f| matches!(f.field, ItemField::Stock(_)))
                    .collect();
                join_all(order.items.iter().enumerate().map(|(i, item)| {
                    let items_path = &items_path;
                    let stock_fields = &stock_fields;
                    async move {
                        let item_path = items_path.index(i);
                        join_all(stock_fields.iter().map(|f| {
                            let item_path = &item_path;
                            async move {
                                let loaded = async {
                                    self.require(Scope::InventoryRead)?;
                                    self.loaders
                                        .stock
                                        .load(&item.sku)
                                        .await
                                        .map_err(|e| upstream_error(&e))
                                };
                                match loaded.await {
                                    Ok(level) => level,
                                    Err(error) => {
                                        self.add_error(error_at(
                                            error,
                                            f.pos,
                                            &item_path.key(&f.key),
                                        ));
                                        None
                                    }
                                }
                            }
                        }))
                        .await
                    }
                }))
                .await
            }
        });
        let (customers, items) =
            futures_util::future::join(join_all(customer_fetches), join_all(item_fetches)).await;
        OrderFetched {
            order,
            customers,
            items,
        }
    }

    fn write_order(
        &self,
        out: &mut Vec<u8>,
        fetched: &OrderFetched,
        selection: &Selection<OrderField>,
    ) {
        let order = &fetched.order;
        let mut customers = fetched.customers.iter();
        let mut item_lists = fetched.items.iter();
        out.push(b'{');
        for (i, field) in self.collect(selection).into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
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
                    let stocks = item_lists.next();
                    out.push(b'[');
                    for (j, item) in order.items.iter().enumerate() {
                        if j > 0 {
                            out.push(b',');
                        }
                        let mut levels = stocks.and_then(|list| list.get(j)).into_iter().flatten();
                        out.push(b'{');
                        for (k, f) in self.collect(s).into_iter().enumerate() {
                            if k > 0 {
                                out.push(b',');
                            }
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
                                ItemField::Stock(st) => match levels.next() {
                                    Some(Some(level)) => self.write_stock(out, level, st),
                                    _ => out.extend_from_slice(b"null"),
                                },
                            }
                        }
                        out.push(b'}');
                    }
                    out.push(b']');
                }
                OrderField::Customer(s) => match customers.next() {
                    Some(Some(customer)) => self.write_customer(out, customer, s),
                    _ => out.extend_from_slice(b"null"),
                },
            }
        }
        out.push(b'}');
    }

    fn write_money(
        &self,
        out: &mut Vec<u8>,
        minor_units: i64,
        currency: &str,
        selection: &Selection<MoneyField>,
    ) {
        out.push(b'{');
        for (i, field) in self.collect(selection).into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_key(out, &field.key);
            match field.field {
                MoneyField::Typename => write_str(out, "Money"),
                MoneyField::MinorUnits => write_i64(out, minor_units),
                MoneyField::Currency => write_str(out, currency),
                MoneyField::Formatted => {
                    write_str(out, &domain::Money::new(minor_units, currency).formatted());
                }
            }
        }
        out.push(b'}');
    }

    fn write_stock(
        &self,
        out: &mut Vec<u8>,
        level: &StockLevel,
        selection: &Selection<StockField>,
    ) {
        out.push(b'{');
        for (i, field) in self.collect(selection).into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
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
        }
        out.push(b'}');
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

    async fn record(&self, loaders: &Loaders) -> Result<Arc<Customer>, async_graphql::Error> {
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

struct CustomerFetched {
    id: String,
    record: Option<Arc<Customer>>,
    /// One per `orders` field, in field order.
    connections: Vec<ConnectionFetched>,
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
    /// One per `customer` field: `None` is `null`.
    customers: Vec<Option<CustomerFetched>>,
    /// One per `items` field: per item, one per `stock` field (`None` is `null`).
    items: Vec<Vec<Vec<Option<Arc<StockLevel>>>>>,
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
    use std::io::Write as _;
    let _ = write!(out, "{value}");
}

fn write_i64(out: &mut Vec<u8>, value: i64) {
    use std::io::Write as _;
    let _ = write!(out, "{value}");
}

fn write_time(out: &mut Vec<u8>, at: time::OffsetDateTime) {
    write_str(out, &at.format(&Rfc3339).unwrap_or_default());
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
