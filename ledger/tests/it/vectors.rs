//! The transparency-dev RFC 6962 proof vectors. The folder is named by
//! `CONSENTRY_MERKLE_VECTORS` (`.ci/run` and `scripts/test.sh` set it),
//! else `shared/testdata/merkle` beside the repository. Every file must be
//! found and checked; a missing or empty folder fails the test.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ledger::merkle::{verify_consistency, verify_inclusion, Hash};
use serde_json::Value;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
    {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

/// A hash field. Our API takes typed 32-byte hashes, so a value that cannot
/// be one stands in as a digest of its bytes: equal only to itself, as the
/// reference implementation's byte comparison treats it.
fn hash(v: &Value) -> Option<Hash> {
    let raw = match v {
        Value::String(s) => B64.decode(s).ok()?,
        Value::Null => Vec::new(),
        _ => return None,
    };
    match Hash::try_from(raw.as_slice()) {
        Ok(h) => Some(h),
        Err(_) => {
            use sha2::Digest;
            let mut d = sha2::Sha256::new();
            d.update(b"not a hash:");
            d.update(&raw);
            Some(d.finalize().into())
        }
    }
}

/// The leaf hash is checked for size, as the reference does.
fn strict_hash(v: &Value) -> Option<Hash> {
    B64.decode(v.as_str()?).ok()?.try_into().ok()
}

fn hashes(v: &Value) -> Option<Vec<Hash>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(a) => a.iter().map(hash).collect(),
        _ => None,
    }
}

fn check(v: &Value, kind: &str) -> bool {
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    match kind {
        "inclusion" => {
            let (Some(root), Some(leaf), Some(proof)) = (
                hash(&v["root"]),
                strict_hash(&v["leafHash"]),
                hashes(&v["proof"]),
            ) else {
                return false;
            };
            verify_inclusion(&leaf, n("leafIdx"), n("treeSize"), &proof, &root).is_ok()
        }
        _ => {
            let (Some(r1), Some(r2), Some(proof)) =
                (hash(&v["root1"]), hash(&v["root2"]), hashes(&v["proof"]))
            else {
                return false;
            };
            verify_consistency(n("size1"), n("size2"), &proof, &r1, &r2).is_ok()
        }
    }
}

#[test]
fn transparency_dev_vectors() {
    // Never skipped: without its input this test fails, it does not pass.
    let dir = std::env::var("CONSENTRY_MERKLE_VECTORS").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/testdata/merkle").to_string()
    });
    assert!(
        Path::new(&dir).is_dir(),
        "the RFC 6962 vectors are missing: no folder {dir}; set CONSENTRY_MERKLE_VECTORS to the \
         transparency-dev vectors (shared/testdata/merkle beside the repository)"
    );
    let mut checked = 0;
    for kind in ["inclusion", "consistency"] {
        let mut list = Vec::new();
        files(&Path::new(&dir).join(kind), &mut list);
        assert!(!list.is_empty(), "no {kind} vectors under {dir}");
        for f in list {
            let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
            let want_err = v["wantErr"].as_bool().unwrap_or(false);
            assert_eq!(
                check(&v, kind),
                !want_err,
                "{} ({})",
                f.display(),
                v["desc"]
            );
            checked += 1;
        }
    }
    eprintln!("checked {checked} vector files");
    assert!(checked > 100);
}
