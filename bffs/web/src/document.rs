//! Parsed-document cache and the document checks async-graphql does not do itself.
//!
//! Dashboards send the same few queries over and over; parsing each once and keeping the
//! result (with its alias count) takes parsing off the hot path. The cache is bounded: when
//! full it is emptied, which keeps it simple and makes hostile unique queries cheap to evict.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};

use crate::cost::Shape;

/// A parsed document and what the handler checks about it.
pub(crate) struct ParsedDocument {
    /// The document, cloned into each request that uses it.
    pub(crate) document: ExecutableDocument,
    /// Aliased fields across all operations and fragments.
    pub(crate) aliases: usize,
    /// Fields after fragment expansion and directives per field.
    pub(crate) shape: Shape,
}

impl ParsedDocument {
    fn new(document: ExecutableDocument) -> Self {
        let mut aliases = 0;
        match &document.operations {
            DocumentOperations::Single(op) => aliases += count_aliases(&op.node.selection_set),
            DocumentOperations::Multiple(ops) => {
                for op in ops.values() {
                    aliases += count_aliases(&op.node.selection_set);
                }
            }
        }
        for fragment in document.fragments.values() {
            aliases += count_aliases(&fragment.node.selection_set);
        }
        let shape = Shape::of(&document);
        Self {
            document,
            aliases,
            shape,
        }
    }

    /// The type of the operation a request would run (`None` if it cannot be told: no such
    /// operation, or several without a name; execution reports that).
    pub(crate) fn operation_type(&self, operation_name: Option<&str>) -> Option<OperationType> {
        match (&self.document.operations, operation_name) {
            (DocumentOperations::Single(op), None) => Some(op.node.ty),
            (DocumentOperations::Single(_), Some(_)) => None,
            (DocumentOperations::Multiple(ops), Some(name)) => ops
                .iter()
                .find(|(n, _)| n.as_str() == name)
                .map(|(_, op)| op.node.ty),
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
                ops.values().next().map(|op| op.node.ty)
            }
            (DocumentOperations::Multiple(_), None) => None,
        }
    }
}

fn count_aliases(set: &Positioned<SelectionSet>) -> usize {
    set.node
        .items
        .iter()
        .map(|selection| match &selection.node {
            Selection::Field(field) => {
                usize::from(field.node.alias.is_some()) + count_aliases(&field.node.selection_set)
            }
            Selection::InlineFragment(fragment) => count_aliases(&fragment.node.selection_set),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

/// Bounded cache of parsed documents keyed by query text.
pub(crate) struct DocumentCache {
    capacity: usize,
    entries: Mutex<HashMap<String, Arc<ParsedDocument>>>,
}

impl DocumentCache {
    /// A cache holding at most `capacity` documents (0 disables caching).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The parsed form of `query`, parsing it on a miss.
    pub(crate) fn get_or_parse(
        &self,
        query: &str,
    ) -> Result<Arc<ParsedDocument>, async_graphql::Error> {
        if let Some(hit) = self.lock().get(query) {
            return Ok(Arc::clone(hit));
        }
        let document = async_graphql::parser::parse_query(query)
            .map_err(|e| async_graphql::Error::new(e.to_string()))?;
        let parsed = Arc::new(ParsedDocument::new(document));
        if self.capacity > 0 {
            let mut entries = self.lock();
            if entries.len() >= self.capacity {
                entries.clear();
            }
            entries.insert(query.to_owned(), Arc::clone(&parsed));
        }
        Ok(parsed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ParsedDocument>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_counted_in_operations_and_fragments() {
        let cache = DocumentCache::new(4);
        let doc = cache
            .get_or_parse("{ a: viewer { n: name } ...F } fragment F on Query { b: viewer { id } }")
            .expect("valid query");
        assert_eq!(doc.aliases, 3);
    }

    #[test]
    fn the_selected_operation_type_is_found_by_name() {
        let cache = DocumentCache::new(0);
        let doc = cache
            .get_or_parse("query A { viewer { id } } mutation B { x }")
            .expect("valid document");
        assert_eq!(doc.operation_type(Some("B")), Some(OperationType::Mutation));
        assert_eq!(doc.operation_type(Some("A")), Some(OperationType::Query));
        assert_eq!(doc.operation_type(None), None);
    }
}
