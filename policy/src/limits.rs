//! Size bounds on every field read from the ledger, so that a hostile entry
//! cannot make the state (or a replay) use unbounded memory.
//!
//! The entry as a whole is bounded by the ledger, which refuses entries
//! over `ledger::entry::ENTRY_BYTES_MAX` (16 KiB): that is the one entry
//! limit, and policy (which does not depend on the ledger crate) keeps no
//! copy of it. The budgets below make sure that every vocabulary and rule
//! set policy accepts still fits in one such entry; a test in `event.rs`
//! builds the largest one and checks it.

use serde::Serialize;

/// Largest list (categories, purposes, parties, consents relied on...).
pub const LIST_ITEMS_MAX: usize = 64;
/// Largest string field other than labels.
pub const STRING_BYTES_MAX: usize = 256;
/// Largest identifier (agency, participant, consent, decision, key).
pub const ID_BYTES_MAX: usize = 128;
/// Largest code (category, purpose, class).
pub const CODE_BYTES_MAX: usize = 128;
/// Largest plain-language label.
pub const LABEL_BYTES_MAX: usize = 256;
/// Most codes of one kind in a vocabulary.
pub const VOCABULARY_TERMS_MAX: usize = 256;
/// Largest vocabulary, as compact JSON (the form a `governance.rules`
/// entry carries). The shipped default is about 3 KiB.
pub const VOCABULARY_JSON_BYTES_MAX: usize = 12 * 1024;
/// Largest rule set, as compact JSON. The shipped default is about 330 bytes.
pub const RULES_JSON_BYTES_MAX: usize = 2 * 1024;

/// Counts bytes instead of keeping them.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(bytes.len());
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The length of `value` as compact JSON, without building it; `None` if
/// it does not serialise (which a budget check treats as too large).
pub fn json_len<T: Serialize + ?Sized>(value: &T) -> Option<usize> {
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, value).ok()?;
    Some(counter.0)
}
