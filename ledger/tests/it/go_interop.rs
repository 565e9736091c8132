//! Our checkpoints and proofs, checked by Go's `golang.org/x/mod/sumdb/note`
//! and `.../tlog` (Debian's golang-golang-x-mod-dev, GOPATH mode).

use crate::common;

use std::process::Command;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::SigningKey;
use ledger::{Checkpoint, Envelope, Log, LogConfig, NoteSigner, SledStore, StaticKeys, Store};
use serde_json::json;

const SIZES: &[u64] = &[
    1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 255, 257, 513, 1000, 1023, 1024, 1025,
];

#[test]
fn go_sumdb_verifies_our_checkpoints_and_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let author = SigningKey::from_bytes(&[31; 32]);
    let keys = StaticKeys::default().with("author", author.verifying_key());
    let signer = NoteSigner::new(
        "interop.consentry.test/log",
        SigningKey::from_bytes(&[32; 32]),
    )
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("db")).unwrap());
    let log = Log::open(
        store,
        signer.clone(),
        common::indexer(),
        LogConfig::default(),
    )
    .unwrap();

    let max = *SIZES.iter().max().unwrap();
    let mut entries = Vec::new();
    for i in 0..max {
        let bytes = format!(r#"{{"type":"interop","v":1,"i":{i}}}"#).into_bytes();
        let e = Envelope::sign(bytes.clone(), "author", &author)
            .verify(&keys)
            .unwrap();
        assert_eq!(log.append_blocking(e).unwrap(), i);
        entries.push(bytes);
    }

    let b64 = |h: &[u8]| B64.encode(h);
    let mut trees = Vec::new();
    for &size in SIZES {
        let root = log.root_at(size).unwrap();
        let note = Checkpoint {
            origin: signer.name().into(),
            size,
            root,
        }
        .sign(&signer)
        .unwrap();
        let mut idxs = vec![
            0,
            size / 2,
            size - 1,
            (size * 7) / 11,
            size.saturating_sub(2),
        ];
        idxs.sort();
        idxs.dedup();
        let inclusion: Vec<_> = idxs
            .iter()
            .map(|&i| {
                let p = log.inclusion_proof(i, size).unwrap();
                json!({"index": i, "entry": b64(&entries[i as usize]), "proof": p.iter().map(|h| b64(h)).collect::<Vec<_>>()})
            })
            .collect();
        let mut olds = vec![1, size / 2, size - 1, size, (size * 3) / 7];
        olds.retain(|&o| o >= 1);
        olds.sort();
        olds.dedup();
        let consistency: Vec<_> = olds
            .iter()
            .map(|&old| {
                let p = log.consistency_proof(old, size).unwrap();
                json!({"old": old, "old_root": b64(&log.root_at(old).unwrap()), "proof": p.iter().map(|h| b64(h)).collect::<Vec<_>>()})
            })
            .collect();
        trees.push(
            json!({"size": size, "note": note, "inclusion": inclusion, "consistency": consistency}),
        );
    }
    let fixture = json!({"vkey": signer.verifier().to_string(), "trees": trees});
    let fx_path = dir.path().join("fixture.json");
    std::fs::write(&fx_path, serde_json::to_vec(&fixture).unwrap()).unwrap();
    log.close();

    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/go/interop.go");
    let out = Command::new("go")
        .args(["run", src])
        .arg(&fx_path)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", dir.path().join("gocache"))
        .env("GOFLAGS", "-mod=")
        .output()
        .expect("the go toolchain is needed: scripts/test.sh installs golang-go and golang-golang-x-mod-dev");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "go checker failed:\n{stdout}\n{stderr}"
    );
    let checks: usize = stdout
        .trim()
        .strip_prefix("ok ")
        .and_then(|s| s.strip_suffix(" checks"))
        .and_then(|s| s.parse().ok())
        .unwrap();
    eprintln!(
        "go verified {checks} checkpoints and proofs over {} tree sizes",
        SIZES.len()
    );
    assert!(checks >= SIZES.len() * 5, "too few checks ran: {checks}");
}
