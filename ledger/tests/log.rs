//! The sled-backed log against an in-memory model: random append sequences
//! from concurrent writers, every proof, reopen, indexes, cosignatures, and
//! bad input that must write nothing.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use ledger::merkle::{self, MemoryTree};
use ledger::{
    Checkpoint, Cosigner, Envelope, FieldIndexer, Log, LogConfig, SledStore, StaticKeys, Store,
};
use proptest::prelude::*;

fn author() -> SigningKey {
    SigningKey::from_bytes(&[11; 32])
}

fn keys() -> StaticKeys {
    StaticKeys::default().with("author", author().verifying_key())
}

fn signer() -> ledger::NoteSigner {
    ledger::NoteSigner::new("test.consentry/log", SigningKey::from_bytes(&[12; 32])).unwrap()
}

fn open(dir: &std::path::Path) -> Log {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).unwrap());
    Log::open(
        store,
        signer(),
        Arc::new(FieldIndexer::consentry()),
        LogConfig::default(),
    )
    .unwrap()
}

fn entry(i: u64, participant: &str) -> ledger::VerifiedEntry {
    let bytes = format!(r#"{{"type":"test.entry","v":1,"n":{i},"participant":"{participant}"}}"#)
        .into_bytes();
    Envelope::sign(bytes, "author", &author())
        .verify(&keys())
        .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Appends `batches` as rounds of concurrent writers; returns entries in index order.
fn append_rounds(
    log: &Log,
    rt: &tokio::runtime::Runtime,
    batches: &[usize],
    start: u64,
) -> Vec<Vec<u8>> {
    let mut by_index = std::collections::BTreeMap::new();
    let mut n = start;
    for &b in batches {
        let handles: Vec<_> = (0..b)
            .map(|_| {
                let e = entry(n, &format!("p{}", n % 3));
                n += 1;
                let log = log.clone();
                let bytes = e.bytes().to_vec();
                rt.spawn(async move { (log.append(e).await.unwrap(), bytes) })
            })
            .collect();
        for h in handles {
            let (idx, bytes) = rt.block_on(h).unwrap();
            assert!(
                by_index.insert(idx, bytes).is_none(),
                "index {idx} handed out twice"
            );
        }
    }
    let v: Vec<_> = by_index.into_iter().collect();
    for (k, (idx, _)) in v.iter().enumerate() {
        assert_eq!(*idx, start + k as u64, "indexes are dense");
    }
    v.into_iter().map(|(_, b)| b).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]
    #[test]
    fn random_appends_match_the_model(batches in proptest::collection::vec(1usize..40, 1..8), reopen_at in 0usize..8) {
        let dir = tempfile::tempdir().unwrap();
        let rt = rt();
        let mut log = open(dir.path());
        let mut model = MemoryTree::new();
        let mut all = Vec::new();
        for (r, b) in batches.iter().enumerate() {
            if r == reopen_at {
                log.close();
                log = open(dir.path());
                prop_assert_eq!(log.size(), model.size());
            }
            let got = append_rounds(&log, &rt, &[*b], model.size());
            for bytes in &got {
                model.push(merkle::leaf_hash(bytes));
            }
            all.extend(got);
        }
        let n = model.size();
        prop_assert_eq!(log.root(), (n, model.root()));
        for (i, bytes) in all.iter().enumerate() {
            prop_assert_eq!(&log.entry(i as u64).unwrap().unwrap().entry, bytes);
        }
        for size in 1..=n {
            let root = log.root_at(size).unwrap();
            prop_assert_eq!(root, merkle::subtree_root(&model, 0, size).unwrap());
            for i in (0..size).step_by(((size / 7) as usize).max(1)) {
                let p = log.inclusion_proof(i, size).unwrap();
                prop_assert!(merkle::verify_inclusion(&merkle::leaf_hash(&all[i as usize]), i, size, &p, &root).is_ok());
            }
            for old in (1..=size).step_by(((size / 5) as usize).max(1)) {
                let p = log.consistency_proof(old, size).unwrap();
                let old_root = log.root_at(old).unwrap();
                prop_assert!(merkle::verify_consistency(old, size, &p, &old_root, &root).is_ok());
            }
        }
        prop_assert!(log.inclusion_proof(0, n + 1).is_err());
        log.close();
    }
}

#[test]
fn indexes_checkpoints_and_cosignatures() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = open(dir.path());
    append_rounds(&log, &rt, &[10], 0);
    // p0 holds entries 0, 3, 6, 9; newest first, paged by `before`.
    assert_eq!(
        log.lookup("participant", "p0", u64::MAX, 10).unwrap(),
        vec![9, 6, 3, 0]
    );
    assert_eq!(log.lookup("participant", "p0", 6, 1).unwrap(), vec![3]);
    assert_eq!(
        log.lookup("participant", "p00", u64::MAX, 10).unwrap(),
        Vec::<u64>::new()
    );
    // Rebuilding from the entries gives the same index.
    log.rebuild_indexes().unwrap();
    assert_eq!(
        log.lookup("participant", "p0", u64::MAX, 10).unwrap(),
        vec![9, 6, 3, 0]
    );

    let note = log.publish_checkpoint().unwrap();
    let cp = Checkpoint::open(&note, &signer().verifier()).unwrap();
    assert_eq!((cp.size, cp.root), log.root());

    let w = Cosigner::new("witness.example/w1", SigningKey::from_bytes(&[21; 32])).unwrap();
    let line = w.cosign(&cp.body(), 1_800_000_000).line();
    assert_eq!(
        log.add_cosignature(&line, &w.verifier()).unwrap(),
        1_800_000_000
    );
    let (with, n) = log.checkpoint_with_cosignatures().unwrap();
    assert_eq!(n, 1);
    assert!(with.ends_with(&line));
    // The note still opens with the log key alone.
    assert!(Checkpoint::open(&with, &signer().verifier()).is_ok());
    // A cosignature over another checkpoint is refused.
    let stale = w
        .cosign(
            &Checkpoint {
                size: 3,
                ..cp.clone()
            }
            .body(),
            1,
        )
        .line();
    assert!(log.add_cosignature(&stale, &w.verifier()).is_err());
    let other = Cosigner::new("witness.example/w2", SigningKey::from_bytes(&[22; 32])).unwrap();
    assert!(log
        .add_cosignature(&other.cosign(&cp.body(), 1).line(), &w.verifier())
        .is_err());
    log.close();
}

#[test]
fn bad_input_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let good = br#"{"type":"t","v":1}"#.to_vec();
    let mut bad_sig = Envelope::sign(good.clone(), "author", &author());
    bad_sig.signatures[0].signature[0] ^= 1;
    let unknown = Envelope::sign(good.clone(), "stranger", &author());
    let oversized = Envelope::sign(
        format!(r#"{{"type":"t","v":1,"x":"{}"}}"#, "a".repeat(20_000)).into_bytes(),
        "author",
        &author(),
    );
    for env in [bad_sig, unknown, oversized] {
        assert!(env.verify(&keys()).is_err());
    }
    assert!(Envelope::from_json(b"{\"entry\": 5}").is_err());
    // None of these could even be offered to the log: the type system needs
    // a VerifiedEntry. The log is unchanged.
    assert_eq!(log.size(), 0);
    log.close();
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.size().unwrap(), 0);
    assert_eq!(store.record(0).unwrap(), None);
}
