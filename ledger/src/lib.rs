//! # ledger — Consentry's append-only signed Merkle log
//!
//! **One job:** keep a totally ordered, tamper-evident log of signed entries
//! and prove things about it to anyone: inclusion and consistency proofs
//! (RFC 6962/9162), signed checkpoints (C2SP `tlog-checkpoint` as a C2SP
//! `signed-note`, which Go's `sumdb/note` opens) and witness cosignatures
//! (C2SP `tlog-cosignature`).
//!
//! **Layout**
//! - [`entry`]: [`Envelope`] (entry bytes + Ed25519 signatures) and the
//!   [`VerifiedEntry`] witness type; JSON wire form and binary storage form.
//! - [`merkle`]: leaf/node hashing, proof generation over stored subtree
//!   hashes, proof verification, the append [`Frontier`].
//! - [`note`]: signed notes, verifier keys, checkpoints, cosignatures.
//! - [`segment`]: the append-only entry file (frames, CRCs, torn-tail
//!   recovery); the only file an acknowledgement waits for.
//! - [`store`]: the narrow [`Store`] trait and [`SledStore`] (the segment
//!   plus sled for derived data, checkpoints and cosignatures).
//! - `derived`: the derived data's way into sled: held in memory, moved in
//!   large batches by a background thread.
//! - [`log`]: [`Log`], the two-step append (enqueue fixes the position,
//!   `durable` waits for the sync), the group-commit sequencer and the read
//!   side.
//! - [`fsck`]: the whole-log check; what it finds is a [`Finding`] with a
//!   typed [`FindingKind`] (the log-level kinds an auditor's wrap).
//!
//! **Invariants**
//! - An entry is the exact bytes its author signed; the log stores them
//!   verbatim and never re-encodes them. Leaf = SHA-256(0x00 ‖ entry).
//! - Only a [`VerifiedEntry`] can be appended, and only
//!   [`Envelope::verify`] (or [`entry::verify_batch`], the same check for
//!   many) makes one, or [`Envelope::sign_verified`] for an entry signed
//!   just now with a key the registry binds to its key id.
//! - An append is acknowledged only with an index that is durable: after
//!   the `fdatasync` of the segment holding its batch returned. Readers
//!   see only the durable prefix; a checkpoint is stored and synced before
//!   it is served.
//! - Every complete subtree hash of level 3 and above is stored when it is
//!   created (in memory, then sled), so proofs need O(log n) reads and the
//!   log is never rehashed.
//! - Hashes, positions and secondary indexes are derived data: written
//!   after the entries are durable, never ahead of them, and rebuilt from
//!   the entries on open where a crash left them behind.
//!
//! **Never:** rewrite or delete an entry; interpret consent semantics (the
//! ledger sees opaque signed JSON with a `type` and `v`, and indexes only
//! the fields its owner names); speak HTTP; panic on input.

#![forbid(unsafe_code)]

mod derived;
pub mod entry;
pub mod fsck;
pub mod log;
pub mod merkle;
pub mod note;
pub mod segment;
pub mod store;

pub use entry::{EntryError, EntrySignature, Envelope, KeyLookup, StaticKeys, VerifiedEntry};
pub use fsck::{fsck, Finding, FindingKind, FsckReport};
pub use log::{FieldIndexer, Indexer, Log, LogConfig, LogError, Pending, Prepared, Reservation};
pub use merkle::{Frontier, Hash};
pub use note::{
    Checkpoint, CosignatureVerifier, Cosigner, NoteError, NoteSigner, NoteVerifier, WitnessPolicy,
};
pub use store::{IoFailure, SledStore, Store, StoreError};
