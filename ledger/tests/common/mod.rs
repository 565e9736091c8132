//! What the ledger's tests and bench share: the field indexer their logs
//! open with. The ledger names no fields of its own (its owner hands them
//! over), and these tests must not depend on `policy`, so the list is
//! theirs: the fields of the Consentry-shaped entries they write, the same
//! ones `policy::INDEXED_FIELDS` names.

use std::sync::Arc;

use ledger::FieldIndexer;

/// `(index kind, field)` pairs.
const INDEXED_FIELDS: [(&str, &str); 6] = [
    ("participant", "participant"),
    ("consent", "consent_id"),
    ("agency", "agency"),
    ("agency", "requester"),
    ("agency", "holder"),
    ("agency", "assisted_by"),
];

pub fn indexer() -> Arc<FieldIndexer> {
    Arc::new(FieldIndexer::new(&INDEXED_FIELDS))
}
