//! The run over the entries, as a pipeline: this thread reads a step of
//! tiles and replays it (the replay is sequential by nature) while
//! `threads` workers check the previous steps' signatures and hash their
//! leaves.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::Mutex;
use std::time::Instant;

use ledger::Envelope;

use super::outcome::{Findings, Summary, VerifyError};
use super::replay::Replay;
use super::signatures::{check_step, Checked, Step};
use crate::bundle::Bundle;
use crate::finding::FindingKind;
use crate::tiles::TILE_WIDTH;

/// Tiles read and checked per step: bounds memory on a log of any size.
const TILES_PER_STEP: u64 = 32;

/// Reads, replays and checks the entries from `from` to the checkpoint's
/// size; returns what the workers found, step by step in order.
pub(super) fn run(
    bundle: &Bundle,
    from: u64,
    threads: usize,
    replay: &mut Replay,
    findings: &mut Findings,
    summary: &mut Summary,
    mut progress: impl FnMut(u64, u64),
) -> Result<Vec<Checked>, VerifyError> {
    let size = bundle.checkpoint.size;
    let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<Step>(threads.max(1));
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Checked>();
    std::thread::scope(|scope| -> Result<(), VerifyError> {
        for _ in 0..threads.max(1) {
            let (rx, tx) = (&work_rx, done_tx.clone());
            scope.spawn(move || work(rx, tx));
        }
        drop(done_tx);
        let mut n = from / TILE_WIDTH;
        let mut seq = 0usize;
        while n * TILE_WIDTH < size {
            let t0 = Instant::now();
            let (envs, broken) = read_step(bundle, &mut n, from, findings);
            summary.read += t0.elapsed();

            let t1 = Instant::now();
            let keys = envs
                .iter()
                .map(|(at, env)| replay.entry(*at, env, findings, summary))
                .collect();
            summary.replay_time += t1.elapsed();

            // Signatures and leaves: to the workers, while this thread goes
            // on to the next step.
            summary.signatures += envs
                .iter()
                .map(|(_, e)| e.signatures.len() as u64)
                .sum::<u64>();
            if work_tx.send(Step { seq, envs, keys }).is_err() {
                break;
            }
            seq += 1;
            progress((n * TILE_WIDTH).min(size), size);
            if broken {
                break;
            }
        }
        drop(work_tx);
        Ok(())
    })?;
    let mut checked: Vec<Checked> = done_rx.into_iter().collect();
    checked.sort_by_key(|c| c.seq);
    Ok(checked)
}

/// A worker: checks steps until the queue closes.
fn work(rx: &Mutex<Receiver<Step>>, tx: Sender<Checked>) {
    loop {
        let step = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        match step {
            Ok(step) => {
                if tx.send(check_step(step)).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// Reads the next step of tiles from tile `n` on (and moves `n` past
/// them): the entries from `from` up to the checkpoint's size, and
/// whether the bundle broke off (nothing after it can be read).
fn read_step(
    bundle: &Bundle,
    n: &mut u64,
    from: u64,
    findings: &mut Findings,
) -> (Vec<(u64, Envelope)>, bool) {
    let size = bundle.checkpoint.size;
    let mut envs = Vec::new();
    let last = (*n + TILES_PER_STEP).min(size.div_ceil(TILE_WIDTH));
    while *n < last {
        let (k, first) = (*n, *n * TILE_WIDTH);
        *n += 1;
        let tile = match bundle.read_tile(k) {
            Ok(tile) => tile,
            Err(e) => {
                let detail = e.to_string();
                findings.find(first, FindingKind::Unreadable { detail });
                return (envs, true);
            }
        };
        if let Some(kind) = tile.wrong_count {
            findings.find(first, kind);
        }
        for (i, e) in tile.envelopes.into_iter().enumerate() {
            let at = first + i as u64;
            if at >= from && at < size && i < TILE_WIDTH as usize {
                envs.push((at, e));
            }
        }
    }
    (envs, false)
}
