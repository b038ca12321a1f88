//! What a GraphQL document may cost, bounded before execution and in time linear in the
//! document, so that a small hostile document cannot occupy a worker.
//!
//! - Before parsing, one pass over the text counts tokens and the nesting of `{`, `[` and
//!   `(`: the parser recurses on nesting, so a deep document is refused before it runs.
//! - After parsing, every operation's fields are counted *after fragment expansion*, with
//!   each fragment's count computed once (memoised), so fragments that spread each other
//!   twice over (an exponential document of a kilobyte) cost a few steps, not 2^n; a field
//!   duplicated hundreds of times counts hundreds. `__typename` and introspection fields
//!   count like any other. The same walk finds the most directives on one field.
//!
//! Every refusal is `QUERY_TOO_COMPLEX`, decided on the document's structure rather than on
//! async-graphql's wording.

use std::collections::HashMap;

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};

/// Why a document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TooCostly {
    /// More lexical tokens than `graphql.max_tokens`.
    #[error("query has more than {0} tokens")]
    Tokens(usize),
    /// Brackets nested deeper than `graphql.max_nesting`.
    #[error("query nests brackets deeper than {0}")]
    Nesting(usize),
    /// More fields after fragment expansion than `graphql.max_fields`.
    #[error("query selects {found} fields once its fragments are expanded; the limit is {limit}")]
    Fields {
        /// Fields counted (saturating).
        found: u64,
        /// The limit.
        limit: usize,
    },
    /// A field with more directives than `graphql.max_directives`.
    #[error("a field carries {found} directives; the limit is {limit}")]
    Directives {
        /// Directives on the worst field.
        found: usize,
        /// The limit.
        limit: usize,
    },
}

/// Counts tokens and bracket nesting in one pass; refuses at the first limit crossed.
pub(crate) fn scan(query: &str, max_tokens: usize, max_nesting: usize) -> Result<(), TooCostly> {
    let bytes = query.as_bytes();
    let (mut tokens, mut depth, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                // A string (or block string) is one token; skip to its end.
                tokens += 1;
                if bytes[i..].starts_with(b"\"\"\"") {
                    i += 3;
                    while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 3;
                } else {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
            }
            b'{' | b'[' | b'(' => {
                tokens += 1;
                depth += 1;
                if depth > max_nesting {
                    return Err(TooCostly::Nesting(max_nesting));
                }
                i += 1;
            }
            b'}' | b']' | b')' => {
                tokens += 1;
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => {
                tokens += 1;
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' => {
                tokens += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || matches!(bytes[i], b'_' | b'.' | b'-' | b'+'))
                {
                    i += 1;
                }
            }
            _ => {
                tokens += 1;
                i += 1;
            }
        }
        if tokens > max_tokens {
            return Err(TooCostly::Tokens(max_tokens));
        }
    }
    Ok(())
}

/// Fields after fragment expansion, and the most directives on one field, of a parsed
/// document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Fields of the costliest operation, fragments expanded (saturating).
    pub(crate) fields: u64,
    /// The most directives found on one field.
    pub(crate) max_directives: usize,
}

impl Shape {
    /// Measures `document`. A fragment spread that cycles back to itself counts as
    /// unbounded (validation refuses such documents anyway).
    pub(crate) fn of(document: &ExecutableDocument) -> Self {
        let mut memo: HashMap<&str, Option<u64>> = HashMap::new();
        let mut max_directives = 0;
        for fragment in document.fragments.values() {
            max_directives = max_directives.max(directives_in(&fragment.node.selection_set));
        }
        let operations: Vec<&Positioned<SelectionSet>> = match &document.operations {
            DocumentOperations::Single(op) => vec![&op.node.selection_set],
            DocumentOperations::Multiple(ops) => {
                ops.values().map(|op| &op.node.selection_set).collect()
            }
        };
        let mut fields = 0u64;
        for set in operations {
            max_directives = max_directives.max(directives_in(set));
            fields = fields.max(count(document, set, &mut memo));
        }
        Self {
            fields,
            max_directives,
        }
    }

    /// Refuses a shape over `max_fields` or `max_directives`.
    pub(crate) fn check(&self, max_fields: usize, max_directives: usize) -> Result<(), TooCostly> {
        if self.fields > max_fields as u64 {
            return Err(TooCostly::Fields {
                found: self.fields,
                limit: max_fields,
            });
        }
        if self.max_directives > max_directives {
            return Err(TooCostly::Directives {
                found: self.max_directives,
                limit: max_directives,
            });
        }
        Ok(())
    }
}

/// Fields in `set` with fragments expanded; each fragment is counted once (`memo`: `None`
/// while it is being counted, which marks a cycle).
fn count<'a>(
    document: &'a ExecutableDocument,
    set: &'a Positioned<SelectionSet>,
    memo: &mut HashMap<&'a str, Option<u64>>,
) -> u64 {
    let mut total = 0u64;
    for selection in &set.node.items {
        let n = match &selection.node {
            Selection::Field(field) => {
                1u64.saturating_add(count(document, &field.node.selection_set, memo))
            }
            Selection::InlineFragment(fragment) => {
                count(document, &fragment.node.selection_set, memo)
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                match memo.get(name) {
                    Some(Some(known)) => *known,
                    Some(None) => u64::MAX,
                    None => match document.fragments.get(&spread.node.fragment_name.node) {
                        Some(fragment) => {
                            memo.insert(name, None);
                            let n = count(document, &fragment.node.selection_set, memo);
                            memo.insert(name, Some(n));
                            n
                        }
                        None => 0,
                    },
                }
            }
        };
        total = total.saturating_add(n);
    }
    total
}

/// The most directives on one field (or fragment spread) in `set`, not following spreads
/// (every fragment definition is visited on its own).
fn directives_in(set: &Positioned<SelectionSet>) -> usize {
    set.node
        .items
        .iter()
        .map(|selection| match &selection.node {
            Selection::Field(field) => field
                .node
                .directives
                .len()
                .max(directives_in(&field.node.selection_set)),
            Selection::InlineFragment(fragment) => fragment
                .node
                .directives
                .len()
                .max(directives_in(&fragment.node.selection_set)),
            Selection::FragmentSpread(spread) => spread.node.directives.len(),
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(query: &str) -> Shape {
        Shape::of(&async_graphql::parser::parse_query(query).expect("valid"))
    }

    #[test]
    fn fields_are_counted_after_fragment_expansion_once_per_fragment() {
        assert_eq!(shape("{ viewer { id name } }").fields, 3);
        assert_eq!(
            shape("{ ...F ...F } fragment F on Query { viewer { id __typename } }").fields,
            6
        );
        // 40 levels of fragments each spreading the next twice: 2^40 fields, counted in
        // 40 steps.
        let mut query = String::from("{ ...F0 }");
        for n in 0..40 {
            query.push_str(&format!(
                " fragment F{n} on Query {{ ...F{} ...F{} }}",
                n + 1,
                n + 1
            ));
        }
        query.push_str(" fragment F40 on Query { __typename }");
        assert_eq!(shape(&query).fields, 1 << 40);
    }

    #[test]
    fn directives_are_counted_per_field() {
        assert_eq!(shape("{ viewer @a @b { id @c } }").max_directives, 2);
    }

    #[test]
    fn tokens_and_nesting_are_bounded_before_parsing() {
        assert_eq!(scan("{ viewer { id } }", 100, 10), Ok(()));
        assert_eq!(scan("{ a b c d }", 3, 10), Err(TooCostly::Tokens(3)));
        let deep = "{".repeat(10_000);
        assert_eq!(scan(&deep, 1_000_000, 64), Err(TooCostly::Nesting(64)));
        // Strings and comments are one token or none, whatever they hold.
        assert_eq!(scan("{ a(x: \"{{{{ b c d\") } # {{{{ e f", 10, 3), Ok(()));
    }
}
