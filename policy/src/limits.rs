//! Size bounds on everything read from the ledger, so that a hostile entry
//! cannot make the state (or a replay) use unbounded memory.

/// Largest entry `parse_event` reads, in bytes. A full vocabulary with long
/// labels in two languages fits with room to spare.
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// Largest list (categories, purposes, parties, consents relied on...).
pub const MAX_LIST_ITEMS: usize = 64;
/// Largest string field other than labels.
pub const MAX_STRING_BYTES: usize = 256;
/// Largest identifier (agency, participant, consent, decision, key).
pub const MAX_ID_BYTES: usize = 128;
/// Largest plain-language label.
pub const MAX_LABEL_BYTES: usize = 256;
/// Most codes of one kind in a vocabulary.
pub const MAX_VOCABULARY_TERMS: usize = 256;
