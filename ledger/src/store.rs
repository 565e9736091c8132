//! The narrow storage interface and its embedded implementation.
//!
//! A store holds the entries (the truth) and data derived from them:
//! complete-subtree hashes by (level, index) and secondary-index keys; plus
//! checkpoints and witness cosignatures.
//! [`Store::append`] is the only way the log grows: it returns only after
//! the entries are durable.
//!
//! [`SledStore`] keeps the entries in an append-only [`Segment`] file,
//! synced with `fdatasync` before any append returns, and everything
//! derived in sled, written after that sync without one of its own: after
//! a crash the derived data may lag the segment, never lead it, and
//! [`crate::Log::open`] rebuilds the lagging tail from the entries. Where
//! each entry lies is kept in memory, found by scanning the segment on open
//! (which checks every frame's checksum). The index keys and stored hash
//! levels reach sled through `DerivedTree`: held in memory, moved into
//! sled in large batches by a background thread, since the sled write was
//! the measured bottleneck of the append path.
//! Checkpoints and cosignatures are synced (sled's flush, then
//! `fdatasync` of sled's data file) before they are served or acknowledged.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use thiserror::Error;

use crate::derived::{be_u64 as be_u64_derived, DerivedError, DerivedTree};
pub use crate::derived::{KEY_HASH, KEY_INDEX};
use crate::merkle::{Hash, NodeSource, ProofError};
use crate::segment::{RecordPos, Segment};

/// The entry segment's file name inside a store directory.
pub const SEGMENT_FILE: &str = "entries";
/// sled's directory inside a store directory.
pub const SLED_DIR: &str = "sled";
/// sled tree names, public so tools and tamper tests can find raw data.
pub const TREE_DERIVED: &str = "derived";
pub const TREE_CHECKPOINTS: &str = "checkpoints";
pub const TREE_COSIGS: &str = "cosigs";
/// Checkpoints kept for witnesses to cosign; older ones (and their
/// cosignatures) are pruned.
pub const CHECKPOINTS_KEPT_MAX: usize = 1024;

/// An I/O failure: what was being done, in words, and the `io::Error`
/// the system gave (when it gave one), kept whole: its kind tells a full
/// disk from a missing file or a refused permission.
#[derive(Clone, Debug)]
pub struct IoFailure {
    /// The whole sentence, the system's error included.
    what: String,
    error: Option<std::sync::Arc<std::io::Error>>,
}

impl IoFailure {
    /// `what` was being done when `error` came.
    pub fn new(what: &str, error: std::io::Error) -> Self {
        Self {
            what: format!("{what}: {error}"),
            error: Some(std::sync::Arc::new(error)),
        }
    }

    /// A failure the system did not report (a bound of the format, say).
    pub fn message(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            error: None,
        }
    }

    /// The system's error, said as it said it.
    pub fn of(error: std::io::Error) -> Self {
        Self {
            what: error.to_string(),
            error: Some(std::sync::Arc::new(error)),
        }
    }

    pub fn io_error(&self) -> Option<&std::io::Error> {
        self.error.as_deref()
    }

    pub fn kind(&self) -> Option<std::io::ErrorKind> {
        self.error.as_ref().map(|e| e.kind())
    }
}

impl std::fmt::Display for IoFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

/// Equal when they say the same and are of the same kind (an
/// `io::Error` itself has no equality).
impl PartialEq for IoFailure {
    fn eq(&self, other: &Self) -> bool {
        self.what == other.what && self.kind() == other.kind()
    }
}

impl Eq for IoFailure {}

// Clone and Eq so that a finding can carry the error it was (fsck).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum StoreError {
    #[error("storage i/o failed: {0}")]
    Io(IoFailure),
    /// Another process holds the segment: a check of a running gateway.
    #[error(
        "storage i/o failed: the entry segment is locked by another process (is the gateway running?)"
    )]
    Locked,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("append at {got} does not follow the log size {size}")]
    OutOfOrder { got: u64, size: u64 },
    #[error("the entry segment is damaged at entry {index}: {detail}")]
    Damaged { index: u64, detail: String },
    #[error(
        "{what} covers {want} entries but the segment holds {have}: acknowledged entries were lost"
    )]
    Lost {
        what: &'static str,
        have: u64,
        want: u64,
    },
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        let what = e.to_string();
        match e {
            sled::Error::Io(io) => StoreError::Io(IoFailure {
                what,
                error: Some(std::sync::Arc::new(io)),
            }),
            _ => StoreError::Io(IoFailure::message(what)),
        }
    }
}

impl From<DerivedError> for StoreError {
    fn from(e: DerivedError) -> Self {
        match e {
            DerivedError::Corrupt(what) => StoreError::Corrupt(what.into()),
            DerivedError::OutOfOrder { got, size } => StoreError::OutOfOrder { got, size },
            other => StoreError::Io(IoFailure::message(other.to_string())),
        }
    }
}

/// Data derived from entries `first..first + count`: rebuildable at will.
#[derive(Debug, Default)]
pub struct Derived {
    pub first: u64,
    pub count: u64,
    /// Every complete-subtree hash these entries create: (level, index, hash).
    pub hashes: Vec<(u8, u64, Hash)>,
    /// Secondary-index keys: (kind, key, entry index).
    pub index_keys: Vec<(String, String, u64)>,
}

/// One group-commit batch, fully prepared by the sequencer.
#[derive(Debug, Default)]
pub struct AppendBatch {
    /// Encoded envelopes, verbatim, in index order from `derived.first`.
    pub records: Vec<Vec<u8>>,
    pub derived: Derived,
}

/// What the log needs from storage; small so that a PostgreSQL back end can
/// implement it for several stateless gateway replicas.
pub trait Store: Send + Sync {
    /// Number of durable entries.
    fn size(&self) -> Result<u64, StoreError>;
    /// Number of entries whose derived data is stored (≤ `size`).
    fn derived_size(&self) -> Result<u64, StoreError>;
    /// Appends the records durably, then stores their derived data. Returns
    /// only after the records are durable; on error the outcome is unknown
    /// until the store is reopened.
    fn append(&self, batch: &AppendBatch) -> Result<(), StoreError>;
    /// Stores derived data for entries already durable (a rebuild).
    fn put_derived(&self, derived: &Derived) -> Result<(), StoreError>;
    /// The encoded envelope at `index`.
    fn record(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError>;
    /// The hash of the complete subtree at (`level`, `index`).
    fn hash(&self, level: u8, index: u64) -> Result<Option<Hash>, StoreError>;
    /// Every stored hash at `level_min` or above, for the in-memory cache.
    fn hashes_from_level(&self, level_min: u8) -> Result<Vec<(u8, u64, Hash)>, StoreError>;
    /// Entry indexes under (`kind`, `key`) below `before`, newest first.
    fn lookup(
        &self,
        kind: &str,
        key: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError>;
    /// Replaces every secondary-index key (a rebuild from the entries).
    fn replace_index(&self, keys: &[(String, String, u64)]) -> Result<(), StoreError>;
    /// Stores a checkpoint for `size` durably; keeps the recent ones.
    fn put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError>;
    /// The latest checkpoint.
    fn checkpoint(&self) -> Result<Option<String>, StoreError>;
    /// The kept checkpoint for `size`, if any.
    fn checkpoint_at(&self, size: u64) -> Result<Option<String>, StoreError>;
    /// Stores a witness's cosignature line for the checkpoint at `size`
    /// durably.
    fn put_cosignature(&self, size: u64, name: &str, line: &str) -> Result<(), StoreError>;
    fn cosignatures(&self, size: u64) -> Result<Vec<String>, StoreError>;
}

fn be_u64(b: &[u8]) -> Result<u64, StoreError> {
    Ok(be_u64_derived(b)?)
}

/// A private copy of the sled directory, removed on drop: sled 0.34 has no
/// read-only mode, and a check must never write to the store it checks.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The embedded store: an entry segment plus sled for everything derived.
pub struct SledStore {
    segment: Segment,
    db: sled::Db,
    /// sled's data file, for the `fdatasync` that sled's own flush lacks.
    db_file: File,
    derived: DerivedTree,
    checkpoints: sled::Tree,
    cosigs: sled::Tree,
    /// Where each entry lies, from the scan on open plus every append: 8
    /// bytes an entry, and no write per entry on the append path.
    positions: RwLock<Vec<u64>>,
    kept: Mutex<VecDeque<u64>>,
    timings: AppendTimings,
    _scratch: Option<ScratchDir>,
}

/// Where append time goes, for the benchmark and metrics: the segment's
/// write and `fdatasync` (what an acknowledgement waits for) against the
/// derived data's sled write.
#[derive(Debug, Default)]
pub struct AppendTimings {
    pub batches: AtomicU64,
    pub segment_nanos: AtomicU64,
    pub derived_nanos: AtomicU64,
}

/// How long `open` waits for sled's lock after another handle let go.
const LOCK_WAIT_MS_MAX: u64 = 5_000;

/// Opens sled, waiting briefly for its file lock: after a `Db` is dropped,
/// sled's threads release the lock a moment later. Public for the tools
/// and tests that open a stopped store's sled directly.
pub fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    let mut waited_ms = 0;
    loop {
        // sled's periodic flusher stays on: durability does not rest on it
        // (checkpoints and cosignatures are flushed and synced explicitly),
        // but without it sled's file grew to 70 MB for 90k entries instead
        // of 40 MB, and the read-only copy a check makes grew with it.
        match sled::Config::new().path(path).open() {
            // sled 0.34 reports a held lock as an `Other` error whose text
            // names it (the `WouldBlock` is only inside the message).
            Err(sled::Error::Io(e))
                if (e.kind() == std::io::ErrorKind::WouldBlock
                    || e.to_string().contains("could not acquire lock"))
                    && waited_ms < LOCK_WAIT_MS_MAX =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
                waited_ms += 10;
            }
            other => return Ok(other?),
        }
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), StoreError> {
    let what = format!("cannot copy {}", from.display());
    let io = |e: std::io::Error| StoreError::Io(IoFailure::new(&what, e));
    std::fs::create_dir_all(to).map_err(io)?;
    for ent in std::fs::read_dir(from).map_err(io)? {
        let ent = ent.map_err(io)?;
        let ty = ent.file_type().map_err(io)?;
        let dest = to.join(ent.file_name());
        if ty.is_dir() {
            copy_dir(&ent.path(), &dest)?;
        } else if ty.is_file() {
            std::fs::copy(ent.path(), dest).map_err(io)?;
        }
    }
    Ok(())
}

impl SledStore {
    /// Opens (creating if absent) the store in `dir` for appending.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Io(IoFailure::new(
                &format!("cannot create {}", dir.display()),
                e,
            ))
        })?;
        // Owner-only: the log holds pseudonyms and who asked for whom, and
        // sled makes its files with the process's umask; a folder no one
        // else may enter covers them all.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
                StoreError::Io(IoFailure::new(
                    &format!("cannot make {} owner-only", dir.display()),
                    e,
                ))
            })?;
        }
        let segment = Segment::open(&dir.join(SEGMENT_FILE))?;
        Self::assemble(segment, &dir.join(SLED_DIR), None)
    }

    /// Opens the store in `dir` without writing to it: the segment under a
    /// shared lock (refused while a writer holds it), sled through a private
    /// copy. A torn tail is ignored, not cut.
    pub fn open_read_only(dir: &Path) -> Result<Self, StoreError> {
        let segment = Segment::open_read_only(&dir.join(SEGMENT_FILE))?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let scratch = ScratchDir(
            std::env::temp_dir().join(format!("consentry-ro-{}-{stamp}", std::process::id())),
        );
        let sled_dir = dir.join(SLED_DIR);
        if sled_dir.exists() {
            copy_dir(&sled_dir, &scratch.0)?;
        }
        let path = scratch.0.clone();
        Self::assemble(segment, &path, Some(scratch))
    }

    fn assemble(
        mut segment: Segment,
        sled_dir: &Path,
        scratch: Option<ScratchDir>,
    ) -> Result<Self, StoreError> {
        let db = open_db(sled_dir)?;
        let db_file = File::open(sled_dir.join("db"))
            .map_err(|e| StoreError::Io(IoFailure::new("cannot open sled's data file", e)))?;
        let derived = DerivedTree::open(db.open_tree(TREE_DERIVED)?)?;
        let checkpoints = db.open_tree(TREE_CHECKPOINTS)?;
        let cosigs = db.open_tree(TREE_COSIGS)?;
        let derived_size = derived.size();
        let scan = segment.recover(0, 0)?;
        if segment.size() < derived_size {
            return Err(StoreError::Lost {
                what: "derived data",
                have: segment.size(),
                want: derived_size,
            });
        }
        let positions = scan
            .records
            .iter()
            .map(|p| pack(*p))
            .collect::<Result<Vec<u64>, StoreError>>()?;
        let mut kept = VecDeque::new();
        for k in checkpoints.iter().keys() {
            kept.push_back(be_u64(&k?)?);
        }
        if let Some(&latest) = kept.back() {
            if latest > segment.size() {
                return Err(StoreError::Lost {
                    what: "a checkpoint",
                    have: segment.size(),
                    want: latest,
                });
            }
        }
        Ok(Self {
            segment,
            db,
            db_file,
            derived,
            checkpoints,
            cosigs,
            positions: RwLock::new(positions),
            kept: Mutex::new(kept),
            timings: AppendTimings::default(),
            _scratch: scratch,
        })
    }

    pub fn timings(&self) -> &AppendTimings {
        &self.timings
    }

    /// Makes every sled write so far durable: sled's flush ends in
    /// `sync_file_range`, which is no barrier against power loss.
    fn sync_sled(&self) -> Result<(), StoreError> {
        // Derived data first: then sled's meta reaches this checkpoint, a
        // restart rebuilds less, and reads after a checkpoint find sled
        // settled. Callers publish off the request workers.
        self.derived.move_now()?;
        self.db.flush()?;
        self.db_file
            .sync_data()
            .map_err(|e| StoreError::Io(IoFailure::new("cannot fdatasync sled's data file", e)))
    }

    fn write_derived(&self, d: &Derived) -> Result<(), StoreError> {
        Ok(self
            .derived
            .add(d.first, d.count, &d.hashes, &d.index_keys)?)
    }
}

impl Drop for SledStore {
    /// Moves the derived data held in memory into sled and flushes it, so
    /// that the next open has less to rebuild; nothing depends on it (the
    /// rebuild covers a crash).
    fn drop(&mut self) {
        if self.derived.close().is_ok() {
            let _ = self.db.flush();
        }
    }
}

/// A record position in 8 bytes: offset in the low 40 bits (1 TiB), length
/// in the high 24 (16 MiB, far above any record).
fn pack(p: RecordPos) -> Result<u64, StoreError> {
    if p.offset >= 1 << 40 || p.len >= 1 << 24 {
        return Err(StoreError::Io(IoFailure::message(format!(
            "record at byte {} of {} bytes is past the segment's addressable size",
            p.offset, p.len
        ))));
    }
    Ok(p.offset | (u64::from(p.len) << 40))
}

fn unpack(v: u64) -> RecordPos {
    RecordPos {
        offset: v & ((1 << 40) - 1),
        len: (v >> 40) as u32,
    }
}

impl Store for SledStore {
    fn size(&self) -> Result<u64, StoreError> {
        Ok(self.segment.size())
    }

    fn derived_size(&self) -> Result<u64, StoreError> {
        Ok(self.derived.size())
    }

    fn append(&self, batch: &AppendBatch) -> Result<(), StoreError> {
        let d = &batch.derived;
        if d.count != batch.records.len() as u64 || d.first != self.derived_size()? {
            return Err(StoreError::OutOfOrder {
                got: d.first,
                size: self.derived_size()?,
            });
        }
        let t = std::time::Instant::now();
        let positions = self
            .segment
            .append(d.first, &batch.records)?
            .into_iter()
            .map(pack)
            .collect::<Result<Vec<u64>, StoreError>>()?;
        let synced = t.elapsed();
        self.positions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .extend(positions);
        self.write_derived(d)?;
        let total = t.elapsed();
        let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.timings.batches.fetch_add(1, Ordering::Relaxed);
        self.timings
            .segment_nanos
            .fetch_add(nanos(synced), Ordering::Relaxed);
        self.timings
            .derived_nanos
            .fetch_add(nanos(total - synced), Ordering::Relaxed);
        Ok(())
    }

    fn put_derived(&self, d: &Derived) -> Result<(), StoreError> {
        let size = self.derived_size()?;
        if d.first != size || d.first + d.count > self.segment.size() {
            return Err(StoreError::OutOfOrder { got: d.first, size });
        }
        self.write_derived(d)
    }

    fn record(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let pos = {
            let positions = self.positions.read().unwrap_or_else(|p| p.into_inner());
            match positions.get(index as usize) {
                Some(&v) => unpack(v),
                None => return Ok(None),
            }
        };
        self.segment.read(pos).map(Some)
    }

    fn hash(&self, level: u8, index: u64) -> Result<Option<Hash>, StoreError> {
        Ok(self.derived.hash(level, index)?)
    }

    fn hashes_from_level(&self, level_min: u8) -> Result<Vec<(u8, u64, Hash)>, StoreError> {
        Ok(self.derived.hashes_from_level(level_min)?)
    }

    fn lookup(
        &self,
        kind: &str,
        key: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError> {
        Ok(self.derived.lookup(kind, key, before, limit)?)
    }

    fn replace_index(&self, keys: &[(String, String, u64)]) -> Result<(), StoreError> {
        Ok(self.derived.replace_index(keys)?)
    }

    fn put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        self.checkpoints
            .insert(size.to_be_bytes(), note.as_bytes())?;
        if kept.back() != Some(&size) {
            kept.push_back(size);
        }
        while kept.len() > CHECKPOINTS_KEPT_MAX {
            if let Some(old) = kept.pop_front() {
                self.checkpoints.remove(old.to_be_bytes())?;
                for kv in self.cosigs.scan_prefix(old.to_be_bytes()) {
                    self.cosigs.remove(kv?.0)?;
                }
            }
        }
        self.sync_sled()
    }

    fn checkpoint(&self) -> Result<Option<String>, StoreError> {
        match self.checkpoints.last()? {
            Some((_, v)) => String::from_utf8(v.to_vec())
                .map(Some)
                .map_err(|_| StoreError::Corrupt("checkpoint is not utf-8".into())),
            None => Ok(None),
        }
    }

    fn checkpoint_at(&self, size: u64) -> Result<Option<String>, StoreError> {
        match self.checkpoints.get(size.to_be_bytes())? {
            Some(v) => String::from_utf8(v.to_vec())
                .map(Some)
                .map_err(|_| StoreError::Corrupt("checkpoint is not utf-8".into())),
            None => Ok(None),
        }
    }

    fn put_cosignature(&self, size: u64, name: &str, line: &str) -> Result<(), StoreError> {
        let mut k = size.to_be_bytes().to_vec();
        k.extend_from_slice(name.as_bytes());
        self.cosigs.insert(k, line.as_bytes())?;
        self.sync_sled()
    }

    fn cosignatures(&self, size: u64) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for kv in self.cosigs.scan_prefix(size.to_be_bytes()) {
            let (_, v) = kv?;
            out.push(String::from_utf8_lossy(&v).into_owned());
        }
        Ok(out)
    }
}

/// Reads complete-subtree hashes straight from a store, for proofs and
/// roots where no in-memory cache is at hand.
pub struct StoreNodes<'a>(pub &'a dyn Store);

impl NodeSource for StoreNodes<'_> {
    fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        match self.0.hash(level, index) {
            Ok(Some(h)) => Ok(h),
            Ok(None) => Err(ProofError::MissingNode { level, index }),
            Err(e) => Err(ProofError::Source(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store reopened while its last handle is still being dropped (a
    /// restart in the same process) waits for sled's lock instead of
    /// failing.
    #[test]
    fn open_waits_for_a_lock_released_a_moment_later() {
        let dir = tempfile::tempdir().unwrap();
        let held = open_db(dir.path()).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(held);
        });
        let reopened = open_db(dir.path());
        release.join().unwrap();
        assert!(reopened.is_ok(), "{:?}", reopened.err());
    }
}

#[cfg(test)]
mod io_failure_tests {
    use super::*;

    /// The system's error is kept, not only its words: a full disk can
    /// be told from a missing file by its kind.
    #[test]
    fn an_io_failure_keeps_the_io_error_and_says_what_was_done() {
        let e = StoreError::Io(IoFailure::new(
            "writing the segment",
            std::io::Error::from(std::io::ErrorKind::StorageFull),
        ));
        let StoreError::Io(f) = &e else {
            unreachable!()
        };
        assert_eq!(f.kind(), Some(std::io::ErrorKind::StorageFull));
        assert!(f.io_error().is_some());
        assert!(e
            .to_string()
            .starts_with("storage i/o failed: writing the segment: "));
        assert_eq!(IoFailure::message("a bound").kind(), None);
        assert_ne!(
            IoFailure::new("x", std::io::Error::from(std::io::ErrorKind::NotFound)),
            IoFailure::new(
                "x",
                std::io::Error::from(std::io::ErrorKind::PermissionDenied)
            ),
        );
    }
}
