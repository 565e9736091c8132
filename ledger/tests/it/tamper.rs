//! Tamper detection: the whole-log check names the index of a flipped
//! entry or signature byte, a flipped or missing stored hash, a damaged
//! frame and a truncated segment; it ignores a torn tail, refuses a
//! running store, and writes nothing.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use ledger::store::{KEY_HASH, SEGMENT_FILE, SLED_DIR, TREE_DERIVED};
use ledger::{
    Envelope, FindingKind, Log, LogConfig, NoteSigner, SledStore, StaticKeys, Store, StoreError,
};

const N: u64 = 100;

fn signer() -> NoteSigner {
    NoteSigner::new("tamper.test/log", SigningKey::from_bytes(&[41; 32])).unwrap()
}

fn keys() -> StaticKeys {
    StaticKeys::default().with("author", SigningKey::from_bytes(&[42; 32]).verifying_key())
}

fn build(dir: &Path) {
    let author = SigningKey::from_bytes(&[42; 32]);
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).unwrap());
    let log = Log::open(store, signer(), common::indexer(), LogConfig::default()).unwrap();
    for i in 0..N {
        let e = Envelope::sign(
            format!(r#"{{"type":"t","v":1,"i":{i}}}"#).into_bytes(),
            "author",
            &author,
        );
        log.append_blocking(e.verify(&keys()).unwrap()).unwrap();
    }
    log.publish_checkpoint().unwrap();
    log.close();
}

fn check(dir: &Path) -> Result<ledger::FsckReport, ledger::Finding> {
    ledger::fsck::fsck_path(dir, &keys(), &signer().verifier())
}

/// Builds a clean log, lets `tamper` edit the stopped store's files, then
/// checks it read-only.
fn tampered(tamper: impl FnOnce(&Path)) -> Result<ledger::FsckReport, ledger::Finding> {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    tamper(dir.path());
    check(dir.path())
}

/// Edits sled's derived tree of a stopped store.
fn with_derived(dir: &Path, edit: impl FnOnce(&sled::Tree)) {
    // Through the store's own opener: sled releases its lock a moment
    // after the log closes, and a bare `sled::open` can lose that race.
    let db = ledger::store::open_db(&dir.join(SLED_DIR)).unwrap();
    edit(&db.open_tree(TREE_DERIVED).unwrap());
    db.flush().unwrap();
}

fn hash_key(level: u8, index: u64) -> Vec<u8> {
    let mut k = vec![KEY_HASH, level];
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn flip(tree: &sled::Tree, key: &[u8], at: usize) {
    let mut v = tree.get(key).unwrap().unwrap().to_vec();
    v[at] ^= 0x01;
    tree.insert(key, v).unwrap();
}

fn segment(dir: &Path) -> std::path::PathBuf {
    dir.join(SEGMENT_FILE)
}

/// Byte offset of entry `i`'s JSON in the segment (each entry is unique).
fn entry_offset(dir: &Path, i: u64) -> usize {
    let bytes = std::fs::read(segment(dir)).unwrap();
    let needle = format!(r#"{{"type":"t","v":1,"i":{i}}}"#).into_bytes();
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("entry is in the segment")
}

fn flip_file(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_log_longer_than_its_checkpoint_passes() {
    // Entries appended after the last checkpoint (a stop between two
    // publications): the root at the checkpoint's size is recomputed.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let log = Log::open(store, signer(), common::indexer(), LogConfig::default()).unwrap();
    let author = SigningKey::from_bytes(&[42; 32]);
    for i in N..N + 13 {
        let e = Envelope::sign(
            format!(r#"{{"type":"t","v":1,"i":{i}}}"#).into_bytes(),
            "author",
            &author,
        );
        log.append_blocking(e.verify(&keys()).unwrap()).unwrap();
    }
    log.close();
    let r = check(dir.path()).unwrap();
    assert_eq!((r.size, r.checkpoint_size), (N + 13, N));
}

#[test]
fn clean_log_passes() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let r = check(dir.path()).unwrap();
    assert_eq!((r.size, r.checkpoint_size), (N, N));
}

#[test]
fn flipped_entry_byte_is_found() {
    let f = tampered(|d| {
        let at = entry_offset(d, 37) + 5;
        flip_file(&segment(d), at);
    })
    .unwrap_err();
    assert_eq!(f.index, 37, "{f}");
}

#[test]
fn flipped_signature_byte_is_found() {
    let f = tampered(|d| {
        // entry JSON ‖ signature count ‖ key id length ‖ "author" ‖ signature
        let json = r#"{"type":"t","v":1,"i":12}"#.len();
        let at = entry_offset(d, 12) + json + 1 + 1 + "author".len() + 63;
        flip_file(&segment(d), at);
    })
    .unwrap_err();
    assert_eq!(f.index, 12, "{f}");
}

#[test]
fn flipped_stored_hash_is_found() {
    // Level 3, index 6 covers leaves 48..56; the finding names its first
    // leaf. Levels below 3 are not stored: they are computed from entries.
    let f = tampered(|d| with_derived(d, |t| flip(t, &hash_key(3, 6), 0))).unwrap_err();
    assert_eq!(f.index, 48, "{f}");
}

#[test]
fn flipped_interior_hash_is_found() {
    // Level 5, index 1 covers leaves 32..64.
    let f = tampered(|d| with_derived(d, |t| flip(t, &hash_key(5, 1), 31))).unwrap_err();
    assert_eq!(f.index, 32, "{f}");
}

#[test]
fn missing_stored_hash_is_found() {
    let f = tampered(|d| {
        with_derived(d, |t| {
            t.remove(hash_key(4, 3)).unwrap();
        })
    })
    .unwrap_err();
    assert_eq!(f.index, 48, "{f}");
}

#[test]
fn damaged_frame_is_found() {
    // Frame magic of entry 44's frame (each append here is its own batch):
    // 24-byte frame header and a 4-byte record length precede the record.
    let f = tampered(|d| {
        let at = entry_offset(d, 44) - 4 - 4 - 24;
        flip_file(&segment(d), at);
    })
    .unwrap_err();
    assert_eq!(f.index, 44, "{f}");
}

#[test]
fn truncated_log_is_found() {
    let f = tampered(|d| {
        let at = entry_offset(d, 90) - 4 - 4 - 24;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(segment(d))
            .unwrap();
        file.set_len(at as u64).unwrap();
    })
    .unwrap_err();
    assert_eq!(f.index, 90, "{f}");
    assert!(
        matches!(f.kind, FindingKind::Unopenable(StoreError::Lost { .. })),
        "{f}"
    );
}

#[test]
fn torn_tail_is_ignored_and_then_cut() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    // Half a frame of garbage after the last one: a write that never synced.
    let mut bytes = std::fs::read(segment(dir.path())).unwrap();
    let clean_len = bytes.len();
    bytes.extend_from_slice(b"CSF1\0\0\0\0\0\0\0\x64garbage");
    std::fs::write(segment(dir.path()), &bytes).unwrap();
    let r = check(dir.path()).unwrap();
    assert_eq!(r.size, N);
    // fsck wrote nothing; a writable open cuts the tail.
    assert_eq!(
        std::fs::metadata(segment(dir.path())).unwrap().len() as usize,
        bytes.len()
    );
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.size().unwrap(), N);
    drop(store);
    assert_eq!(
        std::fs::metadata(segment(dir.path())).unwrap().len() as usize,
        clean_len
    );
}

#[test]
fn fsck_refuses_a_running_store_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let before = snapshot(dir.path());
    check(dir.path()).unwrap();
    assert_eq!(snapshot(dir.path()), before, "fsck changed the store");
    let open = SledStore::open(dir.path()).unwrap();
    let f = check(dir.path()).unwrap_err();
    assert!(
        matches!(f.kind, FindingKind::Unopenable(StoreError::Locked)),
        "{f}"
    );
    drop(open);
}

/// Every file's path, length and modification time under `dir`.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), m.len(), m.modified().unwrap()));
            }
        }
    }
    out.sort();
    out
}
