//! Fail-stop: when a batch's write fails, the log stops taking appends, and
//! the batch's outcome is unknown until a reopen, which is correct either
//! way: the failed batch is there whole (its write reached the disk before
//! the error) or not at all, the tree matches exactly the entries present,
//! and appends continue.

use crate::common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use ledger::merkle::{self, MemoryTree};
use ledger::store::{AppendBatch, Derived};
use ledger::{
    Envelope, Hash, IoFailure, Log, LogConfig, LogError, NoteSigner, SledStore, StaticKeys, Store,
    StoreError,
};

#[derive(Clone, Copy, PartialEq)]
enum Failure {
    /// The write fails before anything reaches the disk.
    BeforeWrite,
    /// The write reaches the disk, then an error is returned anyway (as
    /// when `fdatasync` reports an error after the data went out).
    AfterWrite,
}

/// A store whose `fail_at`-th append fails.
struct Failing {
    inner: SledStore,
    appends: AtomicU64,
    fail_at: u64,
    how: Failure,
}

impl Store for Failing {
    fn size(&self) -> Result<u64, StoreError> {
        self.inner.size()
    }
    fn derived_size(&self) -> Result<u64, StoreError> {
        self.inner.derived_size()
    }
    fn append(&self, batch: &AppendBatch) -> Result<(), StoreError> {
        if self.appends.fetch_add(1, Ordering::SeqCst) != self.fail_at {
            return self.inner.append(batch);
        }
        if self.how == Failure::AfterWrite {
            self.inner.append(batch)?;
        }
        Err(StoreError::Io(IoFailure::message("injected write failure")))
    }
    fn put_derived(&self, d: &Derived) -> Result<(), StoreError> {
        self.inner.put_derived(d)
    }
    fn record(&self, index: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.record(index)
    }
    fn hash(&self, level: u8, index: u64) -> Result<Option<Hash>, StoreError> {
        self.inner.hash(level, index)
    }
    fn hashes_from_level(&self, level_min: u8) -> Result<Vec<(u8, u64, Hash)>, StoreError> {
        self.inner.hashes_from_level(level_min)
    }
    fn lookup(
        &self,
        kind: &str,
        key: &str,
        before: u64,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError> {
        self.inner.lookup(kind, key, before, limit)
    }
    fn replace_index(&self, keys: &[(String, String, u64)]) -> Result<(), StoreError> {
        self.inner.replace_index(keys)
    }
    fn put_checkpoint(&self, size: u64, note: &str) -> Result<(), StoreError> {
        self.inner.put_checkpoint(size, note)
    }
    fn checkpoint(&self) -> Result<Option<String>, StoreError> {
        self.inner.checkpoint()
    }
    fn checkpoint_at(&self, size: u64) -> Result<Option<String>, StoreError> {
        self.inner.checkpoint_at(size)
    }
    fn put_cosignature(&self, size: u64, name: &str, line: &str) -> Result<(), StoreError> {
        self.inner.put_cosignature(size, name, line)
    }
    fn cosignatures(&self, size: u64) -> Result<Vec<String>, StoreError> {
        self.inner.cosignatures(size)
    }
}

fn author() -> SigningKey {
    SigningKey::from_bytes(&[91; 32])
}

fn signer() -> NoteSigner {
    NoteSigner::new("failstop.test/log", SigningKey::from_bytes(&[92; 32])).unwrap()
}

fn entry(n: u64) -> ledger::VerifiedEntry {
    let keys = StaticKeys::default().with("author", author().verifying_key());
    Envelope::sign(
        format!(r#"{{"type":"t","v":1,"n":{n},"participant":"p{}"}}"#, n % 2).into_bytes(),
        "author",
        &author(),
    )
    .verify(&keys)
    .unwrap()
}

fn open(store: Arc<dyn Store>) -> Log {
    Log::open(store, signer(), common::indexer(), LogConfig::default()).unwrap()
}

fn run(how: Failure) {
    const GOOD: u64 = 10;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Failing {
        inner: SledStore::open(dir.path()).unwrap(),
        appends: AtomicU64::new(0),
        fail_at: GOOD,
        how,
    });
    let log = open(store);
    for n in 0..GOOD {
        assert_eq!(log.append_blocking(entry(n)).unwrap(), n);
    }
    let err = log.append_blocking(entry(GOOD)).unwrap_err();
    assert!(matches!(err, LogError::Store(_)), "{err}");
    assert!(log.is_poisoned());
    // Nothing more is taken, nor acknowledged, until a reopen.
    assert!(matches!(
        log.append_blocking(entry(GOOD + 1)),
        Err(LogError::Poisoned)
    ));
    assert_eq!(log.size(), GOOD, "readers never see the failed batch");
    log.close();

    let log = open(Arc::new(SledStore::open(dir.path()).unwrap()));
    let size = log.size();
    let want = match how {
        Failure::BeforeWrite => GOOD,
        Failure::AfterWrite => GOOD + 1,
    };
    assert_eq!(size, want, "the failed batch is there whole or not at all");
    let mut model = MemoryTree::new();
    for n in 0..size {
        let e = log.entry(n).unwrap().unwrap();
        assert_eq!(e.entry, entry(n).bytes());
        model.push(merkle::leaf_hash(&e.entry));
    }
    assert_eq!(log.root(), (size, model.root()));
    assert_eq!(
        log.lookup("participant", "p0", u64::MAX, 100)
            .unwrap()
            .len() as u64,
        size.div_ceil(2),
        "derived index keys were rebuilt for what is present"
    );
    assert_eq!(log.append_blocking(entry(size)).unwrap(), size);
    log.close();
}

#[test]
fn a_batch_that_failed_before_its_write_is_absent_after_reopen() {
    run(Failure::BeforeWrite);
}

#[test]
fn a_batch_that_failed_after_its_write_is_whole_after_reopen() {
    run(Failure::AfterWrite);
}
