//! `cargo bench -p ledger`: durable append throughput and latency under
//! group commit, against a plain write+fdatasync loop of the same bytes
//! (the physical limit), with where each batch's time goes; proof generation and whole-log verification at 1M
//! entries. Prints figures; asserts nothing.

// Test and benchmark support: a failed unwrap is the answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use ledger::{Envelope, Log, LogConfig, NoteSigner, SledStore, StaticKeys, Store, VerifiedEntry};

const RUN: Duration = Duration::from_secs(3);
const BIG: u64 = 1_000_000;

fn author() -> SigningKey {
    SigningKey::from_bytes(&[61; 32])
}
fn keys() -> StaticKeys {
    StaticKeys::default().with("author", author().verifying_key())
}
fn signer() -> NoteSigner {
    NoteSigner::new("bench.consentry/log", SigningKey::from_bytes(&[62; 32])).unwrap()
}

/// A decision-sized entry (~300 bytes), like the gateway writes.
fn entry_bytes(n: u64) -> Vec<u8> {
    format!(
        r#"{{"type":"access.decided","v":1,"decision_id":"d-{n:016x}","at":1800000000,"requester":"riverside-housing","holder":"hope-clinic","participant":"p-{:08x}","categories":["health.sud.treatment"],"purpose":"housing.placement","outcome":"allow","released":["health.sud.treatment"],"consents":["c-{n:x}"],"reasons":[],"break_glass":false,"rules_version":1,"request_digest":"{:064x}"}}"#,
        n % 100_000,
        n
    )
    .into_bytes()
}

fn signed(n: u64) -> VerifiedEntry {
    Envelope::sign(entry_bytes(n), "author", &author())
        .verify(&keys())
        .unwrap()
}

fn open(dir: &std::path::Path) -> (Log, Arc<SledStore>) {
    let sled = Arc::new(SledStore::open(dir).unwrap());
    let store: Arc<dyn Store> = sled.clone();
    let log = Log::open(store, signer(), common::indexer(), LogConfig::default()).unwrap();
    (log, sled)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

/// One record written and `fdatasync`ed at a time, in the directory the
/// log's segment lives in: the most a single writer could ever get.
fn fsync_loop(dir: &std::path::Path) -> f64 {
    let bytes = Envelope::sign(entry_bytes(1), "author", &author()).encode();
    let mut f = std::fs::File::create(dir.join("fdatasync.bin")).unwrap();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < RUN {
        f.write_all(&bytes).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn appends(
    rt: &tokio::runtime::Runtime,
    log: &Log,
    writers: usize,
) -> (f64, Duration, Duration, f64) {
    // Entries are signed up front so the figure is the log's, not signing's.
    let per = 4000.max(60_000 / writers);
    let pre: Vec<Vec<VerifiedEntry>> = (0..writers)
        .map(|w| {
            (0..per)
                .map(|i| signed((w * per + i) as u64 + 10_000_000))
                .collect()
        })
        .collect();
    let batches_before = log
        .stats()
        .batches
        .load(std::sync::atomic::Ordering::Relaxed);
    let start = Instant::now();
    let handles: Vec<_> = pre
        .into_iter()
        .map(|entries| {
            let log = log.clone();
            rt.spawn(async move {
                let mut lat = Vec::with_capacity(entries.len());
                for e in entries {
                    let t = Instant::now();
                    log.append(e).await.unwrap();
                    lat.push(t.elapsed());
                    if start.elapsed() > RUN {
                        break;
                    }
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| rt.block_on(h).unwrap())
        .collect();
    let secs = start.elapsed().as_secs_f64();
    lat.sort();
    let batches = log
        .stats()
        .batches
        .load(std::sync::atomic::Ordering::Relaxed)
        - batches_before;
    (
        lat.len() as f64 / secs,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.len() as f64 / batches.max(1) as f64,
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let base = std::env::var("CONSENTRY_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    let dir = tempfile::tempdir_in(base).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    std::fs::create_dir_all(dir.path().join("appends")).unwrap();
    let phys = fsync_loop(&dir.path().join("appends"));
    println!("write+fdatasync loop (physical limit, 1 entry per fdatasync): {phys:.0} ops/s");

    let (log, sled) = open(&dir.path().join("appends"));
    for writers in [1, 16, 256] {
        let t = sled.timings();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let before = (
            load(&t.batches),
            load(&t.segment_nanos),
            load(&t.derived_nanos),
        );
        let (rate, p50, p99, batch) = appends(&rt, &log, writers);
        let b = (load(&t.batches) - before.0).max(1);
        println!(
            "durable appends, {writers:>3} writers: {rate:>8.0}/s  p50 {p50:>9.1?}  p99 {p99:>9.1?}  mean batch {batch:>6.1}  ratio to fdatasync loop {:.2}x  per batch: segment write+fdatasync {:.0} µs, sled derived {:.0} µs",
            rate / phys,
            (load(&t.segment_nanos) - before.1) as f64 / b as f64 / 1e3,
            (load(&t.derived_nanos) - before.2) as f64 / b as f64 / 1e3,
        );
    }
    log.close();

    // A million-entry log for proofs and verification.
    let big_dir = dir.path().join("big");
    let (log, _) = open(&big_dir);
    let t = Instant::now();
    let chunk = 10_000u64;
    let mut next = 0u64;
    while next < BIG {
        let entries: Vec<VerifiedEntry> = std::thread::scope(|s| {
            let a = s.spawn(|| (next..next + chunk / 2).map(signed).collect::<Vec<_>>());
            let b = s.spawn(|| {
                (next + chunk / 2..next + chunk)
                    .map(signed)
                    .collect::<Vec<_>>()
            });
            let mut v = a.join().unwrap();
            v.extend(b.join().unwrap());
            v
        });
        let handles: Vec<_> = entries
            .into_iter()
            .map(|e| {
                let log = log.clone();
                rt.spawn(async move { log.append(e).await.unwrap() })
            })
            .collect();
        for h in handles {
            rt.block_on(h).unwrap();
        }
        next += chunk;
    }
    log.publish_checkpoint().unwrap();
    println!(
        "built a {BIG}-entry log in {:.1?} (signing included)",
        t.elapsed()
    );

    let size = log.size();
    let mut rng_state = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    let mut incl = Vec::new();
    let mut cons = Vec::new();
    for _ in 0..20_000 {
        let i = rnd() % size;
        let t = Instant::now();
        std::hint::black_box(log.inclusion_proof(i, size).unwrap());
        incl.push(t.elapsed());
        let old = 1 + rnd() % (size - 1);
        let t = Instant::now();
        std::hint::black_box(log.consistency_proof(old, size).unwrap());
        cons.push(t.elapsed());
    }
    incl.sort();
    cons.sort();
    println!(
        "inclusion proof at {size}: p50 {:.1?} p99 {:.1?}",
        pct(&incl, 0.5),
        pct(&incl, 0.99)
    );
    println!(
        "consistency proof at {size}: p50 {:.1?} p99 {:.1?}",
        pct(&cons, 0.5),
        pct(&cons, 0.99)
    );
    log.close();

    let t = Instant::now();
    let store = ledger::fsck::open_for_check(&big_dir).unwrap();
    let opened = t.elapsed().as_secs_f64();
    let report = ledger::fsck::fsck(&store, &keys(), &signer().verifier(), 2, |_, _| {}).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!("whole-log verification: {} entries in {secs:.1}s = {:.0} entries/s (2 threads, strict single verification; opening the read-only copy {opened:.1}s of it)", report.size, report.size as f64 / secs);
}
