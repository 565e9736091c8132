//! The narrow storage interface and its sled implementation.
//!
//! A store holds four things: entry records by index, complete-subtree
//! hashes by (level, index), derived secondary-index keys, and small
//! metadata (size, latest checkpoint, cosignatures). [`Store::append`] is the
//! only way the log grows; it is atomic and durable when it returns.

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use thiserror::Error;

use crate::merkle::{Hash, NodeSource, ProofError};

/// Tree names, public so tools and tamper tests can find the raw data.
pub const TREE_ENTRIES: &str = "entries";
pub const TREE_HASHES: &str = "hashes";
pub const TREE_INDEX: &str = "index";
pub const TREE_META: &str = "meta";
pub const TREE_COSIGS: &str = "cosigs";
const META_SIZE: &[u8] = b"size";
const META_CHECKPOINT: &[u8] = b"checkpoint";

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("storage i/o failed: {0}")]
    Io(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("append at {got} does not follow the log size {size}")]
    OutOfOrder { got: u64, size: u64 },
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

/// One group-commit batch, fully prepared by the sequencer.
#[derive(Debug, Default)]
pub struct AppendBatch {
    /// Index of the first record; must equal the store's size.
    pub first: u64,
    /// Encoded envelopes, verbatim, in index order.
    pub records: Vec<Vec<u8>>,
    /// Every complete-subtree hash the batch creates: (level, index, hash).
    pub hashes: Vec<(u8, u64, Hash)>,
    /// Secondary-index keys: (kind, key, entry index).
    pub index_keys: Vec<(String, String, u64)>,
}

/// What the log needs from storage; small so a PostgreSQL back end can
/// implement it for several stateless gateway replicas.
pub trait Store: Send + Sync {
    /// Number of durable entries.
    fn size(&self) -> Result<u64, StoreError>;
    /// Appends atomically (all of the batch or none) and durably.
    fn append(&self, batch: &AppendBatch) -> Result<(), StoreError>;
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
    fn put_checkpoint(&self, note: &str) -> Result<(), StoreError>;
    fn checkpoint(&self) -> Result<Option<String>, StoreError>;
    fn put_cosignature(&self, size: u64, name: &str, line: &str) -> Result<(), StoreError>;
    fn cosignatures(&self, size: u64) -> Result<Vec<String>, StoreError>;
}

fn hash_key(level: u8, index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = level;
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

fn index_key(kind: &str, key: &str, index: u64) -> Vec<u8> {
    let mut k = index_prefix(kind, key);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn index_prefix(kind: &str, key: &str) -> Vec<u8> {
    // NUL separators: kinds and keys are printable, so prefixes never collide.
    let mut k = Vec::with_capacity(kind.len() + key.len() + 10);
    k.extend_from_slice(kind.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k.push(0);
    k
}

fn be_u64(b: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(b)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt("bad integer".into()))
}

/// How long `open` waits for another handle in this process to let go.
const LOCK_WAIT_MS_MAX: u64 = 5_000;

/// Opens the sled database, waiting briefly for its file lock: after a
/// `Db` is dropped, sled's background flusher releases the lock a moment
/// later, so an immediate reopen in the same process (a restart, a tool
/// run after the server closed) can otherwise fail spuriously.
fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    let mut waited_ms = 0;
    loop {
        match sled::Config::new().path(path).open() {
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock && waited_ms < LOCK_WAIT_MS_MAX =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
                waited_ms += 10;
            }
            other => return Ok(other?),
        }
    }
}

/// The embedded sled store.
pub struct SledStore {
    db: sled::Db,
    entries: sled::Tree,
    hashes: sled::Tree,
    index: sled::Tree,
    meta: sled::Tree,
    cosigs: sled::Tree,
}

impl SledStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = open_db(path)?;
        Ok(Self {
            entries: db.open_tree(TREE_ENTRIES)?,
            hashes: db.open_tree(TREE_HASHES)?,
            index: db.open_tree(TREE_INDEX)?,
            meta: db.open_tree(TREE_META)?,
            cosigs: db.open_tree(TREE_COSIGS)?,
            db,
        })
    }

    /// Index of the last record actually present, for the whole-log check.
    pub fn last_record_index(&self) -> Result<Option<u64>, StoreError> {
        match self.entries.last()? {
            Some((k, _)) => Ok(Some(be_u64(&k)?)),
            None => Ok(None),
        }
    }
}

impl Store for SledStore {
    fn size(&self) -> Result<u64, StoreError> {
        match self.meta.get(META_SIZE)? {
            Some(v) => be_u64(&v),
            None => Ok(0),
        }
    }

    fn append(&self, batch: &AppendBatch) -> Result<(), StoreError> {
        let size = self.size()?;
        if batch.first != size {
            return Err(StoreError::OutOfOrder {
                got: batch.first,
                size,
            });
        }
        let new_size = size + batch.records.len() as u64;
        // One transaction over all trees: after a crash either the whole
        // batch (entries, hashes, index keys, size) is there or none of it.
        let res: Result<(), TransactionError<()>> =
            (&self.entries, &self.hashes, &self.index, &self.meta).transaction(|(e, h, i, m)| {
                for (n, rec) in batch.records.iter().enumerate() {
                    e.insert(&(batch.first + n as u64).to_be_bytes(), rec.as_slice())?;
                }
                for (level, idx, hash) in &batch.hashes {
                    h.insert(&hash_key(*level, *idx), &hash[..])?;
                }
                for (kind, key, idx) in &batch.index_keys {
                    i.insert(index_key(kind, key, *idx), &[][..])?;
                }
                m.insert(META_SIZE, &new_size.to_be_bytes())?;
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        res.map_err(|e| StoreError::Io(format!("{e:?}")))?;
        self.db.flush()?;
        Ok(())
    }

    fn record(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.entries.get(index.to_be_bytes())?.map(|v| v.to_vec()))
    }

    fn hash(&self, level: u8, index: u64) -> Result<Option<Hash>, StoreError> {
        match self.hashes.get(hash_key(level, index))? {
            Some(v) => Hash::try_from(&v[..])
                .map(Some)
                .map_err(|_| StoreError::Corrupt("hash is not 32 bytes".into())),
            None => Ok(None),
        }
    }

    fn hashes_from_level(&self, level_min: u8) -> Result<Vec<(u8, u64, Hash)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.hashes.range(hash_key(level_min, 0)..) {
            let (k, v) = kv?;
            if k.len() != 9 {
                return Err(StoreError::Corrupt("bad hash key".into()));
            }
            let h = Hash::try_from(&v[..])
                .map_err(|_| StoreError::Corrupt("hash is not 32 bytes".into()))?;
            out.push((k[0], be_u64(&k[1..])?, h));
        }
        Ok(out)
    }

    fn lookup(
        &self,
        kind: &str,
        key: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError> {
        let start = index_prefix(kind, key);
        let end = index_key(kind, key, before);
        let mut out = Vec::new();
        for kv in self.index.range(start.clone()..end).rev() {
            let (k, _) = kv?;
            out.push(be_u64(&k[start.len()..])?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    fn replace_index(&self, keys: &[(String, String, u64)]) -> Result<(), StoreError> {
        self.index.clear()?;
        let mut b = sled::Batch::default();
        for (kind, key, idx) in keys {
            b.insert(index_key(kind, key, *idx), &[][..]);
        }
        self.index.apply_batch(b)?;
        self.db.flush()?;
        Ok(())
    }

    fn put_checkpoint(&self, note: &str) -> Result<(), StoreError> {
        self.meta.insert(META_CHECKPOINT, note.as_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    fn checkpoint(&self) -> Result<Option<String>, StoreError> {
        match self.meta.get(META_CHECKPOINT)? {
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
        self.db.flush()?;
        Ok(())
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
