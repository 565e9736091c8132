//! The log: one sequencer thread that group-commits appends, and the read
//! side (roots, proofs, checkpoints, cosignatures) over the durable prefix.
//!
//! Appends from any number of tasks queue on a bounded channel. The
//! sequencer takes everything queued (up to `batch_entries_max`), computes
//! the new tree hashes from its in-memory frontier (no reads), writes the
//! batch in one transaction, flushes once, and only then answers every
//! waiter with its index. Readers only ever see the durable size.

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
use crate::store::{AppendBatch, Store, StoreError, StoreNodes};

/// Hash levels at or above this are mirrored in memory (1/64 of all nodes),
/// so a proof at a million entries touches the store only a few times.
const CACHE_LEVEL_MIN: u8 = 6;

#[derive(Clone, Debug)]
pub struct LogConfig {
    /// Most entries one group commit writes.
    pub batch_entries_max: usize,
    /// Most appends waiting for the sequencer; further appends wait for room.
    pub queue_entries_max: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            batch_entries_max: 2048,
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
    #[error("cosignature is not for the current checkpoint")]
    StaleCosignature,
}

/// Derives secondary-index keys from an entry. Index keys are derived data:
/// rebuildable from the entries at any time.
pub trait Indexer: Send + Sync {
    fn keys(&self, entry: &[u8]) -> Vec<(String, String)>;
}

/// Indexes by top-level JSON string fields: `(kind, field)` pairs.
pub struct FieldIndexer {
    fields: Vec<(&'static str, &'static str)>,
}

impl FieldIndexer {
    pub fn new(fields: Vec<(&'static str, &'static str)>) -> Self {
        Self { fields }
    }

    /// Consentry's indexes: by participant, by consent id, by agency.
    pub fn consentry() -> Self {
        Self::new(vec![
            ("participant", "participant"),
            ("consent", "consent_id"),
            ("agency", "agency"),
            ("agency", "requester"),
            ("agency", "holder"),
            ("agency", "assisted_by"),
        ])
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

struct Job {
    entry: VerifiedEntry,
    keys: Vec<(String, String)>,
    reply: oneshot::Sender<Result<u64, LogError>>,
}

/// What readers see: the durable size and root, and the cached upper levels.
struct View {
    size: u64,
    root: Hash,
    /// `cache[l]` holds level `CACHE_LEVEL_MIN + l`, every node in order.
    cache: Vec<Vec<Hash>>,
}

/// Observations the gateway exports as metrics.
#[derive(Debug, Default)]
pub struct LogStats {
    pub batches: AtomicU64,
    pub entries: AtomicU64,
    pub batch_entries_last: AtomicU64,
}

struct Inner {
    store: Arc<dyn Store>,
    signer: NoteSigner,
    indexer: Arc<dyn Indexer>,
    view: RwLock<View>,
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
        if level >= CACHE_LEVEL_MIN {
            if let Some(h) = self
                .view
                .cache
                .get((level - CACHE_LEVEL_MIN) as usize)
                .and_then(|l| l.get(index as usize))
            {
                return Ok(*h);
            }
        }
        StoreNodes(self.store).node(level, index)
    }
}

impl Log {
    /// Opens the log over `store`, signing checkpoints with `signer` (whose
    /// name is the log's origin). Must be called inside a tokio runtime
    /// only if `append` will be awaited; the sequencer is a plain thread.
    pub fn open(
        store: Arc<dyn Store>,
        signer: NoteSigner,
        indexer: Arc<dyn Indexer>,
        config: LogConfig,
    ) -> Result<Self, LogError> {
        let size = store.size()?;
        let mut cache: Vec<Vec<Hash>> = Vec::new();
        for (level, idx, h) in store.hashes_from_level(CACHE_LEVEL_MIN)? {
            let l = (level - CACHE_LEVEL_MIN) as usize;
            if cache.len() <= l {
                cache.resize(l + 1, Vec::new());
            }
            if cache[l].len() as u64 != idx {
                return Err(LogError::Inconsistent(format!(
                    "hash level {level} has a gap at {idx}"
                )));
            }
            cache[l].push(h);
        }
        let view = View {
            size,
            root: merkle::empty_root(),
            cache,
        };
        let frontier = Frontier::load(
            &Nodes {
                store: store.as_ref(),
                view: &view,
            },
            size,
        )?;
        let view = View {
            root: frontier.root(),
            ..view
        };
        let inner = Arc::new(Inner {
            store,
            signer,
            indexer,
            view: RwLock::new(view),
            poisoned: AtomicBool::new(false),
            stats: LogStats::default(),
        });
        let (tx, rx) = mpsc::channel(config.queue_entries_max.max(1));
        let seq_inner = inner.clone();
        let batch_max = config.batch_entries_max.max(1);
        let thread = std::thread::Builder::new()
            .name("ledger-sequencer".into())
            .spawn(move || sequencer(seq_inner, frontier, rx, batch_max))
            .map_err(|e| LogError::Store(StoreError::Io(e.to_string())))?;
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

    /// Appends a verified entry; resolves with its index once it is durable.
    pub async fn append(&self, entry: VerifiedEntry) -> Result<u64, LogError> {
        let (job, rx) = self.job(entry)?;
        self.tx.send(job).await.map_err(|_| LogError::Closed)?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// [`Log::append`] for threads outside any async runtime.
    pub fn append_blocking(&self, entry: VerifiedEntry) -> Result<u64, LogError> {
        let (job, rx) = self.job(entry)?;
        self.tx.blocking_send(job).map_err(|_| LogError::Closed)?;
        rx.blocking_recv().map_err(|_| LogError::Closed)?
    }

    fn job(
        &self,
        entry: VerifiedEntry,
    ) -> Result<(Job, oneshot::Receiver<Result<u64, LogError>>), LogError> {
        if self.inner.poisoned.load(Ordering::Acquire) {
            return Err(LogError::Poisoned);
        }
        // Index keys are derived here, on the caller's task, to keep the
        // sequencer's critical path short.
        let keys = self.inner.indexer.keys(entry.bytes());
        let (reply, rx) = oneshot::channel();
        Ok((Job { entry, keys, reply }, rx))
    }

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

    pub fn origin(&self) -> &str {
        self.inner.signer.name()
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

    /// Signs and stores a checkpoint for the current durable size.
    pub fn publish_checkpoint(&self) -> Result<String, LogError> {
        let (size, root) = self.root();
        let note = Checkpoint {
            origin: self.origin().to_string(),
            size,
            root,
        }
        .sign(&self.inner.signer)?;
        self.inner.store.put_checkpoint(&note)?;
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
        let text = text.to_string();
        let mut out = note.clone();
        let mut n = 0;
        for line in cosigs {
            // Only lines for exactly this body; an older checkpoint of the
            // same size cannot exist, but be strict anyway.
            if let Some((body, sig)) = line.split_once('\u{0}') {
                if body == text {
                    out.push_str(sig);
                    n += 1;
                }
            }
        }
        Ok((out, n))
    }

    /// Accepts a witness cosignature line for the latest checkpoint.
    pub fn add_cosignature(
        &self,
        line: &str,
        witness: &CosignatureVerifier,
    ) -> Result<u64, LogError> {
        let note = self.checkpoint()?;
        let (text, _) = split_note(&note)?;
        let cp = Checkpoint::parse(text)?;
        let sig = parse_sig_line(line.trim_end())?;
        if !witness.matches(&sig) {
            return Err(NoteError::BadSignature(sig.name).into());
        }
        let ts = witness
            .verify(text, &sig)
            .map_err(|_| LogError::StaleCosignature)?;
        self.inner.store.put_cosignature(
            cp.size,
            witness.name(),
            &format!("{text}\u{0}{}", sig.line()),
        )?;
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

fn sequencer(
    inner: Arc<Inner>,
    mut frontier: Frontier,
    mut rx: mpsc::Receiver<Job>,
    batch_max: usize,
) {
    let mut jobs: Vec<Job> = Vec::with_capacity(batch_max);
    while let Some(first) = rx.blocking_recv() {
        jobs.push(first);
        while jobs.len() < batch_max {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        if inner.poisoned.load(Ordering::Acquire) {
            for j in jobs.drain(..) {
                let _ = j.reply.send(Err(LogError::Poisoned));
            }
            continue;
        }
        let mut batch = AppendBatch {
            first: frontier.size(),
            ..Default::default()
        };
        let mut next = frontier.clone();
        for j in &jobs {
            let idx = next.size();
            batch.records.push(j.entry.envelope().encode());
            next.push(j.entry.leaf_hash(), |level, i, h| {
                batch.hashes.push((level, i, *h))
            });
            for (k, v) in &j.keys {
                batch.index_keys.push((k.clone(), v.clone(), idx));
            }
        }
        match inner.store.append(&batch) {
            Ok(()) => {
                {
                    let mut view = inner.view.write().unwrap_or_else(|p| p.into_inner());
                    for (level, _idx, h) in &batch.hashes {
                        if *level >= CACHE_LEVEL_MIN {
                            let l = (*level - CACHE_LEVEL_MIN) as usize;
                            if view.cache.len() <= l {
                                view.cache.resize(l + 1, Vec::new());
                            }
                            view.cache[l].push(*h);
                        }
                    }
                    view.size = next.size();
                    view.root = next.root();
                }
                frontier = next;
                let n = jobs.len() as u64;
                inner.stats.batches.fetch_add(1, Ordering::Relaxed);
                inner.stats.entries.fetch_add(n, Ordering::Relaxed);
                inner.stats.batch_entries_last.store(n, Ordering::Relaxed);
                for (k, j) in jobs.drain(..).enumerate() {
                    let _ = j.reply.send(Ok(batch.first + k as u64));
                }
            }
            Err(e) => {
                // Fail-stop: after a failed write we cannot know what is on
                // disk, so nothing more is acknowledged until a reopen
                // reloads the truth from the store.
                inner.poisoned.store(true, Ordering::Release);
                let msg = e.to_string();
                for j in jobs.drain(..) {
                    let _ = j
                        .reply
                        .send(Err(LogError::Store(StoreError::Io(msg.clone()))));
                }
            }
        }
    }
}
