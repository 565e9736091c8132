//! The whole-log check: re-verifies a store from index 0 like `fsck`.
//!
//! Every record decodes, every signature verifies, every stored hash equals
//! the hash recomputed from the entries, and the root at the latest
//! checkpoint's size equals the checkpoint's root. The first problem found
//! is reported with its entry index. Hashes not yet derived (after a crash,
//! rebuilt on the next open) are recomputed, not compared.
//!
//! Needs only public keys, and never writes: [`fsck_path`] opens the store
//! read-only.

use thiserror::Error;

use crate::entry::{verify_batch, EntryError, Envelope, KeyLookup};
use crate::log::STORED_LEVEL_MIN;
use crate::merkle::{self, Frontier};
use crate::note::{Checkpoint, NoteError, NoteVerifier};
use crate::store::{SledStore, Store, StoreError};

/// Records read and verified per round; bounds memory.
const CHUNK_ENTRIES: u64 = 8192;

/// The first problem the check found, at the index of the entry it is in
/// (or where the log ends, for what is about the whole log).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("entry {index}: {kind}")]
pub struct Finding {
    pub index: u64,
    pub kind: FindingKind,
}

/// What the check found wrong. These are the log-level kinds: they need
/// no consent semantics, so the ledger owns them and an auditor's own
/// kinds wrap them. Each says what it needs; the prose is what the CLI
/// prints.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FindingKind {
    #[error("cannot open the store: {0}")]
    Unopenable(StoreError),
    #[error("cannot read the log size: {0}")]
    SizeUnreadable(StoreError),
    #[error("cannot read the derived size: {0}")]
    DerivedSizeUnreadable(StoreError),
    #[error("cannot read the checkpoint: {0}")]
    CheckpointUnreadable(StoreError),
    #[error("no checkpoint")]
    NoCheckpoint,
    #[error("checkpoint does not verify: {0}")]
    CheckpointInvalid(NoteError),
    #[error("the checkpoint covers {checkpoint_size} entries but the log holds {size}: truncated")]
    Truncated { checkpoint_size: u64, size: u64 },
    #[error("cannot read entry: {0}")]
    EntryUnreadable(StoreError),
    #[error("entry is missing")]
    EntryMissing,
    #[error("entry record is corrupt: {0}")]
    EntryCorrupt(EntryError),
    #[error("the verifier returned {got} results for {wanted} entries")]
    VerifierShort { got: usize, wanted: usize },
    #[error("entry does not verify: {0}")]
    Unverified(EntryError),
    /// `node` counts the subtrees of 2^`level` entries from the left.
    #[error("stored hash at level {level} index {node} does not match the entries")]
    HashMismatch { level: u8, node: u64 },
    #[error("stored hash at level {level} index {node} is missing")]
    HashMissing { level: u8, node: u64 },
    #[error("cannot read hash: {0}")]
    HashUnreadable(StoreError),
    #[error("the root at the checkpoint's size differs from the checkpoint")]
    RootMismatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsckReport {
    pub size: u64,
    pub checkpoint_size: u64,
    pub root: merkle::Hash,
}

fn finding(index: u64, kind: FindingKind) -> Finding {
    Finding { index, kind }
}

/// Checks the whole store. `keys` must know every key that signed any entry
/// (an auditor collects them from the registry entries first); `log_key`
/// verifies the checkpoint. `threads` > 1 verifies signatures in parallel.
pub fn fsck(
    store: &dyn Store,
    keys: &(dyn KeyLookup + Sync),
    log_key: &NoteVerifier,
    threads: usize,
    mut progress: impl FnMut(u64, u64),
) -> Result<FsckReport, Finding> {
    let size = store
        .size()
        .map_err(|e| finding(0, FindingKind::SizeUnreadable(e)))?;
    let derived_size = store
        .derived_size()
        .map_err(|e| finding(0, FindingKind::DerivedSizeUnreadable(e)))?;
    // The checkpoint first, so that the pass can note the root at its size
    // from the recomputed tree (the lowest levels are never stored).
    let note = store
        .checkpoint()
        .map_err(|e| finding(size, FindingKind::CheckpointUnreadable(e)))?
        .ok_or_else(|| finding(size, FindingKind::NoCheckpoint))?;
    let cp = Checkpoint::open(&note, log_key)
        .map_err(|e| finding(size, FindingKind::CheckpointInvalid(e)))?;
    if cp.size > size {
        return Err(finding(
            size,
            FindingKind::Truncated {
                checkpoint_size: cp.size,
                size,
            },
        ));
    }
    let mut checkpoint_root = None;
    let mut frontier = Frontier::new();
    let mut start = 0u64;
    while start < size {
        let end = (start + CHUNK_ENTRIES).min(size);
        let mut envs = Vec::with_capacity((end - start) as usize);
        for i in start..end {
            let rec = store
                .record(i)
                .map_err(|e| finding(i, FindingKind::EntryUnreadable(e)))?
                .ok_or_else(|| finding(i, FindingKind::EntryMissing))?;
            envs.push(
                Envelope::decode(&rec).map_err(|e| finding(i, FindingKind::EntryCorrupt(e)))?,
            );
        }
        let wanted = envs.len();
        let results = verify_parallel(envs, keys, threads);
        if results.len() != wanted {
            return Err(finding(
                start,
                FindingKind::VerifierShort {
                    got: results.len(),
                    wanted,
                },
            ));
        }
        for (k, r) in results.into_iter().enumerate() {
            let i = start + k as u64;
            let v = r.map_err(|e| finding(i, FindingKind::Unverified(e)))?;
            let mut bad: Option<Finding> = None;
            frontier.push(v.leaf_hash(), |level, idx, h| {
                // Lower levels are computed from entries, never stored; a
                // hash covering entries without derived data is not stored yet.
                if bad.is_some() || level < STORED_LEVEL_MIN || ((idx + 1) << level) > derived_size
                {
                    return;
                }
                match store.hash(level, idx) {
                    Ok(Some(stored)) if &stored == h => {}
                    Ok(Some(_)) => {
                        bad = Some(finding(
                            idx << level,
                            FindingKind::HashMismatch { level, node: idx },
                        ))
                    }
                    Ok(None) => {
                        bad = Some(finding(
                            idx << level,
                            FindingKind::HashMissing { level, node: idx },
                        ))
                    }
                    Err(e) => bad = Some(finding(idx << level, FindingKind::HashUnreadable(e))),
                }
            });
            if let Some(f) = bad {
                return Err(f);
            }
            if frontier.size() == cp.size {
                checkpoint_root = Some(frontier.root());
            }
        }
        progress(end, size);
        start = end;
    }
    let root = checkpoint_root.unwrap_or_else(merkle::empty_root);
    if root != cp.root {
        return Err(finding(
            cp.size.saturating_sub(1),
            FindingKind::RootMismatch,
        ));
    }
    Ok(FsckReport {
        size,
        checkpoint_size: cp.size,
        root: frontier.root(),
    })
}

/// Batch-verifies `envs` split across `threads` scoped threads, in order:
/// exactly one result per envelope, even if a thread fails.
pub fn verify_parallel(
    envs: Vec<Envelope>,
    keys: &(dyn KeyLookup + Sync),
    threads: usize,
) -> Vec<Result<crate::VerifiedEntry, crate::EntryError>> {
    const SUB_BATCH: usize = 64;
    let threads = threads.max(1);
    if threads == 1 || envs.len() < SUB_BATCH * 2 {
        return envs
            .chunks(SUB_BATCH)
            .flat_map(|c| verify_batch(c.to_vec(), keys))
            .collect();
    }
    let per = envs.len().div_ceil(threads);
    let parts: Vec<Vec<Envelope>> = envs.chunks(per).map(|c| c.to_vec()).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| {
                let n = part.len();
                let h = s.spawn(move || {
                    part.chunks(SUB_BATCH)
                        .flat_map(|c| verify_batch(c.to_vec(), keys))
                        .collect::<Vec<_>>()
                });
                (n, h)
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(n, h)| match h.join() {
                Ok(r) if r.len() == n => r,
                // A panicked (or short) part must not shift the results
                // of the parts after it onto the wrong entries.
                _ => (0..n)
                    .map(|_| Err(crate::EntryError::VerifierFailed))
                    .collect(),
            })
            .collect()
    })
}

/// Opens a stopped store read-only for a check: the open itself checks
/// every frame's checksum, and a damaged or lost entry is a finding at its
/// index.
pub fn open_for_check(path: &std::path::Path) -> Result<SledStore, Finding> {
    let store = SledStore::open_read_only(path).map_err(|e| {
        let index = match &e {
            StoreError::Damaged { index, .. } => *index,
            StoreError::Lost { have, .. } => *have,
            _ => 0,
        };
        finding(index, FindingKind::Unopenable(e))
    })?;
    Ok(store)
}

/// Opens a stopped store read-only and checks it (the CLI's helper).
pub fn fsck_path(
    path: &std::path::Path,
    keys: &(dyn KeyLookup + Sync),
    log_key: &NoteVerifier,
) -> Result<FsckReport, Finding> {
    let store = open_for_check(path)?;
    fsck(&store, keys, log_key, 2, |_, _| {})
}
