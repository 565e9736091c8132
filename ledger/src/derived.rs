//! Derived data on its way into sled: the hashes and index keys of recent
//! batches, held in memory and moved into sled in large batches by a
//! background thread (`ledger-derived`).
//!
//! Why: every sled batch costs a write and a `sync_file_range` of its own,
//! and sled's cost per key is high, so one sled batch per group commit was
//! the measured bottleneck of the append path. Moving a thousand entries in
//! one batch costs about 18 ms of CPU on a 2-core CI machine: on the
//! sequencer thread that stalled every append behind it, hence the thread.
//!
//! Everything here is derived: rebuildable from the entries, so nothing is
//! lost if the process dies with data still in memory (the log rebuilds the
//! lagging tail on open). sled's meta key says how far sled's copy reaches,
//! and one sled batch (atomic) carries a layer together with its meta.
//!
//! Readers see every key: it is in memory (fresh or moving) or already in
//! sled, and memory is read before sled. A key read twice during a move is
//! counted once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;

use thiserror::Error;

use crate::merkle::Hash;

/// Key prefixes inside sled's derived tree. One tree, so that one sled
/// batch (atomic) carries a layer and the meta that counts it.
pub const KEY_HASH: u8 = b'h';
pub const KEY_INDEX: u8 = b'i';
const KEY_META: &[u8] = b"m";
/// Entries held in memory before the background thread is asked to move
/// them into sled: bounds that memory (a few hundred bytes an entry) and
/// the tail a restart rebuilds.
pub const MOVE_ENTRIES_MIN: u64 = 1024;
/// Entries held in memory at most: past this (sled has fallen far behind
/// or failed to keep up), an append moves them itself, so the backlog
/// slows appends rather than growing without bound.
pub const HELD_ENTRIES_MAX: u64 = 64 * MOVE_ENTRIES_MIN;
/// A batch this large moves into sled at once, on the appending thread:
/// its sled batch's own cost is spread over many entries, and under such
/// load a background mover starved of CPU fell behind (the ledger bench
/// with 256 writers). Small batches (the gateway's, a few entries each)
/// are where one sled batch apiece was the bottleneck; they wait in memory.
pub const INLINE_BATCH_ENTRIES_MIN: u64 = 64;

#[derive(Debug, Error)]
pub enum DerivedError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("derived data is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("writing derived data to sled failed earlier: {0}")]
    Failed(String),
    #[error("cannot start the derived-data thread: {0}")]
    Thread(String),
    #[error("derived data for {got} does not follow {size}")]
    OutOfOrder { got: u64, size: u64 },
}

pub fn hash_key(level: u8, index: u64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = KEY_HASH;
    k[1] = level;
    k[2..].copy_from_slice(&index.to_be_bytes());
    k
}

pub fn index_key(kind: &str, key: &str, index: u64) -> Vec<u8> {
    let mut k = index_prefix(kind, key);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn index_prefix(kind: &str, key: &str) -> Vec<u8> {
    // NUL separators: kinds and keys are printable, so prefixes never collide.
    let mut k = Vec::with_capacity(kind.len() + key.len() + 11);
    k.push(KEY_INDEX);
    k.extend_from_slice(kind.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k.push(0);
    k
}

pub fn be_u64(b: &[u8]) -> Result<u64, DerivedError> {
    <[u8; 8]>::try_from(b)
        .map(u64::from_be_bytes)
        .map_err(|_| DerivedError::Corrupt("bad integer"))
}

/// Derived data of consecutive entries, keyed as in sled.
#[derive(Default)]
struct Layer {
    hashes: BTreeMap<[u8; 10], Hash>,
    index: BTreeSet<Vec<u8>>,
    entries: u64,
    /// The derived size this layer (with sled below it) reaches.
    size: u64,
}

#[derive(Default)]
struct Pending {
    /// What appends add to.
    fresh: Layer,
    /// What a move is writing to sled right now: still readable.
    moving: Option<Arc<Layer>>,
}

#[derive(Default)]
struct Wake {
    requested: bool,
    stop: bool,
}

struct Shared {
    tree: sled::Tree,
    pending: RwLock<Pending>,
    /// Serialises moves: the thread's and the synchronous ones.
    mover: Mutex<()>,
    wake: Mutex<Wake>,
    wake_cv: Condvar,
    /// The first failed background move; every later append reports it.
    failed: Mutex<Option<String>>,
}

/// sled's derived tree with its in-memory front.
pub struct DerivedTree {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl DerivedTree {
    /// Opens over sled's derived tree and starts the mover thread.
    pub fn open(tree: sled::Tree) -> Result<Self, DerivedError> {
        let size = match tree.get(KEY_META)? {
            Some(v) => be_u64(&v)?,
            None => 0,
        };
        let shared = Arc::new(Shared {
            tree,
            pending: RwLock::new(Pending {
                fresh: Layer {
                    size,
                    ..Layer::default()
                },
                moving: None,
            }),
            mover: Mutex::new(()),
            wake: Mutex::new(Wake::default()),
            wake_cv: Condvar::new(),
            failed: Mutex::new(None),
        });
        let s = shared.clone();
        let worker = std::thread::Builder::new()
            .name("ledger-derived".into())
            .spawn(move || s.run())
            .map_err(|e| DerivedError::Thread(e.to_string()))?;
        Ok(Self {
            shared,
            worker: Some(worker),
        })
    }

    /// The number of entries whose derived data is held (in memory or sled).
    pub fn size(&self) -> u64 {
        self.shared.read().fresh.size
    }

    /// Adds the derived data of entries `first..first + count`.
    pub fn add(
        &self,
        first: u64,
        count: u64,
        hashes: &[(u8, u64, Hash)],
        index_keys: &[(String, String, u64)],
    ) -> Result<(), DerivedError> {
        if let Some(f) = lock(&self.shared.failed).clone() {
            return Err(DerivedError::Failed(f));
        }
        let held = {
            let mut p = self
                .shared
                .pending
                .write()
                .unwrap_or_else(|e| e.into_inner());
            if first != p.fresh.size {
                return Err(DerivedError::OutOfOrder {
                    got: first,
                    size: p.fresh.size,
                });
            }
            for (level, idx, hash) in hashes {
                p.fresh.hashes.insert(hash_key(*level, *idx), *hash);
            }
            for (kind, key, idx) in index_keys {
                p.fresh.index.insert(index_key(kind, key, *idx));
            }
            p.fresh.entries += count;
            p.fresh.size = first + count;
            p.fresh.entries
        };
        if held >= HELD_ENTRIES_MAX || count >= INLINE_BATCH_ENTRIES_MIN {
            self.move_now()
        } else {
            if held >= MOVE_ENTRIES_MIN {
                let mut w = lock(&self.shared.wake);
                w.requested = true;
                self.shared.wake_cv.notify_one();
            }
            Ok(())
        }
    }

    /// Moves everything held in memory into sled before returning (sled's
    /// own flush is the caller's).
    pub fn move_now(&self) -> Result<(), DerivedError> {
        self.shared.move_pending()
    }

    pub fn hash(&self, level: u8, index: u64) -> Result<Option<Hash>, DerivedError> {
        let k = hash_key(level, index);
        {
            let p = self.shared.read();
            let held = p
                .fresh
                .hashes
                .get(&k)
                .or_else(|| p.moving.as_ref().and_then(|m| m.hashes.get(&k)));
            if let Some(h) = held {
                return Ok(Some(*h));
            }
        }
        match self.shared.tree.get(k)? {
            Some(v) => Hash::try_from(&v[..])
                .map(Some)
                .map_err(|_| DerivedError::Corrupt("hash is not 32 bytes")),
            None => Ok(None),
        }
    }

    /// Every hash at `level_min` or above.
    pub fn hashes_from_level(&self, level_min: u8) -> Result<Vec<(u8, u64, Hash)>, DerivedError> {
        let start = hash_key(level_min, 0);
        let mut all: BTreeMap<[u8; 10], Hash> = BTreeMap::new();
        {
            let p = self.shared.read();
            let layers = std::iter::once(&p.fresh).chain(p.moving.as_deref());
            for layer in layers {
                all.extend(layer.hashes.range(start..).map(|(k, h)| (*k, *h)));
            }
        }
        let end: &[u8] = &[KEY_HASH + 1];
        for kv in self.shared.tree.range(&start[..]..end) {
            let (k, v) = kv?;
            let k =
                <[u8; 10]>::try_from(&k[..]).map_err(|_| DerivedError::Corrupt("bad hash key"))?;
            let h = Hash::try_from(&v[..])
                .map_err(|_| DerivedError::Corrupt("hash is not 32 bytes"))?;
            all.insert(k, h);
        }
        all.into_iter()
            .map(|(k, h)| Ok((k[1], be_u64(&k[2..])?, h)))
            .collect()
    }

    /// Entry indexes under (`kind`, `key`) below `before`, newest first.
    pub fn lookup(
        &self,
        kind: &str,
        key: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<u64>, DerivedError> {
        let start = index_prefix(kind, key);
        let end = index_key(kind, key, before);
        // The newest `limit` of the union are among the newest `limit` of
        // each part; a set counts a key seen twice (mid-move) once.
        let mut found = BTreeSet::new();
        {
            let p = self.shared.read();
            let layers = std::iter::once(&p.fresh).chain(p.moving.as_deref());
            for layer in layers {
                for k in layer
                    .index
                    .range(start.clone()..end.clone())
                    .rev()
                    .take(limit)
                {
                    found.insert(be_u64(&k[start.len()..])?);
                }
            }
        }
        for kv in self.shared.tree.range(start.clone()..end).rev().take(limit) {
            let (k, _) = kv?;
            found.insert(be_u64(&k[start.len()..])?);
        }
        Ok(found.into_iter().rev().take(limit).collect())
    }

    /// Replaces every index key (a rebuild from the entries).
    pub fn replace_index(&self, keys: &[(String, String, u64)]) -> Result<(), DerivedError> {
        let _one = lock(&self.shared.mover);
        self.shared.move_locked()?;
        let mut b = sled::Batch::default();
        for kv in self.shared.tree.scan_prefix([KEY_INDEX]) {
            b.remove(kv?.0);
        }
        for (kind, key, idx) in keys {
            b.insert(index_key(kind, key, *idx), &[][..]);
        }
        self.shared.tree.apply_batch(b)?;
        Ok(())
    }

    /// Stops the thread and moves what is held into sled; nothing depends
    /// on that move (a restart rebuilds), it only shortens the next open.
    pub fn close(&mut self) -> Result<(), DerivedError> {
        if let Some(w) = self.worker.take() {
            {
                let mut wake = lock(&self.shared.wake);
                wake.stop = true;
                self.shared.wake_cv.notify_one();
            }
            let _ = w.join();
        }
        self.move_now()
    }
}

impl Drop for DerivedTree {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl Shared {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Pending> {
        self.pending.read().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self) {
        loop {
            {
                let mut w = lock(&self.wake);
                while !w.requested && !w.stop {
                    w = self.wake_cv.wait(w).unwrap_or_else(|e| e.into_inner());
                }
                if w.stop {
                    return;
                }
                w.requested = false;
            }
            if let Err(e) = self.move_pending() {
                let mut f = lock(&self.failed);
                f.get_or_insert_with(|| e.to_string());
            }
        }
    }

    fn move_pending(&self) -> Result<(), DerivedError> {
        let _one = lock(&self.mover);
        self.move_locked()
    }

    /// Moves the fresh layer into sled; the caller holds `mover`.
    fn move_locked(&self) -> Result<(), DerivedError> {
        let layer = {
            let mut p = self.pending.write().unwrap_or_else(|e| e.into_inner());
            if p.fresh.entries == 0 {
                return Ok(());
            }
            let size = p.fresh.size;
            let taken = std::mem::replace(
                &mut p.fresh,
                Layer {
                    size,
                    ..Layer::default()
                },
            );
            let taken = Arc::new(taken);
            p.moving = Some(taken.clone());
            taken
        };
        let mut b = sled::Batch::default();
        for (k, hash) in &layer.hashes {
            b.insert(&k[..], &hash[..]);
        }
        for k in &layer.index {
            b.insert(&k[..], &[][..]);
        }
        b.insert(KEY_META, &layer.size.to_be_bytes());
        let written = self.tree.apply_batch(b);
        let mut p = self.pending.write().unwrap_or_else(|e| e.into_inner());
        p.moving = None;
        if let Err(e) = written {
            // Keep it readable and try again with the next move.
            p.fresh
                .hashes
                .extend(layer.hashes.iter().map(|(k, h)| (*k, *h)));
            p.fresh.index.extend(layer.index.iter().cloned());
            p.fresh.entries += layer.entries;
            return Err(e.into());
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &std::path::Path) -> sled::Tree {
        let db = sled::Config::new().path(dir).open().unwrap();
        db.open_tree("derived").unwrap()
    }

    fn keys(first: u64, count: u64) -> Vec<(String, String, u64)> {
        (first..first + count)
            .map(|i| ("participant".to_string(), format!("p-{}", i % 3), i))
            .collect()
    }

    #[test]
    fn reads_see_every_key_before_during_and_after_a_move() {
        let dir = tempfile::tempdir().unwrap();
        let d = DerivedTree::open(tree(dir.path())).unwrap();
        let batch = 100;
        let mut first = 0;
        // Past MOVE_ENTRIES_MIN several times, so the thread moves layers
        // while this loop keeps adding and reading.
        while first < 3 * MOVE_ENTRIES_MIN {
            let h = [first as u8; 32];
            d.add(first, batch, &[(3, first / 8, h)], &keys(first, batch))
                .unwrap();
            first += batch;
            let got = d.lookup("participant", "p-0", first, 5).unwrap();
            let want: Vec<u64> = (0..first).rev().filter(|i| i % 3 == 0).take(5).collect();
            assert_eq!(got, want);
            assert_eq!(d.hash(3, (first - batch) / 8).unwrap(), Some(h));
        }
        assert_eq!(d.size(), first);
        let all = d.lookup("participant", "p-1", first, usize::MAX).unwrap();
        assert_eq!(
            all.len() as u64,
            (0..first).filter(|i| i % 3 == 1).count() as u64
        );
    }

    #[test]
    fn what_was_moved_is_in_sled_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let t = tree(dir.path());
        {
            let mut d = DerivedTree::open(t.clone()).unwrap();
            d.add(0, 10, &[(3, 0, [7; 32])], &keys(0, 10)).unwrap();
            d.close().unwrap();
        }
        let d = DerivedTree::open(t).unwrap();
        assert_eq!(d.size(), 10);
        assert_eq!(d.hash(3, 0).unwrap(), Some([7; 32]));
        assert_eq!(d.hashes_from_level(3).unwrap(), vec![(3, 0, [7; 32])]);
        assert_eq!(
            d.lookup("participant", "p-2", 10, 10).unwrap(),
            vec![8, 5, 2]
        );
    }

    #[test]
    fn an_add_out_of_order_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = DerivedTree::open(tree(dir.path())).unwrap();
        d.add(0, 2, &[], &[]).unwrap();
        assert!(matches!(
            d.add(5, 1, &[], &[]),
            Err(DerivedError::OutOfOrder { got: 5, size: 2 })
        ));
    }
}
