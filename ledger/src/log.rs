//! The log: one sequencer thread that group-commits appends, and the read
//! side (roots, proofs, checkpoints, cosignatures) over the durable prefix.
//!
//! An append has two steps. [`Reservation::enqueue`] fixes the entry's
//! position at once (the next index, in queue order); [`Pending::durable`]
//! waits until it is durable. Between them a caller may apply the entry to
//! its own state under its own short lock, so that state is always the
//! replay of the enqueued prefix, while hundreds of callers share one sync.
//!
//! The sequencer takes everything queued (up to `batch_entries_max` and
//! `batch_bytes_max`), computes the new tree hashes from its in-memory
//! frontier (no reads), hands the batch to the store (one segment write and
//! one `fdatasync`, then the derived data), and only then answers every
//! waiter. Readers only ever see the durable size.
//!
//! A failed write stops the log (fail-stop): every queued and later append
//! fails, and the outcome of the failed batch is unknown until a reopen
//! recovers what reached the disk; a reopen is correct either way.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use crate::entry::{EntryError, Envelope, VerifiedEntry};
use crate::merkle::{self, Frontier, Hash, NodeSource, ProofError};
use crate::note::{
    parse_sig_line, split_note, Checkpoint, CosignatureVerifier, NoteError, NoteSigner,
};
use crate::store::{AppendBatch, Derived, IoFailure, Store, StoreError, StoreNodes};

/// Subtree hashes at this level and above are stored and mirrored in
/// memory (1/8 of all nodes: 8 MiB a million entries); those below are
/// computed from the (at most 8) entries under them. Storing every level
/// made the derived write the append bottleneck, and reading the lowest
/// levels from sled was the proof latency's tail.
pub const STORED_LEVEL_MIN: u8 = 3;
const CACHE_LEVEL_MIN: u8 = STORED_LEVEL_MIN;

#[derive(Clone, Debug)]
pub struct LogConfig {
    /// Most entries one group commit writes.
    pub batch_entries_max: usize,
    /// Most bytes of records one group commit writes (it may go over by
    /// one record, itself bounded by `ENTRY_BYTES_MAX`).
    pub batch_bytes_max: usize,
    /// Most appends waiting for the sequencer; further appends wait for room.
    pub queue_entries_max: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            batch_entries_max: 2048,
            batch_bytes_max: 8 * 1024 * 1024,
            queue_entries_max: 16 * 1024,
        }
    }
}

#[derive(Debug, Error)]
pub enum LogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error(transparent)]
    Entry(#[from] EntryError),
    #[error("the log stopped after a storage failure; reopen it")]
    Poisoned,
    #[error("the log is closed")]
    Closed,
    #[error("store is inconsistent on open: {0}")]
    Inconsistent(String),
    #[error("no recent checkpoint of size {size} to cosign")]
    UnknownCheckpoint { size: u64 },
    #[error("cosignature line is malformed: {0}")]
    MalformedCosignature(NoteError),
    #[error("cosignature names {name:?}, not witness {witness:?}")]
    NotThisWitness { name: String, witness: String },
    #[error("cosignature by {witness:?} does not verify over the checkpoint of size {size}")]
    BadCosignature { witness: String, size: u64 },
}

/// Derives secondary-index keys from an entry. Index keys are derived data:
/// rebuildable from the entries at any time.
pub trait Indexer: Send + Sync {
    fn keys(&self, entry: &[u8]) -> Vec<(String, String)>;
}

/// Indexes by top-level JSON string fields: `(kind, field)` pairs, e.g.
/// `("agency", "requester")` files an entry's `requester` under the index
/// kind `agency`. The ledger gives no field a meaning: whoever opens the
/// log names the fields (Consentry's list is `policy::INDEXED_FIELDS`).
pub struct FieldIndexer {
    fields: Vec<(&'static str, &'static str)>,
}

impl FieldIndexer {
    pub fn new(fields: &[(&'static str, &'static str)]) -> Self {
        Self {
            fields: fields.to_vec(),
        }
    }
}

impl Indexer for FieldIndexer {
    fn keys(&self, entry: &[u8]) -> Vec<(String, String)> {
        let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice::<serde_json::Value>(entry)
        else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = Vec::new();
        for (kind, field) in &self.fields {
            if let Some(serde_json::Value::String(v)) = obj.get(*field) {
                let pair = (kind.to_string(), v.clone());
                if !v.is_empty() && v.len() <= 256 && !out.contains(&pair) {
                    out.push(pair);
                }
            }
        }
        out
    }
}

/// An entry made ready to append: encoded, hashed and indexed on the
/// caller's task, so that the moment that fixes its position is short.
/// Only [`Log::prepare`] makes one, from a [`VerifiedEntry`].
pub struct Prepared {
    record: Vec<u8>,
    leaf: Hash,
    keys: Vec<(String, String)>,
}

struct Job {
    prepared: Prepared,
    index: u64,
    reply: oneshot::Sender<Result<u64, LogError>>,
}

/// Room in the sequencer's queue, taken before any lock: holding one,
/// [`Reservation::enqueue`] never waits.
pub struct Reservation<'a> {
    permit: mpsc::Permit<'a, Job>,
    log: &'a Log,
}

impl Reservation<'_> {
    /// Fixes the entry's position in the log at once: the next index. The
    /// entry is durable only when [`Pending::durable`] says so.
    pub fn enqueue(self, prepared: Prepared) -> Result<Pending, LogError> {
        let inner = &self.log.inner;
        let mut next = inner.next_index.lock().unwrap_or_else(|p| p.into_inner());
        if inner.poisoned.load(Ordering::Acquire) {
            return Err(LogError::Poisoned);
        }
        let index = *next;
        *next += 1;
        let (reply, rx) = oneshot::channel();
        // Sent under the same lock that numbered it, so that queue order
        // and index order are one order.
        self.permit.send(Job {
            prepared,
            index,
            reply,
        });
        Ok(Pending { index, rx })
    }
}

/// An enqueued entry: its index is fixed; it is not yet durable.
#[must_use = "an enqueued entry is not durable until `durable` says so"]
pub struct Pending {
    index: u64,
    rx: oneshot::Receiver<Result<u64, LogError>>,
}

impl Pending {
    /// The position the entry will hold if the write succeeds.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Resolves with the index once the entry is durable (after the
    /// `fdatasync` of its batch returned), or with the reason it is not.
    pub async fn durable(self) -> Result<u64, LogError> {
        self.rx.await.map_err(|_| LogError::Closed)?
    }

    /// [`Pending::durable`] for threads outside any async runtime.
    pub fn durable_blocking(self) -> Result<u64, LogError> {
        self.rx.blocking_recv().map_err(|_| LogError::Closed)?
    }
}

/// What readers see: the durable size and root, and the cached upper levels.
struct View {
    size: u64,
    root: Hash,
    /// `cache[l]` holds level `CACHE_LEVEL_MIN + l`, every node in order.
    cache: Vec<Vec<Hash>>,
}

impl View {
    fn cache_hashes(&mut self, hashes: &[(u8, u64, Hash)]) {
        for (level, _idx, h) in hashes {
            if *level >= CACHE_LEVEL_MIN {
                let l = (*level - CACHE_LEVEL_MIN) as usize;
                if self.cache.len() <= l {
                    self.cache.resize(l + 1, Vec::new());
                }
                self.cache[l].push(*h);
            }
        }
    }
}

/// Upper bounds of the batch-size histogram's buckets (entries).
pub const BATCH_BUCKETS: [u64; 12] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048];

/// Observations the gateway exports as metrics.
#[derive(Debug, Default)]
pub struct LogStats {
    pub batches: AtomicU64,
    pub entries: AtomicU64,
    pub batch_entries_last: AtomicU64,
    /// Batches with at most `BATCH_BUCKETS[i]` entries (cumulative).
    pub batch_entries_buckets: [AtomicU64; BATCH_BUCKETS.len()],
}

struct Inner {
    store: Arc<dyn Store>,
    signer: NoteSigner,
    indexer: Arc<dyn Indexer>,
    view: RwLock<View>,
    /// The index the next enqueued entry gets.
    next_index: Mutex<u64>,
    poisoned: AtomicBool,
    stats: LogStats,
}

/// A handle to the log; cheap to clone.
#[derive(Clone)]
pub struct Log {
    inner: Arc<Inner>,
    tx: mpsc::Sender<Job>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

struct Nodes<'a> {
    store: &'a dyn Store,
    view: &'a View,
}

impl NodeSource for Nodes<'_> {
    fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        if level < STORED_LEVEL_MIN {
            return computed_node(self.store, level, index);
        }
        if let Some(h) = self
            .view
            .cache
            .get((level - CACHE_LEVEL_MIN) as usize)
            .and_then(|l| l.get(index as usize))
        {
            return Ok(*h);
        }
        StoreNodes(self.store).node(level, index)
    }
}

/// A hash below [`STORED_LEVEL_MIN`], from the entries under it.
fn computed_node(store: &dyn Store, level: u8, index: u64) -> Result<Hash, ProofError> {
    if level == 0 {
        let rec = store
            .record(index)
            .map_err(|e| ProofError::Source(e.to_string()))?
            .ok_or(ProofError::MissingNode { level, index })?;
        let entry =
            Envelope::entry_of_record(&rec).map_err(|e| ProofError::Source(e.to_string()))?;
        return Ok(merkle::leaf_hash(entry));
    }
    let left = computed_node(store, level - 1, 2 * index)?;
    let right = computed_node(store, level - 1, 2 * index + 1)?;
    Ok(merkle::node_hash(&left, &right))
}

/// Keeps only the hashes that are stored.
fn stored(hashes: &mut Vec<(u8, u64, Hash)>) {
    hashes.retain(|(level, _, _)| *level >= STORED_LEVEL_MIN);
}

/// Entries per chunk when rebuilding derived data on open; bounds memory.
const REBUILD_CHUNK_ENTRIES: u64 = 4096;

/// Recomputes the derived data (hashes, index keys) of the durable entries
/// that lack it: after a crash between a segment sync and sled's write, or
/// after sled lost unsynced writes.
fn rebuild_tail(
    store: &dyn Store,
    indexer: &dyn Indexer,
    view: &mut View,
    frontier: &mut Frontier,
    size: u64,
) -> Result<(), LogError> {
    while frontier.size() < size {
        let first = frontier.size();
        let end = (first + REBUILD_CHUNK_ENTRIES).min(size);
        let mut derived = Derived {
            first,
            count: end - first,
            ..Derived::default()
        };
        for i in first..end {
            let rec = store
                .record(i)?
                .ok_or_else(|| LogError::Inconsistent(format!("entry {i} is missing")))?;
            let env = Envelope::decode(&rec)?;
            for (k, v) in indexer.keys(&env.entry) {
                derived.index_keys.push((k, v, i));
            }
            frontier.push(merkle::leaf_hash(&env.entry), |level, idx, h| {
                derived.hashes.push((level, idx, *h))
            });
        }
        stored(&mut derived.hashes);
        store.put_derived(&derived)?;
        view.cache_hashes(&derived.hashes);
    }
    Ok(())
}

impl Log {
    /// Opens the log over `store`, signing checkpoints with `signer` (whose
    /// name is the log's origin), and rebuilds any derived data the store
    /// lacks. The sequencer is a plain thread; `append` and `durable` may
    /// be awaited on any runtime.
    pub fn open(
        store: Arc<dyn Store>,
        signer: NoteSigner,
        indexer: Arc<dyn Indexer>,
        config: LogConfig,
    ) -> Result<Self, LogError> {
        let size = store.size()?;
        let derived_size = store.derived_size()?;
        let mut view = View {
            size,
            root: merkle::empty_root(),
            cache: Vec::new(),
        };
        for (level, idx, h) in store.hashes_from_level(CACHE_LEVEL_MIN)? {
            let l = (level - CACHE_LEVEL_MIN) as usize;
            if view.cache.len() <= l {
                view.cache.resize(l + 1, Vec::new());
            }
            if view.cache[l].len() as u64 != idx {
                return Err(LogError::Inconsistent(format!(
                    "hash level {level} has a gap at {idx}"
                )));
            }
            view.cache[l].push(h);
        }
        let mut frontier = Frontier::load(
            &Nodes {
                store: store.as_ref(),
                view: &view,
            },
            derived_size,
        )?;
        rebuild_tail(
            store.as_ref(),
            indexer.as_ref(),
            &mut view,
            &mut frontier,
            size,
        )?;
        view.root = frontier.root();
        let inner = Arc::new(Inner {
            store,
            signer,
            indexer,
            view: RwLock::new(view),
            next_index: Mutex::new(size),
            poisoned: AtomicBool::new(false),
            stats: LogStats::default(),
        });
        let (tx, rx) = mpsc::channel(config.queue_entries_max.max(1));
        let seq_inner = inner.clone();
        let limits = BatchLimits {
            entries_max: config.batch_entries_max.max(1),
            bytes_max: config.batch_bytes_max.max(1),
        };
        let thread = std::thread::Builder::new()
            .name("ledger-sequencer".into())
            .spawn(move || sequencer(seq_inner, frontier, rx, limits))
            .map_err(|e| LogError::Store(StoreError::Io(IoFailure::of(e))))?;
        let log = Self {
            inner,
            tx,
            thread: Arc::new(Mutex::new(Some(thread))),
        };
        if log.inner.store.checkpoint()?.is_none() {
            log.publish_checkpoint()?;
        }
        Ok(log)
    }

    /// Encodes, hashes and indexes a verified entry, outside any lock.
    pub fn prepare(&self, entry: VerifiedEntry) -> Prepared {
        let keys = self.inner.indexer.keys(entry.bytes());
        Prepared {
            leaf: entry.leaf_hash(),
            record: entry.envelope().encode(),
            keys,
        }
    }

    /// Waits for room in the sequencer's queue (back-pressure), before the
    /// caller takes any lock of its own.
    pub async fn reserve(&self) -> Result<Reservation<'_>, LogError> {
        if self.inner.poisoned.load(Ordering::Acquire) {
            return Err(LogError::Poisoned);
        }
        let permit = self.tx.reserve().await.map_err(|_| LogError::Closed)?;
        Ok(Reservation { permit, log: self })
    }

    /// [`Log::reserve`] without waiting: `Ok(None)` when the queue is full.
    pub fn try_reserve(&self) -> Result<Option<Reservation<'_>>, LogError> {
        if self.inner.poisoned.load(Ordering::Acquire) {
            return Err(LogError::Poisoned);
        }
        match self.tx.try_reserve() {
            Ok(permit) => Ok(Some(Reservation { permit, log: self })),
            Err(mpsc::error::TrySendError::Full(())) => Ok(None),
            Err(mpsc::error::TrySendError::Closed(())) => Err(LogError::Closed),
        }
    }

    /// Appends a verified entry; resolves with its index once it is durable.
    pub async fn append(&self, entry: VerifiedEntry) -> Result<u64, LogError> {
        let prepared = self.prepare(entry);
        let pending = self.reserve().await?.enqueue(prepared)?;
        pending.durable().await
    }

    /// [`Log::append`] for threads outside any async runtime.
    pub fn append_blocking(&self, entry: VerifiedEntry) -> Result<u64, LogError> {
        let prepared = self.prepare(entry);
        let reservation = loop {
            match self.try_reserve()? {
                Some(r) => break r,
                // The queue is full: the sequencer drains it within one
                // batch's sync, so a short sleep is back-pressure, not a poll
                // for a result.
                None => std::thread::sleep(std::time::Duration::from_millis(1)),
            }
        };
        reservation.enqueue(prepared)?.durable_blocking()
    }

    /// Number of durable entries.
    pub fn size(&self) -> u64 {
        self.read_view().size
    }

    pub fn root(&self) -> (u64, Hash) {
        let v = self.read_view();
        (v.size, v.root)
    }

    pub fn stats(&self) -> &LogStats {
        &self.inner.stats
    }

    /// True once a write failed: nothing more is appended until a reopen.
    pub fn is_poisoned(&self) -> bool {
        self.inner.poisoned.load(Ordering::Acquire)
    }

    pub fn origin(&self) -> &str {
        self.inner.signer.name()
    }

    /// The public key checkpoints verify under, to hand to clients.
    pub fn verifier(&self) -> crate::NoteVerifier {
        self.inner.signer.verifier()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    fn read_view(&self) -> std::sync::RwLockReadGuard<'_, View> {
        // A panic while holding the lock cannot leave the view half-updated
        // (it is replaced field by field after the durable write), so a
        // poisoned lock is still safe to read.
        self.inner.view.read().unwrap_or_else(|p| p.into_inner())
    }

    fn check_size(&self, size: u64, log_size: u64) -> Result<(), LogError> {
        if size > log_size {
            return Err(ProofError::SizeBeyondLog { size, log_size }.into());
        }
        Ok(())
    }

    /// The envelope at `index`, if durable.
    pub fn entry(&self, index: u64) -> Result<Option<Envelope>, LogError> {
        if index >= self.size() {
            return Ok(None);
        }
        match self.inner.store.record(index)? {
            Some(rec) => Ok(Some(Envelope::decode(&rec)?)),
            None => {
                Err(StoreError::Corrupt(format!("entry {index} missing below the log size")).into())
            }
        }
    }

    /// Root of the tree of the first `size` entries.
    pub fn root_at(&self, size: u64) -> Result<Hash, LogError> {
        let v = self.read_view();
        self.check_size(size, v.size)?;
        Ok(merkle::subtree_root(
            &Nodes {
                store: self.inner.store.as_ref(),
                view: &v,
            },
            0,
            size,
        )?)
    }

    /// The C2SP `tlog-tiles` hash tile `n` at tile level `level`: `width`
    /// hashes of tree level `8 * level`, each the root of a complete
    /// subtree of the current tree.
    pub fn tile(&self, level: u8, n: u64, width: u64) -> Result<Vec<Hash>, LogError> {
        let v = self.read_view();
        let tree_level = u32::from(level) * 8;
        let first = n.checked_mul(256);
        let end = first
            .and_then(|f| f.checked_add(width))
            .filter(|_| tree_level < 64 && (1..=256).contains(&width))
            .and_then(|e| e.checked_mul(1u64 << tree_level));
        let (Some(first), Some(end_leaf)) = (first, end) else {
            return Err(ProofError::SizeBeyondLog {
                size: u64::MAX,
                log_size: v.size,
            }
            .into());
        };
        self.check_size(end_leaf, v.size)?;
        let nodes = Nodes {
            store: self.inner.store.as_ref(),
            view: &v,
        };
        (first..first + width)
            .map(|i| nodes.node(tree_level as u8, i).map_err(LogError::from))
            .collect()
    }

    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LogError> {
        let v = self.read_view();
        self.check_size(size, v.size)?;
        Ok(merkle::inclusion_proof(
            &Nodes {
                store: self.inner.store.as_ref(),
                view: &v,
            },
            index,
            size,
        )?)
    }

    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LogError> {
        let v = self.read_view();
        self.check_size(new, v.size)?;
        Ok(merkle::consistency_proof(
            &Nodes {
                store: self.inner.store.as_ref(),
                view: &v,
            },
            old,
            new,
        )?)
    }

    /// Signs a checkpoint for the current durable size and stores it
    /// durably before returning it: a served checkpoint never covers an
    /// entry, or depends on a byte, that a power cut could lose.
    pub fn publish_checkpoint(&self) -> Result<String, LogError> {
        let (size, root) = self.root();
        let note = Checkpoint {
            origin: self.origin().to_string(),
            size,
            root,
        }
        .sign(&self.inner.signer)?;
        self.inner.store.put_checkpoint(size, &note)?;
        Ok(note)
    }

    /// The latest published checkpoint note (log signature only).
    pub fn checkpoint(&self) -> Result<String, LogError> {
        match self.inner.store.checkpoint()? {
            Some(n) => Ok(n),
            None => self.publish_checkpoint(),
        }
    }

    /// The latest checkpoint with every stored cosignature line appended, as
    /// C2SP `tlog-cosignature` clients expect.
    pub fn checkpoint_with_cosignatures(&self) -> Result<(String, usize), LogError> {
        let note = self.checkpoint()?;
        let (text, _) = split_note(&note)?;
        let cp = Checkpoint::parse(text)?;
        let cosigs = self.inner.store.cosignatures(cp.size)?;
        let mut out = note.clone();
        for line in &cosigs {
            out.push_str(line);
        }
        Ok((out, cosigs.len()))
    }

    /// Accepts a witness's cosignature line for the kept checkpoint at
    /// `size` (any recent one, not only the latest: witnesses lag), and
    /// stores it durably. Returns the cosignature's timestamp.
    pub fn add_cosignature(
        &self,
        size: u64,
        line: &str,
        witness: &CosignatureVerifier,
    ) -> Result<u64, LogError> {
        let note = self
            .inner
            .store
            .checkpoint_at(size)?
            .ok_or(LogError::UnknownCheckpoint { size })?;
        let (text, _) = split_note(&note)?;
        let sig = parse_sig_line(line.trim_end()).map_err(LogError::MalformedCosignature)?;
        if !witness.matches(&sig) {
            return Err(LogError::NotThisWitness {
                name: sig.name,
                witness: witness.name().to_string(),
            });
        }
        let ts = witness
            .verify(text, &sig)
            .map_err(|_| LogError::BadCosignature {
                witness: witness.name().to_string(),
                size,
            })?;
        self.inner
            .store
            .put_cosignature(size, witness.name(), &sig.line())?;
        Ok(ts)
    }

    /// Rebuilds the secondary indexes from the entries.
    pub fn rebuild_indexes(&self) -> Result<usize, LogError> {
        let size = self.size();
        let mut keys = Vec::new();
        for i in 0..size {
            if let Some(env) = self.entry(i)? {
                for (k, v) in self.inner.indexer.keys(&env.entry) {
                    keys.push((k, v, i));
                }
            }
        }
        self.inner.store.replace_index(&keys)?;
        Ok(keys.len())
    }

    /// Entry indexes for (`kind`, `key`), newest first, below `before`.
    pub fn lookup(
        &self,
        kind: &str,
        key: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<u64>, LogError> {
        Ok(self
            .inner
            .store
            .lookup(kind, key, before.min(self.size()), limit)?)
    }

    /// Stops the sequencer after it drains what is queued. It returns once
    /// every clone of this handle is gone too, since each can still append.
    pub fn close(self) {
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        drop(self.tx);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

#[derive(Clone, Copy)]
struct BatchLimits {
    entries_max: usize,
    bytes_max: usize,
}

fn fail_all(jobs: &mut Vec<Job>, err: impl Fn() -> LogError) {
    for j in jobs.drain(..) {
        let _ = j.reply.send(Err(err()));
    }
}

fn sequencer(
    inner: Arc<Inner>,
    mut frontier: Frontier,
    mut rx: mpsc::Receiver<Job>,
    limits: BatchLimits,
) {
    let mut jobs: Vec<Job> = Vec::with_capacity(limits.entries_max);
    while let Some(first) = rx.blocking_recv() {
        let mut bytes = first.prepared.record.len();
        jobs.push(first);
        while jobs.len() < limits.entries_max && bytes < limits.bytes_max {
            match rx.try_recv() {
                Ok(j) => {
                    bytes += j.prepared.record.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        if inner.poisoned.load(Ordering::Acquire) {
            fail_all(&mut jobs, || LogError::Poisoned);
            continue;
        }
        let first_index = frontier.size();
        if jobs
            .iter()
            .enumerate()
            .any(|(k, j)| j.index != first_index + k as u64)
        {
            // Enqueue numbers entries in queue order; a gap means a bug, and
            // the only safe answer is to stop.
            inner.poisoned.store(true, Ordering::Release);
            fail_all(&mut jobs, || {
                LogError::Inconsistent("queue order and index order differ".into())
            });
            continue;
        }
        let mut batch = AppendBatch {
            records: Vec::with_capacity(jobs.len()),
            derived: Derived {
                first: first_index,
                count: jobs.len() as u64,
                ..Derived::default()
            },
        };
        let mut next = frontier.clone();
        for j in jobs.iter_mut() {
            let idx = next.size();
            next.push(j.prepared.leaf, |level, i, h| {
                batch.derived.hashes.push((level, i, *h))
            });
            for (k, v) in j.prepared.keys.drain(..) {
                batch.derived.index_keys.push((k, v, idx));
            }
            batch.records.push(std::mem::take(&mut j.prepared.record));
        }
        stored(&mut batch.derived.hashes);
        match inner.store.append(&batch) {
            Ok(()) => {
                {
                    let mut view = inner.view.write().unwrap_or_else(|p| p.into_inner());
                    view.cache_hashes(&batch.derived.hashes);
                    view.size = next.size();
                    view.root = next.root();
                }
                frontier = next;
                let n = jobs.len() as u64;
                inner.stats.batches.fetch_add(1, Ordering::Relaxed);
                inner.stats.entries.fetch_add(n, Ordering::Relaxed);
                inner.stats.batch_entries_last.store(n, Ordering::Relaxed);
                for (b, le) in inner.stats.batch_entries_buckets.iter().zip(BATCH_BUCKETS) {
                    if n <= le {
                        b.fetch_add(1, Ordering::Relaxed);
                    }
                }
                for (k, j) in jobs.drain(..).enumerate() {
                    let _ = j.reply.send(Ok(first_index + k as u64));
                }
            }
            Err(e) => {
                // Fail-stop: after a failed write we cannot know what is on
                // disk, so nothing more is acknowledged until a reopen
                // reloads the truth from the store.
                inner.poisoned.store(true, Ordering::Release);
                // Every waiter gets the store's own error, kind kept.
                fail_all(&mut jobs, || LogError::Store(e.clone()));
            }
        }
    }
}
