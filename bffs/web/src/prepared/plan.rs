//! Planning: a validated document's one operation turned, once, into a typed tree of the
//! fields it selects, so requests for it run without looking at the document again.
//!
//! The planner covers queries over this schema's object types with aliases, variables,
//! fragments (spread and inline; every type here is concrete, so a validated type
//! condition is the parent type) and `@skip`/`@include`. It declines (and the document
//! stays on async-graphql) for anything else: subscriptions, introspection, other
//! directives, and a response key selected twice unless both are the same leaf field.

use std::collections::HashMap;

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, OperationType, Selection as AstSelection,
    SelectionSet, Type,
};
use async_graphql::{Name, Pos};
use async_graphql_value::{ConstValue, Value};

/// An argument: written in the document, or a variable's value.
#[derive(Clone, Debug)]
pub(crate) enum Arg {
    Literal(ConstValue),
    Variable(Name),
}

/// When a field is collected: every condition must hold.
#[derive(Clone, Debug)]
pub(crate) enum Condition {
    Skip(Arg),
    Include(Arg),
}

/// A field as the response names it, with where it is in the document (for errors).
#[derive(Debug)]
pub(crate) struct Planned<F> {
    /// The response key (the alias, else the field's name): what the response and error
    /// paths name it by.
    pub(crate) key: Name,
    /// Where the field is written in the document (an error's `locations`).
    pub(crate) pos: Pos,
    pub(crate) conditions: Vec<Condition>,
    pub(crate) field: F,
}

/// The fields selected on one object, in document order, response keys distinct.
#[derive(Debug)]
pub(crate) struct Selection<F> {
    pub(crate) fields: Vec<Planned<F>>,
}

impl<F> Selection<F> {
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Planned<F>> {
        self.fields.iter()
    }
}

/// Arguments of a connection of orders.
#[derive(Debug)]
pub(crate) struct ConnectionArgs {
    pub(crate) customer_id: Option<Arg>,
    pub(crate) status: Option<Arg>,
    pub(crate) first: Option<Arg>,
    pub(crate) after: Option<Arg>,
}

#[derive(Debug)]
pub(crate) enum RootField {
    Typename,
    Viewer(Selection<CustomerField>),
    Customer(Arg, Selection<CustomerField>),
    Order(Arg, Selection<OrderField>),
    Orders(Box<ConnectionArgs>, Selection<ConnectionField>),
    Stock(Arg, Selection<StockField>),
}

#[derive(Debug)]
pub(crate) enum CustomerField {
    Typename,
    Id,
    Name,
    Email,
    Phone,
    Tier,
    AvatarUrl,
    AvatarThumbUrl,
    CreatedAt,
    Orders(Box<ConnectionArgs>, Selection<ConnectionField>),
}

impl CustomerField {
    /// Whether the field needs the customer's record (everything but the id and orders).
    pub(crate) fn needs_record(&self) -> bool {
        !matches!(self, Self::Typename | Self::Id | Self::Orders(..))
    }
}

#[derive(Debug)]
pub(crate) enum OrderField {
    Typename,
    Id,
    Status,
    Total(Selection<MoneyField>),
    ItemCount,
    CreatedAt,
    UpdatedAt,
    Items(Selection<ItemField>),
    Customer(Selection<CustomerField>),
}

#[derive(Debug)]
pub(crate) enum ItemField {
    Typename,
    Sku,
    Quantity,
    UnitPrice(Selection<MoneyField>),
    Stock(Selection<StockField>),
}

#[derive(Debug)]
pub(crate) enum StockField {
    Typename,
    Sku,
    Name,
    Available,
    Reserved,
    WarehouseId,
    UpdatedAt,
}

#[derive(Debug)]
pub(crate) enum MoneyField {
    Typename,
    MinorUnits,
    Currency,
    Formatted,
}

#[derive(Debug)]
pub(crate) enum ConnectionField {
    Typename,
    Nodes(Selection<OrderField>),
    PageInfo(Selection<PageInfoField>),
    Edges(Selection<EdgeField>),
}

#[derive(Debug)]
pub(crate) enum EdgeField {
    Typename,
    Cursor,
    Node(Selection<OrderField>),
}

#[derive(Debug)]
pub(crate) enum PageInfoField {
    Typename,
    HasNextPage,
    EndCursor,
}

/// A variable the operation declares: its type and default.
#[derive(Debug)]
pub(crate) struct VariableSpec {
    pub(crate) name: Name,
    pub(crate) ty: InputType,
    pub(crate) nullable: bool,
    pub(crate) default: Option<ConstValue>,
}

/// The input types variables here may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InputType {
    Int,
    String,
    Id,
    Boolean,
    OrderStatus,
    /// A list of non-null or nullable elements.
    List(Box<InputType>, bool),
}

/// A planned query operation.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) variables: Vec<VariableSpec>,
    pub(crate) root: Selection<RootField>,
}

/// Why a document is not planned (it runs on async-graphql).
pub(crate) type Declined = &'static str;

struct Planner<'a> {
    document: &'a ExecutableDocument,
}

/// Plans the operation `operation_name` of `document`, or says why not.
pub(crate) fn plan(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
) -> Result<Plan, Declined> {
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), None) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get(name).ok_or("no such operation")?
        }
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().ok_or("no operation")?
        }
        _ => return Err("the operation is ambiguous"),
    };
    if operation.node.ty != OperationType::Query {
        return Err("only queries are planned");
    }
    if !operation.node.directives.is_empty() {
        return Err("operation directives");
    }
    let variables = operation
        .node
        .variable_definitions
        .iter()
        .map(|definition| {
            let (ty, nullable) = input_type(&definition.node.var_type.node)?;
            if !definition.node.directives.is_empty() {
                return Err("variable directives");
            }
            Ok(VariableSpec {
                name: definition.node.name.node.clone(),
                ty,
                nullable,
                default: definition
                    .node
                    .default_value
                    .as_ref()
                    .map(|value| value.node.clone()),
            })
        })
        .collect::<Result<Vec<_>, Declined>>()?;
    let mut planner = Planner { document };
    let root = planner.selection(&operation.node.selection_set, &[], root_field)?;
    Ok(Plan { variables, root })
}

fn input_type(ty: &Type) -> Result<(InputType, bool), Declined> {
    let base = match &ty.base {
        BaseType::Named(name) => match name.as_str() {
            "Int" => InputType::Int,
            "String" => InputType::String,
            "ID" => InputType::Id,
            "Boolean" => InputType::Boolean,
            "OrderStatus" => InputType::OrderStatus,
            _ => return Err("a variable of another type"),
        },
        BaseType::List(element) => {
            let (element, nullable) = input_type(element)?;
            InputType::List(Box::new(element), nullable)
        }
    };
    Ok((base, ty.nullable))
}

/// A field of the AST with the conditions inherited from fragments around it.
struct Collected<'a> {
    field: &'a Positioned<async_graphql::parser::types::Field>,
    conditions: Vec<Condition>,
}

impl<'a> Planner<'a> {
    /// Flattens fragments, then plans each field with `plan_field`.
    fn selection<F>(
        &mut self,
        set: &'a Positioned<SelectionSet>,
        inherited: &[Condition],
        plan_field: fn(&mut Self, &'a async_graphql::parser::types::Field) -> Result<F, Declined>,
    ) -> Result<Selection<F>, Declined>
    where
        F: SameLeaf,
    {
        let mut collected = Vec::new();
        self.collect(set, inherited, &mut collected, 0)?;
        let mut fields: Vec<Planned<F>> = Vec::with_capacity(collected.len());
        let mut seen: HashMap<Name, usize> = HashMap::new();
        for Collected { field, conditions } in collected {
            let key = field.node.response_key().node.clone();
            let planned = Planned {
                key: key.clone(),
                pos: field.pos,
                conditions,
                field: plan_field(self, &field.node)?,
            };
            match seen.get(&key) {
                Some(&index) => {
                    let first = &fields[index];
                    // The same leaf twice, unconditionally: one field in the response.
                    if !(first.conditions.is_empty()
                        && planned.conditions.is_empty()
                        && first.field.same_leaf(&planned.field))
                    {
                        return Err("a response key selected twice");
                    }
                }
                None => {
                    seen.insert(key, fields.len());
                    fields.push(planned);
                }
            }
        }
        Ok(Selection { fields })
    }

    fn collect(
        &mut self,
        set: &'a Positioned<SelectionSet>,
        inherited: &[Condition],
        out: &mut Vec<Collected<'a>>,
        depth: usize,
    ) -> Result<(), Declined> {
        if depth > 32 {
            return Err("fragments nested too deep");
        }
        for selection in &set.node.items {
            match &selection.node {
                AstSelection::Field(field) => {
                    let mut conditions = inherited.to_vec();
                    conditions.extend(self.conditions(&field.node.directives)?);
                    out.push(Collected { field, conditions });
                }
                AstSelection::FragmentSpread(spread) => {
                    let mut conditions = inherited.to_vec();
                    conditions.extend(self.conditions(&spread.node.directives)?);
                    let fragment = self
                        .document
                        .fragments
                        .get(&spread.node.fragment_name.node)
                        .ok_or("unknown fragment")?;
                    if !fragment.node.directives.is_empty() {
                        return Err("fragment directives");
                    }
                    self.collect(&fragment.node.selection_set, &conditions, out, depth + 1)?;
                }
                AstSelection::InlineFragment(inline) => {
                    let mut conditions = inherited.to_vec();
                    conditions.extend(self.conditions(&inline.node.directives)?);
                    self.collect(&inline.node.selection_set, &conditions, out, depth + 1)?;
                }
            }
        }
        Ok(())
    }

    fn conditions(
        &mut self,
        directives: &[Positioned<async_graphql::parser::types::Directive>],
    ) -> Result<Vec<Condition>, Declined> {
        directives
            .iter()
            .map(|directive| {
                let condition = directive
                    .node
                    .arguments
                    .iter()
                    .find(|(name, _)| name.node == "if")
                    .map(|(_, value)| arg(&value.node))
                    .ok_or("a directive without `if`")??;
                match directive.node.name.node.as_str() {
                    "skip" => Ok(Condition::Skip(condition)),
                    "include" => Ok(Condition::Include(condition)),
                    _ => Err("a directive other than @skip and @include"),
                }
            })
            .collect()
    }
}

fn arg(value: &Value) -> Result<Arg, Declined> {
    match value {
        Value::Variable(name) => Ok(Arg::Variable(name.clone())),
        other => other
            .clone()
            .into_const()
            .map(Arg::Literal)
            .ok_or("a variable inside a literal"),
    }
}

fn argument(
    field: &async_graphql::parser::types::Field,
    name: &str,
) -> Result<Option<Arg>, Declined> {
    field
        .arguments
        .iter()
        .find(|(n, _)| n.node == name)
        .map(|(_, value)| arg(&value.node))
        .transpose()
}

fn required(field: &async_graphql::parser::types::Field, name: &str) -> Result<Arg, Declined> {
    argument(field, name)?.ok_or("a required argument is missing")
}

fn connection_args(
    field: &async_graphql::parser::types::Field,
    with_customer: bool,
) -> Result<ConnectionArgs, Declined> {
    Ok(ConnectionArgs {
        customer_id: if with_customer {
            argument(field, "customerId")?
        } else {
            None
        },
        status: argument(field, "status")?,
        first: argument(field, "first")?,
        after: argument(field, "after")?,
    })
}

type AstField = async_graphql::parser::types::Field;

fn leaf<F>(field: &AstField, value: F) -> Result<F, Declined> {
    if field.selection_set.node.items.is_empty() {
        Ok(value)
    } else {
        Err("a selection on a leaf")
    }
}

fn root_field<'a>(planner: &mut Planner<'a>, field: &'a AstField) -> Result<RootField, Declined> {
    let set = &field.selection_set;
    Ok(match field.name.node.as_str() {
        "__typename" => leaf(field, RootField::Typename)?,
        "viewer" => RootField::Viewer(planner.selection(set, &[], customer_field)?),
        "customer" => RootField::Customer(
            required(field, "id")?,
            planner.selection(set, &[], customer_field)?,
        ),
        "order" => RootField::Order(
            required(field, "id")?,
            planner.selection(set, &[], order_field)?,
        ),
        "orders" => RootField::Orders(
            Box::new(connection_args(field, true)?),
            planner.selection(set, &[], connection_field)?,
        ),
        "stock" => RootField::Stock(
            required(field, "skus")?,
            planner.selection(set, &[], stock_field)?,
        ),
        _ => return Err("introspection or an unknown root field"),
    })
}

fn customer_field<'a>(
    planner: &mut Planner<'a>,
    field: &'a AstField,
) -> Result<CustomerField, Declined> {
    use CustomerField as C;
    Ok(match field.name.node.as_str() {
        "__typename" => leaf(field, C::Typename)?,
        "id" => leaf(field, C::Id)?,
        "name" => leaf(field, C::Name)?,
        "email" => leaf(field, C::Email)?,
        "phone" => leaf(field, C::Phone)?,
        "tier" => leaf(field, C::Tier)?,
        "avatarUrl" => leaf(field, C::AvatarUrl)?,
        "avatarThumbUrl" => leaf(field, C::AvatarThumbUrl)?,
        "createdAt" => leaf(field, C::CreatedAt)?,
        "orders" => C::Orders(
            Box::new(connection_args(field, false)?),
            planner.selection(&field.selection_set, &[], connection_field)?,
        ),
        _ => return Err("an unknown Customer field"),
    })
}

fn order_field<'a>(planner: &mut Planner<'a>, field: &'a AstField) -> Result<OrderField, Declined> {
    use OrderField as O;
    let set = &field.selection_set;
    Ok(match field.name.node.as_str() {
        "__typename" => leaf(field, O::Typename)?,
        "id" => leaf(field, O::Id)?,
        "status" => leaf(field, O::Status)?,
        "total" => O::Total(planner.selection(set, &[], money_field)?),
        "itemCount" => leaf(field, O::ItemCount)?,
        "createdAt" => leaf(field, O::CreatedAt)?,
        "updatedAt" => leaf(field, O::UpdatedAt)?,
        "items" => O::Items(planner.selection(set, &[], item_field)?),
        "customer" => O::Customer(planner.selection(set, &[], customer_field)?),
        _ => return Err("an unknown Order field"),
    })
}

fn item_field<'a>(planner: &mut Planner<'a>, field: &'a AstField) -> Result<ItemField, Declined> {
    use ItemField as I;
    let set = &field.selection_set;
    Ok(match field.name.node.as_str() {
        "__typename" => leaf(field, I::Typename)?,
        "sku" => leaf(field, I::Sku)?,
        "quantity" => leaf(field, I::Quantity)?,
        "unitPrice" => I::UnitPrice(planner.selection(set, &[], money_field)?),
        "stock" => I::Stock(planner.selection(set, &[], stock_field)?),
        _ => return Err("an unknown OrderItem field"),
    })
}

fn stock_field(_: &mut Planner<'_>, field: &AstField) -> Result<StockField, Declined> {
    use StockField as S;
    leaf(
        field,
        match field.name.node.as_str() {
            "__typename" => S::Typename,
            "sku" => S::Sku,
            "name" => S::Name,
            "available" => S::Available,
            "reserved" => S::Reserved,
            "warehouseId" => S::WarehouseId,
            "updatedAt" => S::UpdatedAt,
            _ => return Err("an unknown StockLevel field"),
        },
    )
}

fn money_field(_: &mut Planner<'_>, field: &AstField) -> Result<MoneyField, Declined> {
    use MoneyField as M;
    leaf(
        field,
        match field.name.node.as_str() {
            "__typename" => M::Typename,
            "minorUnits" => M::MinorUnits,
            "currency" => M::Currency,
            "formatted" => M::Formatted,
            _ => return Err("an unknown Money field"),
        },
    )
}

fn connection_field<'a>(
    planner: &mut Planner<'a>,
    field: &'a AstField,
) -> Result<ConnectionField, Declined> {
    use ConnectionField as C;
    let set = &field.selection_set;
    Ok(match field.name.node.as_str() {
        "__typename" => leaf(field, C::Typename)?,
        "nodes" => C::Nodes(planner.selection(set, &[], order_field)?),
        "pageInfo" => C::PageInfo(planner.selection(set, &[], page_info_field)?),
        "edges" => C::Edges(planner.selection(set, &[], edge_field)?),
        _ => return Err("an unknown OrderConnection field"),
    })
}

fn edge_field<'a>(planner: &mut Planner<'a>, field: &'a AstField) -> Result<EdgeField, Declined> {
    Ok(match field.name.node.as_str() {
        "__typename" => leaf(field, EdgeField::Typename)?,
        "cursor" => leaf(field, EdgeField::Cursor)?,
        "node" => EdgeField::Node(planner.selection(&field.selection_set, &[], order_field)?),
        _ => return Err("an unknown OrderEdge field"),
    })
}

fn page_info_field(_: &mut Planner<'_>, field: &AstField) -> Result<PageInfoField, Declined> {
    leaf(
        field,
        match field.name.node.as_str() {
            "__typename" => PageInfoField::Typename,
            "hasNextPage" => PageInfoField::HasNextPage,
            "endCursor" => PageInfoField::EndCursor,
            _ => return Err("an unknown PageInfo field"),
        },
    )
}

/// Whether two planned fields are the same leaf (so selecting both is selecting one).
pub(crate) trait SameLeaf {
    fn same_leaf(&self, other: &Self) -> bool;
}

macro_rules! same_leaf_by_discriminant {
    ($($ty:ty => [$($leaf:path),*]),* $(,)?) => {$(
        impl SameLeaf for $ty {
            fn same_leaf(&self, other: &Self) -> bool {
                std::mem::discriminant(self) == std::mem::discriminant(other)
                    && matches!(self, $($leaf)|*)
            }
        }
    )*};
}

same_leaf_by_discriminant! {
    RootField => [RootField::Typename],
    CustomerField => [
        CustomerField::Typename, CustomerField::Id, CustomerField::Name, CustomerField::Email,
        CustomerField::Phone, CustomerField::Tier, CustomerField::AvatarUrl,
        CustomerField::AvatarThumbUrl, CustomerField::CreatedAt
    ],
    OrderField => [
        OrderField::Typename, OrderField::Id, OrderField::Status, OrderField::ItemCount,
        OrderField::CreatedAt, OrderField::UpdatedAt
    ],
    ItemField => [ItemField::Typename, ItemField::Sku, ItemField::Quantity],
    StockField => [
        StockField::Typename, StockField::Sku, StockField::Name, StockField::Available,
        StockField::Reserved, StockField::WarehouseId, StockField::UpdatedAt
    ],
    MoneyField => [MoneyField::Typename, MoneyField::MinorUnits, MoneyField::Currency, MoneyField::Formatted],
    ConnectionField => [ConnectionField::Typename],
    EdgeField => [EdgeField::Typename, EdgeField::Cursor],
    PageInfoField => [PageInfoField::Typename, PageInfoField::HasNextPage, PageInfoField::EndCursor],
}
