//! Tamper detection: the whole-log check names the index of a flipped
//! entry byte, a flipped node hash, a missing entry and a truncated tree.

use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use ledger::store::{TREE_ENTRIES, TREE_HASHES, TREE_META};
use ledger::{
    fsck, Envelope, FieldIndexer, Log, LogConfig, NoteSigner, SledStore, StaticKeys, Store,
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
    let log = Log::open(
        store,
        signer(),
        Arc::new(FieldIndexer::consentry()),
        LogConfig::default(),
    )
    .unwrap();
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
    let store = SledStore::open(dir).unwrap();
    fsck(&store, &keys(), &signer().verifier(), 2, |_, _| {})
}

/// Builds a clean log, lets `tamper` edit the raw sled trees, then checks.
fn tampered(tamper: impl FnOnce(&sled::Db)) -> Result<ledger::FsckReport, ledger::Finding> {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    {
        let db = sled::open(dir.path()).unwrap();
        tamper(&db);
        db.flush().unwrap();
    }
    check(dir.path())
}

fn hash_key(level: u8, index: u64) -> Vec<u8> {
    let mut k = vec![level];
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn flip(tree: &sled::Tree, key: &[u8], at: usize) {
    let mut v = tree.get(key).unwrap().unwrap().to_vec();
    v[at] ^= 0x01;
    tree.insert(key, v).unwrap();
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
    // Byte 10 of the record lies inside the entry JSON (after the 4-byte length).
    let f = tampered(|db| {
        flip(
            &db.open_tree(TREE_ENTRIES).unwrap(),
            &37u64.to_be_bytes(),
            10,
        )
    })
    .unwrap_err();
    assert_eq!(f.index, 37, "{f}");
}

#[test]
fn flipped_signature_byte_is_found() {
    let f = tampered(|db| {
        let t = db.open_tree(TREE_ENTRIES).unwrap();
        let len = t.get(12u64.to_be_bytes()).unwrap().unwrap().len();
        flip(&t, &12u64.to_be_bytes(), len - 1);
    })
    .unwrap_err();
    assert_eq!(f.index, 12, "{f}");
}

#[test]
fn flipped_leaf_hash_is_found() {
    let f =
        tampered(|db| flip(&db.open_tree(TREE_HASHES).unwrap(), &hash_key(0, 50), 0)).unwrap_err();
    assert_eq!(f.index, 50, "{f}");
}

#[test]
fn flipped_interior_hash_is_found() {
    // Level 2, index 5 covers leaves 20..24; the finding names its first leaf.
    let f =
        tampered(|db| flip(&db.open_tree(TREE_HASHES).unwrap(), &hash_key(2, 5), 31)).unwrap_err();
    assert_eq!(f.index, 20, "{f}");
}

#[test]
fn missing_entry_is_found() {
    let f = tampered(|db| {
        db.open_tree(TREE_ENTRIES)
            .unwrap()
            .remove(60u64.to_be_bytes())
            .unwrap();
    })
    .unwrap_err();
    assert_eq!(f.index, 60, "{f}");
}

#[test]
fn truncated_tree_is_found() {
    let f = tampered(|db| {
        let e = db.open_tree(TREE_ENTRIES).unwrap();
        for i in 90..N {
            e.remove(i.to_be_bytes()).unwrap();
        }
        db.open_tree(TREE_META)
            .unwrap()
            .insert("size", &90u64.to_be_bytes())
            .unwrap();
    })
    .unwrap_err();
    assert_eq!(f.index, 90, "{f}");
}

#[test]
fn entry_past_the_end_is_found() {
    let f = tampered(|db| {
        db.open_tree(TREE_META)
            .unwrap()
            .insert("size", &95u64.to_be_bytes())
            .unwrap();
    })
    .unwrap_err();
    assert_eq!(f.index, 95, "{f}");
}
