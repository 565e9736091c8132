//! `cargo bench -p consentry-tests --bench submit`: durable entries per
//! second through `Deployment::submit` (parse, verify, check, enqueue,
//! apply under the short lock, wait for the shared sync) with 256
//! concurrent submitters of signed consent grants, and the mean batch size
//! the sequencer formed. Prints figures; asserts nothing.

// Test and benchmark support: a failed unwrap is the answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use consentry_tests::fixture;
use gateway::deployment::Deployment;

const SUBMITTERS: u32 = 256;
const PARTICIPANTS: u32 = 1024;
const PER_SUBMITTER: u32 = 200;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
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
    let dep = Arc::new(
        Deployment::open(
            &dir.path().join("data"),
            fixture::gateway(),
            fixture::trust(),
        )
        .unwrap(),
    );
    rt.block_on(fixture::seed(&dep, PARTICIPANTS)).unwrap();
    // Signed up front: the figure is the deployment's, not the signing's.
    let envelopes: Vec<Vec<ledger::Envelope>> = (0..SUBMITTERS)
        .map(|t| {
            (0..PER_SUBMITTER)
                .map(|n| {
                    let p = (t * PER_SUBMITTER + n) % PARTICIPANTS;
                    fixture::grant(p, &format!("c-{t}-{n}")).unwrap()
                })
                .collect()
        })
        .collect();
    let stats = dep.log.stats();
    let (batches0, entries0) = (stats.batches.load(Relaxed), stats.entries.load(Relaxed));
    let start = Instant::now();
    let handles: Vec<_> = envelopes
        .into_iter()
        .map(|list| {
            let dep = dep.clone();
            rt.spawn(async move {
                let mut lat = Vec::with_capacity(list.len());
                for env in list {
                    let t = Instant::now();
                    dep.submit(env).await.unwrap();
                    lat.push(t.elapsed());
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
    let batches = stats.batches.load(Relaxed) - batches0;
    let entries = stats.entries.load(Relaxed) - entries0;
    println!(
        "Deployment::submit, {SUBMITTERS} submitters of consent grants: {:.0} durable entries/s  p50 {:.1?}  p99 {:.1?}  mean batch {:.1}  ({} entries in {secs:.2}s)",
        lat.len() as f64 / secs,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        entries as f64 / batches.max(1) as f64,
        lat.len()
    );
}
