//! Parsed-document cache and the document checks async-graphql does not do itself.
//!
//! Dashboards send the same few queries over and over; parsing each once and keeping the
//! result (with its alias count and shape) takes parsing off the hot path. The cache keeps
//! only documents that validated, and is bounded in entries and in bytes: when full it is
//! emptied, which keeps it simple and makes hostile unique queries cheap to evict.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};

use crate::cost::Shape;

/// A parsed document and what the handler checks about it.
pub(crate) struct ParsedDocument {
    /// The document, cloned into each request that uses it (async-graphql takes it by
    /// value).
    pub(crate) document: ExecutableDocument,
    /// Aliased fields across all operations and fragments.
    pub(crate) aliases: usize,
    /// Fields after fragment expansion and directives per field.
    pub(crate) shape: Shape,
    /// Its plan for the prepared-operation path, made on first use (`None`: the planner
    /// declined it; it stays on async-graphql).
    prepared: std::sync::OnceLock<Option<crate::prepared::Prepared>>,
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
            prepared: std::sync::OnceLock::new(),
        }
    }

    /// The plan for requests naming `operation_name`, planned the first time it is asked
    /// for; only documents that validated are asked (those the cache holds).
    pub(crate) fn prepared(
        &self,
        operation_name: Option<&str>,
    ) -> Option<&crate::prepared::Prepared> {
        self.prepared
            .get_or_init(|| crate::prepared::Prepared::new(&self.document, operation_name))
            .as_ref()
            .filter(|prepared| prepared.is_for(operation_name))
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

/// A parsed document not yet in the cache: to be remembered once it has validated.
pub(crate) struct Miss {
    query: String,
    parsed: Arc<ParsedDocument>,
}

/// Bounded cache of parsed documents keyed by query text. It holds only documents that
/// validated (a flood of invalid queries cannot fill it), at most `capacity` of them and
/// about `max_bytes` of them, estimated at [`BYTES_PER_QUERY_BYTE`] per byte of text; when
/// either bound is reached it is emptied.
pub(crate) struct DocumentCache {
    capacity: usize,
    max_bytes: usize,
    entries: Mutex<Entries>,
}

/// A parsed document takes several times its text in memory (names, positions, nested
/// vectors); this is the estimate the byte bound uses.
pub(crate) const BYTES_PER_QUERY_BYTE: usize = 8;

#[derive(Default)]
struct Entries {
    documents: HashMap<String, Arc<ParsedDocument>>,
    bytes: usize,
}

impl DocumentCache {
    /// A cache holding at most `capacity` documents and about `max_bytes` of them (0
    /// disables caching).
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            capacity,
            max_bytes,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// The parsed form of `query`, if the cache holds it.
    pub(crate) fn get(&self, query: &str) -> Option<Arc<ParsedDocument>> {
        self.lock().documents.get(query).map(Arc::clone)
    }

    /// The parsed form of `query`, and, on a miss, what to [`DocumentCache::remember`]
    /// once it has validated.
    pub(crate) fn get_or_parse(
        &self,
        query: &str,
    ) -> Result<(Arc<ParsedDocument>, Option<Miss>), async_graphql::Error> {
        if let Some(hit) = self.lock().documents.get(query) {
            return Ok((Arc::clone(hit), None));
        }
        let document = async_graphql::parser::parse_query(query)
            .map_err(|e| async_graphql::Error::new(e.to_string()))?;
        let parsed = Arc::new(ParsedDocument::new(document));
        let miss = (self.capacity > 0).then(|| Miss {
            query: query.to_owned(),
            parsed: Arc::clone(&parsed),
        });
        Ok((parsed, miss))
    }

    /// Keeps a document that validated.
    pub(crate) fn remember(&self, miss: Miss) {
        let size = miss.query.len() * BYTES_PER_QUERY_BYTE;
        if size > self.max_bytes {
            return;
        }
        let mut entries = self.lock();
        if entries.documents.len() >= self.capacity || entries.bytes + size > self.max_bytes {
            entries.documents.clear();
            entries.bytes = 0;
        }
        if entries.documents.insert(miss.query, miss.parsed).is_none() {
            entries.bytes += size;
        }
    }

    /// Documents held (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().documents.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_counted_in_operations_and_fragments() {
        let cache = DocumentCache::new(4, 1 << 20);
        let (doc, _) = cache
            .get_or_parse("{ a: viewer { n: name } ...F } fragment F on Query { b: viewer { id } }")
            .expect("valid query");
        assert_eq!(doc.aliases, 3);
    }

    #[test]
    fn the_selected_operation_type_is_found_by_name() {
        let cache = DocumentCache::new(0, 0);
        let (doc, _) = cache
            .get_or_parse("query A { viewer { id } } mutation B { x }")
            .expect("valid document");
        assert_eq!(doc.operation_type(Some("B")), Some(OperationType::Mutation));
        assert_eq!(doc.operation_type(Some("A")), Some(OperationType::Query));
        assert_eq!(doc.operation_type(None), None);
    }
}

#[cfg(test)]
mod bounds {
    use super::*;

    #[test]
    fn only_remembered_documents_are_kept_and_the_byte_bound_empties_the_cache() {
        let cache = DocumentCache::new(100, 48 * BYTES_PER_QUERY_BYTE);
        let (_, miss) = cache.get_or_parse("{ viewer { id } }").expect("parses");
        assert_eq!(cache.len(), 0, "not kept before it validated");
        cache.remember(miss.expect("a miss"));
        assert_eq!(cache.len(), 1);
        let (_, hit) = cache.get_or_parse("{ viewer { id } }").expect("parses");
        assert!(hit.is_none(), "served from the cache");
        // 48 bytes of text at most: after the first query's 17, a 39-byte one does not
        // fit, so the cache is emptied before it is kept.
        let long = "{ viewer { id name email phone tier } }";
        let (_, miss) = cache.get_or_parse(long).expect("parses");
        cache.remember(miss.expect("a miss"));
        assert_eq!(cache.len(), 1);
        let (_, first_again) = cache.get_or_parse("{ viewer { id } }").expect("parses");
        assert!(
            first_again.is_some(),
            "the first query went with the emptying"
        );
    }
}
