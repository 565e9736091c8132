//! Crash safety through the gateway's own write path: a child process runs
//! 256 concurrent submitters of real signed consent grants and revocations
//! through `Deployment::submit`, recording every acknowledged index; after
//! each wave, when everything submitted is acknowledged, it writes a dump
//! of its whole consent state. The parent SIGKILLs it at random moments,
//! over and over, and after each kill checks that
//! - every acknowledged entry is in the log, at its index, byte for byte;
//! - the state replayed from the log's prefix at the last dump equals the
//!   child's state then, field for field;
//! - the deployment reopens (replaying and re-verifying every entry) with
//!   every acknowledged grant and revocation in force.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consentry_tests::fixture;
use gateway::deployment::{replay, Deployment};
use policy::ConsentStatus;
use rand::Rng;

const CHILD_ENV: &str = "CONSENTRY_DEPLOYMENT_CRASH_DIR";
const KILLS: usize = 20;
const SUBMITTERS: u32 = 256;
const PARTICIPANTS: u32 = 64;

fn open(dir: &Path) -> Deployment {
    Deployment::open(&dir.join("data"), fixture::gateway(), fixture::trust()).unwrap()
}

/// The child's body: runs only when the parent starts this test binary with
/// `CHILD_ENV` set; it never returns on its own.
#[test]
fn deployment_crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir).to_path_buf();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dep = Arc::new(open(&dir));
    let acks = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("acks"))
            .unwrap(),
    ));
    let run = std::process::id();
    rt.block_on(async move {
        if dep.log.size() == 0 {
            fixture::seed(&dep, PARTICIPANTS).await.unwrap();
        }
        for wave in 0u64.. {
            let tasks: Vec<_> = (0..SUBMITTERS)
                .map(|t| {
                    let dep = dep.clone();
                    let acks = acks.clone();
                    tokio::spawn(async move {
                        let p = t % PARTICIPANTS;
                        let id = format!("c-{run}-{wave}-{t}");
                        let idx = dep.submit(fixture::grant(p, &id).unwrap()).await.unwrap();
                        let mut lines = format!("{idx} grant {id}\n");
                        // Every other wave also takes back the grant the
                        // same submitter made the wave before.
                        if wave % 2 == 1 {
                            let old = format!("c-{run}-{}-{t}", wave - 1);
                            let idx = dep.submit(fixture::revoke(p, &old).unwrap()).await.unwrap();
                            lines.push_str(&format!("{idx} revoke {old}\n"));
                        }
                        // One write per ack group: a kill can cut only the
                        // last line, which the parent ignores.
                        acks.lock().unwrap().write_all(lines.as_bytes()).unwrap();
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            // Quiescent: everything enqueued is acknowledged, so the state is
            // the replay of exactly the log's first `size` entries.
            let (size, text) = {
                let state = dep.state().unwrap();
                (dep.log.size(), fixture::dump(&state, PARTICIPANTS))
            };
            let tmp = dir.join("dump.tmp");
            std::fs::write(&tmp, format!("{size}\n{text}")).unwrap();
            std::fs::rename(&tmp, dir.join("dump")).unwrap();
        }
    });
}

struct Ack {
    index: u64,
    kind: String,
    consent: String,
}

fn read_acks(path: &Path) -> Vec<Ack> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Ack {
                index: f[0].parse().unwrap(),
                kind: f[1].to_string(),
                consent: f[2].to_string(),
            }
        })
        .collect()
}

#[test]
fn sigkill_during_concurrent_submits_loses_nothing_acknowledged() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::thread_rng();
    let mut last_acked = 0usize;
    let mut dumps_checked = 0;
    for round in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                &child_test_name("deployment_crash_child"),
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the child is submitting, then kill it at a random moment.
        let start = std::time::Instant::now();
        while read_acks(&dir.path().join("acks")).len() <= last_acked
            && start.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..250)));
        child.kill().unwrap(); // SIGKILL on unix
        child.wait().unwrap();
        cut_torn_tail(&dir.path().join("acks"));

        let acks = read_acks(&dir.path().join("acks"));
        assert!(
            acks.len() > last_acked,
            "round {round}: the child made no progress"
        );
        last_acked = acks.len();

        // Reopening replays and re-verifies every entry.
        let dep = open(dir.path());
        let size = dep.log.size();
        for a in &acks {
            assert!(
                a.index < size,
                "round {round}: acknowledged index {} lost (size {size})",
                a.index
            );
            let entry = dep.log.entry(a.index).unwrap().unwrap().entry;
            let text = String::from_utf8(entry).unwrap();
            let want_type = if a.kind == "grant" {
                "consent.granted"
            } else {
                "consent.revoked"
            };
            assert!(
                text.contains(&format!("\"consent_id\":\"{}\"", a.consent))
                    && text.contains(want_type),
                "round {round}: entry {} is not the acknowledged {} of {}: {text}",
                a.index,
                a.kind,
                a.consent
            );
        }
        {
            let state = dep.state().unwrap();
            for a in &acks {
                let view = state
                    .consent(&a.consent)
                    .unwrap_or_else(|| panic!("round {round}: consent {} lost", a.consent));
                if a.kind == "revoke" {
                    assert_eq!(
                        view.status(fixture::NOW + 3600),
                        ConsentStatus::Revoked,
                        "round {round}: revocation of {} lost",
                        a.consent
                    );
                }
            }
        }
        // The state at the last quiescent moment, field for field.
        if let Ok(text) = std::fs::read_to_string(dir.path().join("dump")) {
            let (k, want) = text.split_once('\n').unwrap();
            let k: u64 = k.parse().unwrap();
            assert!(
                k <= size,
                "round {round}: dump at {k} beyond the log ({size})"
            );
            let got = fixture::dump(
                &replay(&dep.log, fixture::trust(), k).unwrap(),
                PARTICIPANTS,
            );
            if got != want {
                let diff = got
                    .lines()
                    .zip(want.lines())
                    .find(|(g, w)| g != w)
                    .map(|(g, w)| format!("replayed: {g}\nbefore the kill: {w}"))
                    .unwrap_or_else(|| "the dumps differ in length".into());
                panic!("round {round}: state at {k} differs\n{diff}");
            }
            dumps_checked += 1;
        }
        eprintln!(
            "round {round}: {} acknowledged, log size {size}",
            acks.len()
        );
        dep.close();
    }
    eprintln!("{dumps_checked} of {KILLS} rounds compared the state at a quiescent dump");
    assert!(
        dumps_checked >= KILLS / 2,
        "only {dumps_checked} rounds reached a quiescent dump; the comparison barely ran"
    );
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
