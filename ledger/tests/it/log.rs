//! The sled-backed log against an in-memory model: random append sequences
//! from concurrent writers, every proof, reopen, indexes, cosignatures, and
//! bad input that must write nothing.

use crate::common;

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use ledger::merkle::{self, MemoryTree};
use ledger::{
    Checkpoint, Cosigner, Envelope, Log, LogConfig, LogError, SledStore, StaticKeys, Store,
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
    Log::open(store, signer(), common::indexer(), LogConfig::default()).unwrap()
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

/// The participant an entry names (the test entries carry one).
fn participant_of(bytes: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    v["participant"].as_str().unwrap().to_string()
}

#[test]
fn indexes_checkpoints_and_cosignatures() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = open(dir.path());
    // Concurrent tasks land in any order: expectations come from the
    // indexes the appends returned, never from the order tasks were spawned.
    let entries = append_rounds(&log, &rt, &[10], 0);
    let want_p0: Vec<u64> = (0..entries.len() as u64)
        .rev()
        .filter(|&i| participant_of(&entries[i as usize]) == "p0")
        .collect();
    assert_eq!(want_p0.len(), 4, "spawns 0, 3, 6 and 9 name p0");
    assert_eq!(
        log.lookup("participant", "p0", u64::MAX, 10).unwrap(),
        want_p0
    );
    // Paged by `before`: the one p0 entry below the second newest.
    assert_eq!(
        log.lookup("participant", "p0", want_p0[1], 1).unwrap(),
        vec![want_p0[2]]
    );
    assert_eq!(
        log.lookup("participant", "p00", u64::MAX, 10).unwrap(),
        Vec::<u64>::new()
    );
    // Rebuilding from the entries gives the same index.
    log.rebuild_indexes().unwrap();
    assert_eq!(
        log.lookup("participant", "p0", u64::MAX, 10).unwrap(),
        want_p0
    );

    let note = log.publish_checkpoint().unwrap();
    let cp = Checkpoint::open(&note, &signer().verifier()).unwrap();
    assert_eq!((cp.size, cp.root), log.root());

    let w = Cosigner::new("witness.example/w1", SigningKey::from_bytes(&[21; 32])).unwrap();
    let line = w.cosign(&cp.body(), 1_800_000_000).line();
    assert_eq!(
        log.add_cosignature(cp.size, &line, &w.verifier()).unwrap(),
        1_800_000_000
    );
    let (with, n) = log.checkpoint_with_cosignatures().unwrap();
    assert_eq!(n, 1);
    assert!(with.ends_with(&line));
    // The note still opens with the log key alone.
    assert!(Checkpoint::open(&with, &signer().verifier()).is_ok());

    // A later checkpoint does not stop a lagging witness cosigning the
    // earlier one: recent checkpoints are kept by size.
    append_rounds(&log, &rt, &[3], 10);
    let later = Checkpoint::open(&log.publish_checkpoint().unwrap(), &signer().verifier()).unwrap();
    assert_eq!(later.size, 13);
    let w2 = Cosigner::new("witness.example/w2", SigningKey::from_bytes(&[22; 32])).unwrap();
    let late_line = w2.cosign(&cp.body(), 7).line();
    assert_eq!(
        log.add_cosignature(cp.size, &late_line, &w2.verifier())
            .unwrap(),
        7
    );

    // Each refusal has its own typed error.
    let other_size = Checkpoint {
        size: 3,
        ..cp.clone()
    };
    assert!(matches!(
        log.add_cosignature(3, &w.cosign(&other_size.body(), 1).line(), &w.verifier()),
        Err(LogError::UnknownCheckpoint { size: 3 })
    ));
    // A cosignature over the 13-entry checkpoint offered for the 10-entry one.
    assert!(matches!(
        log.add_cosignature(cp.size, &w.cosign(&later.body(), 1).line(), &w.verifier()),
        Err(LogError::BadCosignature { size: 10, .. })
    ));
    assert!(matches!(
        log.add_cosignature(cp.size, &w2.cosign(&cp.body(), 1).line(), &w.verifier()),
        Err(LogError::NotThisWitness { .. })
    ));
    assert!(matches!(
        log.add_cosignature(cp.size, "not a signature line", &w.verifier()),
        Err(LogError::MalformedCosignature(_))
    ));
    log.close();
}

#[test]
fn bad_input_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let log = open(dir.path());
    append_rounds(&log, &rt, &[5], 0);
    let note = log.publish_checkpoint().unwrap();
    let cp = Checkpoint::open(&note, &signer().verifier()).unwrap();
    log.close();
    let segment = || std::fs::read(dir.path().join(ledger::store::SEGMENT_FILE)).unwrap();
    let before = segment();
    let log = open(dir.path());

    // Entries that fail verification never become a `VerifiedEntry`, so the
    // type system keeps them from the log; check each is refused.
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

    // What the log itself takes from outside: cosignature lines and proof
    // sizes. Each bad one is refused through the real log.
    let w = Cosigner::new("witness.example/w1", SigningKey::from_bytes(&[21; 32])).unwrap();
    let mut forged = w.cosign(&cp.body(), 5).line();
    forged.replace_range(forged.len() - 6..forged.len() - 2, "AAAA");
    for line in ["", "— x\n", forged.as_str()] {
        assert!(
            log.add_cosignature(cp.size, line, &w.verifier()).is_err(),
            "{line:?}"
        );
    }
    assert!(log
        .add_cosignature(cp.size + 1, &w.cosign(&cp.body(), 5).line(), &w.verifier())
        .is_err());
    assert!(log.inclusion_proof(0, 6).is_err());
    assert!(log.inclusion_proof(5, 5).is_err());
    assert!(log.consistency_proof(6, 5).is_err());
    assert!(log.consistency_proof(2, 6).is_err());
    assert_eq!(log.size(), 5);
    assert_eq!(log.checkpoint_with_cosignatures().unwrap().1, 0);
    log.close();
    // The entry segment is byte for byte what it was.
    assert_eq!(segment(), before);
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.size().unwrap(), 5);
    assert_eq!(store.record(5).unwrap(), None);
}
