//! The sync order, proven from the outside: a child appends from many tasks
//! under `strace -f` and prints each acknowledged index; from the trace the
//! parent checks, for every ack, that
//! 1. a write to a file of the store carried the entry's exact bytes,
//! 2. an `fsync`/`fdatasync` of that same file began after that write
//!    returned, and
//! 3. that sync returned (with 0) before the ack was written.
//!
//! `sync_file_range` does not count: it flushes neither the drive's cache
//! nor the file's metadata. `scripts/test.sh` installs Debian's `strace`.

use crate::common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use ledger::{Envelope, Log, LogConfig, NoteSigner, SledStore, StaticKeys, Store};

const CHILD_ENV: &str = "CONSENTRY_SYNC_CHILD_DIR";
const WRITERS: u64 = 16;
const PER_WRITER: u64 = 60;

fn author() -> SigningKey {
    SigningKey::from_bytes(&[81; 32])
}

fn entry_bytes(w: u64, n: u64) -> Vec<u8> {
    format!(r#"{{"type":"sync.order","v":1,"w":{w},"n":{n},"participant":"p-{w}"}}"#).into_bytes()
}

/// The child's body: runs only when the parent starts this binary with
/// `CHILD_ENV` set.
#[test]
fn sync_order_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let keys = StaticKeys::default().with("author", author().verifying_key());
    let store: Arc<dyn Store> = Arc::new(SledStore::open(Path::new(&dir)).unwrap());
    let log = Log::open(
        store,
        NoteSigner::new("sync.test/log", SigningKey::from_bytes(&[82; 32])).unwrap(),
        common::indexer(),
        LogConfig::default(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let log = log.clone();
                let keys = keys.clone();
                tokio::spawn(async move {
                    for n in 0..PER_WRITER {
                        let e = Envelope::sign(entry_bytes(w, n), "author", &author())
                            .verify(&keys)
                            .unwrap();
                        let idx = log.append(e).await.unwrap();
                        // One write(2) per ack, straight to fd 1, after the
                        // append resolved.
                        use std::io::Write;
                        let line = format!("ack {idx} {w} {n}\n");
                        std::io::stdout().lock().write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    log.close();
}

/// One traced system call, positioned by the order of trace lines.
#[derive(Debug)]
struct Call {
    name: String,
    /// Trace line where it began and where it returned.
    start: usize,
    end: usize,
    /// The path strace's `-y` printed for the first argument.
    path: String,
    /// The string arguments, decoded (strace `-xx` prints every byte).
    data: Vec<Vec<u8>>,
    ret: i64,
}

fn decode_strings(args: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let b = args.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'"' {
            let mut buf = Vec::new();
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 3 < b.len() && b[i + 1] == b'x' {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
                    buf.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 4;
                } else {
                    buf.push(b[i]);
                    i += 1;
                }
            }
            out.push(buf);
        }
        i += 1;
    }
    out
}

fn first_arg_path(args: &str) -> String {
    // e.g. `12<\x2f\x74...>, ...`: `-xx` escapes the path as well.
    match (args.find('<'), args.find('>')) {
        (Some(a), Some(b)) if a < b => {
            let quoted = format!("\"{}\"", &args[a + 1..b]);
            decode_strings(&quoted)
                .pop()
                .map(|p| String::from_utf8_lossy(&p).into_owned())
                .unwrap_or_default()
        }
        _ => String::new(),
    }
}

/// Parses `strace -f -y -xx` output, joining `<unfinished ...>` halves.
fn parse_trace(text: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut open: HashMap<String, (usize, String, String)> = HashMap::new();
    for (pos, line) in text.lines().enumerate() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("<... ") {
            let Some((name, tail)) = r.split_once(" resumed>") else {
                continue;
            };
            if let Some((start, n, args)) = open.remove(pid) {
                if n == name {
                    let full = format!("{args}{tail}");
                    calls.push(finish(name, start, pos, &full));
                }
            }
            continue;
        }
        let Some((name, args)) = rest.split_once('(') else {
            continue;
        };
        if let Some(args) = args.strip_suffix(" <unfinished ...>") {
            open.insert(pid.to_string(), (pos, name.to_string(), args.to_string()));
        } else {
            calls.push(finish(name, pos, pos, args));
        }
    }
    calls
}

fn finish(name: &str, start: usize, end: usize, args: &str) -> Call {
    // `-xx` escapes every byte of data, so the last '=' is the result's.
    let ret = args
        .rsplit_once('=')
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or(-1);
    Call {
        name: name.to_string(),
        start,
        end,
        path: first_arg_path(args),
        data: decode_strings(args),
        ret,
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn every_ack_follows_an_fdatasync_of_its_bytes() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let trace = dir.path().join("trace.txt");
    let out = Command::new("strace")
        .args(["-f", "-y", "-xx", "-s", "1000000", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=write,pwrite64,writev,pwritev,pwritev2,fsync,fdatasync,sync_file_range",
        ])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &child_test_name("sync_order_child"),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &store_dir)
        .output()
        .expect("strace is needed: scripts/test.sh installs Debian's strace");
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&trace).unwrap();
    let calls = parse_trace(&text);
    let store_prefix = store_dir.to_string_lossy().to_string();
    let in_store = |c: &Call| c.path.starts_with(&store_prefix);

    // Acks as the child wrote them to its stdout.
    let mut acks = Vec::new();
    for c in &calls {
        if c.name == "write" && !in_store(c) {
            for d in &c.data {
                for l in String::from_utf8_lossy(d).lines() {
                    let f: Vec<&str> = l.split(' ').collect();
                    if f.len() == 4 && f[0] == "ack" {
                        let n = |i: usize| f[i].parse::<u64>().unwrap();
                        acks.push((c.start, n(1), n(2), n(3)));
                    }
                }
            }
        }
    }
    assert_eq!(
        acks.len() as u64,
        WRITERS * PER_WRITER,
        "every append was acknowledged on stdout"
    );
    let writes: Vec<&Call> = calls
        .iter()
        .filter(|c| c.name.contains("write") && in_store(c) && c.ret > 0)
        .collect();
    let syncs: Vec<&Call> = calls
        .iter()
        .filter(|c| (c.name == "fsync" || c.name == "fdatasync") && in_store(c) && c.ret == 0)
        .collect();
    let mut failures = Vec::new();
    for (ack_at, idx, w, n) in &acks {
        let bytes = entry_bytes(*w, *n);
        let Some(write) = writes
            .iter()
            .filter(|c| c.end < *ack_at && c.data.iter().any(|d| contains(d, &bytes)))
            .max_by_key(|c| c.end)
        else {
            failures.push(format!(
                "index {idx}: no write to the store carried its bytes before the ack"
            ));
            continue;
        };
        let synced = syncs
            .iter()
            .any(|s| s.path == write.path && s.start > write.end && s.end < *ack_at);
        if !synced {
            failures.push(format!(
                "index {idx}: acknowledged with no fsync/fdatasync of {} between its write (trace line {}) and the ack (line {ack_at})",
                write.path,
                write.end + 1
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} acks broke the sync order; first: {}",
        failures.len(),
        acks.len(),
        failures[0]
    );
    eprintln!(
        "{} acks, each after an fsync/fdatasync of its bytes ({} store writes, {} syncs traced)",
        acks.len(),
        writes.len(),
        syncs.len()
    );
}

/// The full name libtest knows `name` (in this module) by, for running
/// this one test in a child process with `--exact`.
fn child_test_name(name: &str) -> String {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    format!("{module}::{name}")
}
