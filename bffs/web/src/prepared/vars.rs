//! A request's variables, coerced once against the operation's declarations, so the
//! executor reads arguments without failing. Anything coercion would have to reject (a
//! wrong type, a missing non-null value) makes the request run on async-graphql instead,
//! which words the error.

use std::collections::HashMap;

use async_graphql::Name;
use async_graphql_value::ConstValue;
use switchyard_core::domain::OrderStatus;

use super::plan::{Arg, InputType, VariableSpec};

/// Coerced variable values (absent: null).
pub(crate) struct Variables(HashMap<Name, ConstValue>);

/// Whether `value` is a valid `ty` (nullable if `nullable`).
fn valid(value: &ConstValue, ty: &InputType, nullable: bool) -> bool {
    match (value, ty) {
        (ConstValue::Null, _) => nullable,
        (ConstValue::Number(n), InputType::Int) => {
            n.as_i64().is_some_and(|n| i32::try_from(n).is_ok())
        }
        (ConstValue::String(_), InputType::String | InputType::Id) => true,
        (ConstValue::Boolean(_), InputType::Boolean) => true,
        (ConstValue::String(_) | ConstValue::Enum(_), InputType::OrderStatus) => {
            status(value).is_some()
        }
        (ConstValue::List(items), InputType::List(element, element_nullable)) => {
            let element_nullable = *element_nullable;
            items
                .iter()
                .all(|item| valid(item, element, element_nullable))
        }
        _ => false,
    }
}

fn status(value: &ConstValue) -> Option<OrderStatus> {
    let name = match value {
        ConstValue::String(s) => s.as_str(),
        ConstValue::Enum(n) => n.as_str(),
        _ => return None,
    };
    Some(match name {
        "PENDING" => OrderStatus::Pending,
        "PAID" => OrderStatus::Paid,
        "SHIPPED" => OrderStatus::Shipped,
        "DELIVERED" => OrderStatus::Delivered,
        "CANCELLED" => OrderStatus::Cancelled,
        _ => return None,
    })
}

impl Variables {
    /// No variables (an operation that declares none).
    pub(crate) fn none() -> Self {
        Self(HashMap::new())
    }

    /// The values of `specs` from `given`, or `None` when one is not valid.
    pub(crate) fn coerce(specs: &[VariableSpec], given: &async_graphql::Variables) -> Option<Self> {
        let mut values = HashMap::with_capacity(specs.len());
        for spec in specs {
            let value = match given.get(&spec.name) {
                Some(value) => value.clone(),
                None => match &spec.default {
                    Some(default) => default.clone(),
                    None if spec.nullable => ConstValue::Null,
                    None => return None,
                },
            };
            if !valid(&value, &spec.ty, spec.nullable) {
                return None;
            }
            values.insert(spec.name.clone(), value);
        }
        Some(Self(values))
    }

    fn value<'a>(&'a self, arg: &'a Arg) -> &'a ConstValue {
        match arg {
            Arg::Literal(value) => value,
            Arg::Variable(name) => self.0.get(name).unwrap_or(&ConstValue::Null),
        }
    }

    /// A `Boolean!` (of `@skip`/`@include`).
    pub(crate) fn boolean(&self, arg: &Arg) -> bool {
        matches!(self.value(arg), ConstValue::Boolean(true))
    }

    /// An `ID!`.
    pub(crate) fn string(&self, arg: &Arg) -> String {
        self.optional_string(arg).unwrap_or_default()
    }

    /// An `ID` or `String`, `None` when null.
    pub(crate) fn optional_string(&self, arg: &Arg) -> Option<String> {
        match self.value(arg) {
            ConstValue::String(s) => Some(s.clone()),
            // An `ID` written as an integer literal (variables of type ID must be strings).
            ConstValue::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// An `Int`, `None` when null.
    pub(crate) fn optional_int(&self, arg: &Arg) -> Option<i32> {
        match self.value(arg) {
            ConstValue::Number(n) => n.as_i64().and_then(|n| i32::try_from(n).ok()),
            _ => None,
        }
    }

    /// An `OrderStatus`, `None` when null.
    pub(crate) fn optional_status(&self, arg: &Arg) -> Option<OrderStatus> {
        status(self.value(arg))
    }

    /// An `[ID!]!`.
    pub(crate) fn string_list(&self, arg: &Arg) -> Vec<String> {
        match self.value(arg) {
            ConstValue::List(items) => items
                .iter()
                .filter_map(|item| match item {
                    ConstValue::String(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The length of a list argument (for complexity), 0 when not a list.
    pub(crate) fn list_len(&self, arg: &Arg) -> usize {
        match self.value(arg) {
            ConstValue::List(items) => items.len(),
            _ => 0,
        }
    }
}
