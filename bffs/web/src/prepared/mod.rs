//! The prepared-operation path: a query async-graphql has validated once is planned once
//! (the plan is kept with the parsed document) and later requests for it run the plan
//! instead of async-graphql's executor, with the same loaders, upstream calls, checks and
//! errors, writing the response bytes directly.
//!
//! A request takes the path only when nothing about it needs async-graphql: its document
//! planned (see `plan`), its variables coerce (see `vars`), and its complexity is within
//! the limit. Otherwise it runs on async-graphql, which then also words the error. The
//! differential test (`tests/web/prepared.rs`) runs both executors over a corpus and is
//! the contract of this path; `graphql.prepared_executor = false` turns it off.
//!
//! Files, bottom up: `plan.rs` (the plan and the planner), `vars.rs` (coercing variables),
//! `exec.rs` (running a plan).

mod exec;
mod plan;
mod vars;

use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::ServerError;
use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection as AstSelection, SelectionSet,
};
use async_graphql_value::Value;
use switchyard_core::auth::Principal;
use switchyard_core::upstream::Upstreams;

use self::exec::Exec;
use self::plan::{Arg, Plan};
use self::vars::Variables;
use crate::fetchers::Loaders;

/// A document's plan and what is needed to price a request for it.
#[derive(Debug)]
pub(crate) struct Prepared {
    plan: Plan,
    /// The operation name the plan is for (`None`: the document's only operation).
    operation_name: Option<String>,
    /// The complexity, when no variable can change it (the operation declares none).
    fixed_complexity: Option<usize>,
    /// The length of the last response body written for this plan: the next one's buffer
    /// starts that big, so it is allocated once instead of grown and copied.
    last_body_len: AtomicUsize,
}

impl Prepared {
    /// The plan of `operation_name` in `document`, or `None` if the planner declines it.
    pub(crate) fn new(document: &ExecutableDocument, operation_name: Option<&str>) -> Option<Self> {
        match plan::plan(document, operation_name) {
            Ok(plan) => {
                let fixed_complexity = if plan.variables.is_empty() {
                    complexity(document, operation_name, &Variables::none())
                } else {
                    None
                };
                Some(Self {
                    plan,
                    operation_name: operation_name.map(str::to_owned),
                    fixed_complexity,
                    last_body_len: AtomicUsize::new(0),
                })
            }
            Err(why) => {
                tracing::debug!(why, "document left to async-graphql");
                None
            }
        }
    }

    /// Whether this plan is for a request naming `operation_name`.
    pub(crate) fn is_for(&self, operation_name: Option<&str>) -> bool {
        self.operation_name.as_deref() == operation_name
    }
}

/// A request ready to run on the prepared path.
pub(crate) struct Ready<'a> {
    prepared: &'a Prepared,
    variables: Variables,
    /// async-graphql's complexity of the operation with these variables.
    pub(crate) complexity: usize,
}

/// Coerces `variables` and prices the request; `None` sends it to async-graphql.
pub(crate) fn ready<'a>(
    prepared: &'a Prepared,
    document: &ExecutableDocument,
    variables: &async_graphql::Variables,
    max_complexity: usize,
) -> Option<Ready<'a>> {
    let variables = Variables::coerce(&prepared.plan.variables, variables)?;
    let complexity = match prepared.fixed_complexity {
        Some(fixed) => fixed,
        None => complexity(document, prepared.operation_name.as_deref(), &variables)?,
    };
    (complexity <= max_complexity).then_some(Ready {
        prepared,
        variables,
        complexity,
    })
}

/// What the request's resolvers would have had.
pub(crate) struct Context<'a> {
    pub(crate) principal: &'a Principal,
    pub(crate) loaders: &'a Loaders,
    pub(crate) upstreams: &'a Upstreams,
    pub(crate) max_page_size: u32,
}

/// The start of a response body: `{"data":` and the data (JSON, or `null`), to which the
/// errors, extensions and closing brace are appended.
pub(crate) struct BodyStart(pub(crate) Vec<u8>);

/// Room past the data for what is appended after it and for a slightly larger answer.
const BODY_SLACK: usize = 256;

/// Runs a ready request: the start of its response body, and the errors.
pub(crate) async fn run(ready: &Ready<'_>, context: &Context<'_>) -> (BodyStart, Vec<ServerError>) {
    let exec = Exec::new(
        context.principal,
        context.loaders,
        context.upstreams,
        context.max_page_size,
        &ready.variables,
    );
    let last_body_len = &ready.prepared.last_body_len;
    let mut body = Vec::with_capacity(last_body_len.load(Ordering::Relaxed) + BODY_SLACK);
    body.extend_from_slice(b"{\"data\":");
    let errors = exec.run(&ready.prepared.plan.root, &mut body).await;
    last_body_len.store(body.len(), Ordering::Relaxed);
    (BodyStart(body), errors)
}

/// The complexity async-graphql computes for the operation: every field costs 1 plus its
/// children, except `orders` (on `Query` and `Customer`: `1 + children × first`) and
/// `Query.stock` (`1 + children × skus`); `__typename` costs nothing; fragments count at
/// each spread; `@skip`/`@include` are not applied.
fn complexity(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) -> Option<usize> {
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?,
        (DocumentOperations::Multiple(ops), None) => ops.values().next()?,
    };
    Some(set_complexity(
        document,
        &operation.node.selection_set,
        "Query",
        variables,
        0,
    ))
}

/// The type a field of `parent` returns, for the fields with object types.
fn field_type(parent: &str, field: &str) -> &'static str {
    match (parent, field) {
        ("Query", "viewer" | "customer") | ("Order", "customer") => "Customer",
        ("Query", "order") | ("OrderConnection", "nodes") | ("OrderEdge", "node") => "Order",
        ("Query" | "Customer", "orders") => "OrderConnection",
        ("Query" | "OrderItem", "stock") => "StockLevel",
        ("Order", "total") | ("OrderItem", "unitPrice") => "Money",
        ("Order", "items") => "OrderItem",
        ("OrderConnection", "pageInfo") => "PageInfo",
        ("OrderConnection", "edges") => "OrderEdge",
        _ => "",
    }
}

fn set_complexity(
    document: &ExecutableDocument,
    set: &Positioned<SelectionSet>,
    parent: &str,
    variables: &Variables,
    depth: usize,
) -> usize {
    if depth > 64 {
        return usize::MAX / 2;
    }
    let mut total = 0usize;
    for selection in &set.node.items {
        let cost = match &selection.node {
            AstSelection::Field(field) => {
                let name = field.node.name.node.as_str();
                if name == "__typename" {
                    continue;
                }
                let children = set_complexity(
                    document,
                    &field.node.selection_set,
                    field_type(parent, name),
                    variables,
                    depth + 1,
                );
                let argument = |arg: &str| {
                    field
                        .node
                        .arguments
                        .iter()
                        .find(|(n, _)| n.node == arg)
                        .and_then(|(_, value)| match &value.node {
                            Value::Variable(name) => Some(Arg::Variable(name.clone())),
                            other => other.clone().into_const().map(Arg::Literal),
                        })
                };
                match (parent, name) {
                    ("Query" | "Customer", "orders") => {
                        let first = argument("first")
                            .and_then(|arg| variables.optional_int(&arg))
                            .unwrap_or(crate::schema::DEFAULT_PAGE_SIZE);
                        1usize.saturating_add(children.saturating_mul(first.max(0) as usize))
                    }
                    ("Query", "stock") => {
                        let skus = argument("skus").map_or(0, |arg| variables.list_len(&arg));
                        1usize.saturating_add(children.saturating_mul(skus))
                    }
                    _ => 1usize.saturating_add(children),
                }
            }
            AstSelection::FragmentSpread(spread) => document
                .fragments
                .get(&spread.node.fragment_name.node)
                .map_or(0, |fragment| {
                    set_complexity(
                        document,
                        &fragment.node.selection_set,
                        parent,
                        variables,
                        depth + 1,
                    )
                }),
            AstSelection::InlineFragment(inline) => set_complexity(
                document,
                &inline.node.selection_set,
                parent,
                variables,
                depth + 1,
            ),
        };
        total = total.saturating_add(cost);
    }
    total
}
