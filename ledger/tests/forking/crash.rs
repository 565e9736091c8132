//! Crash safety, in the manner of sled's crash tests: a child process
//! appends as fast as it can from many tasks and records every acknowledged
//! index; the parent SIGKILLs it at random moments, over and over, and after
//! each kill checks that every acknowledged entry is there byte for byte,
//! that the whole log verifies, and that appends continue.

use crate::common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::SigningKey;
use ledger::{fsck, Envelope, Log, LogConfig, NoteSigner, SledStore, StaticKeys, Store};
use rand::Rng;

const CHILD_ENV: &str = "CONSENTRY_CRASH_CHILD_DIR";
const KILLS: usize = 24;
const WRITERS: usize = 64;

fn author() -> SigningKey {
    SigningKey::from_bytes(&[51; 32])
}

fn keys() -> StaticKeys {
    StaticKeys::default().with("author", author().verifying_key())
}

fn signer() -> NoteSigner {
    NoteSigner::new("crash.test/log", SigningKey::from_bytes(&[52; 32])).unwrap()
}

fn open(db: &Path) -> Log {
    let store: Arc<dyn Store> = Arc::new(SledStore::open(db).unwrap());
    Log::open(store, signer(), common::indexer(), LogConfig::default()).unwrap()
}

/// The child's body: runs only when the parent starts this test binary with
/// `CHILD_ENV` set; it never returns on its own.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir).to_path_buf();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let log = open(&dir.join("db"));
    let acks = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("acks"))
            .unwrap(),
    ));
    let run = std::process::id();
    rt.block_on(async move {
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let log = log.clone();
                let acks = acks.clone();
                tokio::spawn(async move {
                    for n in 0u64.. {
                        let bytes =
                            format!(r#"{{"type":"crash","v":1,"run":{run},"w":{w},"n":{n},"participant":"p{w}"}}"#)
                                .into_bytes();
                        let e = Envelope::sign(bytes.clone(), "author", &author())
                            .verify(&keys())
                            .unwrap();
                        let idx = log.append(e).await.unwrap();
                        // One write per line, after the ack: a kill can cut
                        // only the last line, which the parent ignores.
                        let line = format!("{idx} {}\n", B64.encode(&bytes));
                        acks.lock().unwrap().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}

fn read_acks(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .map(|l| {
            let (i, b) = l.split_once(' ').unwrap();
            (i.parse().unwrap(), B64.decode(b).unwrap())
        })
        .collect()
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let mut rng = rand::thread_rng();
    let mut last_acked = 0usize;
    for round in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &child_test_name("crash_child_writer"),
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the child is appending, then kill it at a random moment.
        let start = std::time::Instant::now();
        while read_acks(&dir.path().join("acks")).len() <= last_acked
            && start.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..150)));
        child.kill().unwrap(); // SIGKILL on unix
        child.wait().unwrap();
        cut_torn_tail(&dir.path().join("acks"));

        let acks = read_acks(&dir.path().join("acks"));
        assert!(
            acks.len() > last_acked,
            "round {round}: the child made no progress"
        );
        last_acked = acks.len();
        let store = SledStore::open(&db).unwrap();
        let size = store.size().unwrap();
        for (idx, bytes) in &acks {
            assert!(
                *idx < size,
                "round {round}: acknowledged index {idx} lost (size {size})"
            );
            let rec = store.record(*idx).unwrap().unwrap();
            assert_eq!(
                &Envelope::decode(&rec).unwrap().entry,
                bytes,
                "round {round}: entry {idx} changed"
            );
        }
        drop(store);
        // Appends continue, then the whole log verifies.
        let log = open(&db);
        // The index (derived, partly lost with the child's memory) is
        // rebuilt on open: every acknowledged entry is found by its key.
        let mut by_participant: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
        for (idx, bytes) in &acks {
            let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
            let p = v["participant"].as_str().unwrap().to_string();
            by_participant.entry(p).or_default().push(*idx);
        }
        for (p, acked) in &by_participant {
            let found: std::collections::BTreeSet<u64> = log
                .lookup("participant", p, u64::MAX, usize::MAX)
                .unwrap()
                .into_iter()
                .collect();
            for idx in acked {
                assert!(
                    found.contains(idx),
                    "round {round}: acknowledged entry {idx} of {p} is missing from the index"
                );
            }
        }
        let e = Envelope::sign(
            format!(r#"{{"type":"after-crash","v":1,"round":{round}}}"#).into_bytes(),
            "author",
            &author(),
        );
        assert_eq!(
            log.append_blocking(e.verify(&keys()).unwrap()).unwrap(),
            size
        );
        log.publish_checkpoint().unwrap();
        log.close();
        let store = SledStore::open(&db).unwrap();
        let report = fsck(&store, &keys(), &signer().verifier(), 2, |_, _| {})
            .unwrap_or_else(|f| panic!("round {round}: {f}"));
        assert_eq!(report.size, size + 1);
        eprintln!(
            "round {round}: {} acknowledged, log size {}",
            acks.len(),
            size + 1
        );
    }
}

/// The full name libtest knows `name` (in this module) by, for running
/// this one test in a child process with `--exact`.
fn child_test_name(name: &str) -> String {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    format!("{module}::{name}")
}

/// A kill can cut the acks file's last line, and the next child appends
/// after it: the torn line would run into the next one. Cut it off while
/// no child runs.
fn cut_torn_tail(path: &Path) {
    let text = std::fs::read(path).unwrap_or_default();
    let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if keep < text.len() {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(keep as u64)
            .unwrap();
    }
}
