//! `consentry audit verify`: everything an auditor must be able to prove
//! from a bundle and public keys, without trusting the gateway:
//!
//! - the checkpoint is signed by the log's key, and the entries hash to
//!   its root (RFC 6962);
//! - the log extends the last checkpoint this auditor trusted (kept in
//!   their state file), so a rewritten history is caught and named;
//! - every entry is signed by the keys it names, each one the registry
//!   held at that position, as replayed from the log itself;
//! - every entry applies under the rules (`policy`), and every logged
//!   decision is the one `decide` gives at that position;
//! - every release follows an allow, once, and releases nothing outside it.
//!
//! Each problem is a [`Finding`] with its index; the check goes on past
//! it, so the auditor sees all of them. A run resumes from the state file:
//! only entries after the trusted checkpoint are read again.
//!
//! The phases, in the order a run meets them: `resume` (the checkpoint
//! against the trusted state), `pipeline` (reading, and on this thread
//! `replay` with `releases`, while the workers check `signatures`),
//! then `tree` (the root); `state` is the state file, and `floor`
//! the benchmark's floor.

mod floor;
mod keys;
mod outcome;
mod pipeline;
mod releases;
mod replay;
mod resume;
mod signatures;
mod state;
mod tree;

use std::time::Instant;

use ledger::merkle::{Frontier, Hash};

pub use floor::signature_floor;
pub use outcome::{Summary, VerifyError, FINDINGS_MAX};
pub use state::StateFile;

use crate::bundle::Bundle;
use crate::finding::Finding;
use outcome::Findings;
use releases::Releases;
use state::{hash_b64, Applied, Trusted, STATE_FORMAT};
use tree::TrustedTree;

/// Checks `bundle`, resuming from `state` when it holds a trusted
/// checkpoint of the same log. Returns the findings (sorted by index) and
/// the summary; the state file is updated only when there is none.
pub fn verify(
    bundle: &Bundle,
    state: Option<&StateFile>,
    threads: usize,
    progress: impl FnMut(u64, u64),
) -> Result<(Vec<Finding>, Summary), VerifyError> {
    let started = Instant::now();
    let size = bundle.checkpoint.size;
    let mut findings = Findings::default();
    let mut summary = Summary::default();
    let trusted = match state {
        Some(s) => s.load()?,
        None => None,
    };
    let start = resume::start(bundle, state, trusted.as_ref(), &mut findings)?;
    let (from, mut frontier, mut replay) = (start.from, start.frontier, start.replay);
    summary.from = from;
    summary.to = size;
    resume::witnessed(bundle, &mut findings);

    let checked = pipeline::run(
        bundle,
        from,
        threads,
        &mut replay,
        &mut findings,
        &mut summary,
        progress,
    )?;
    // In order: the findings of each step, then its leaves into the tree.
    let t = Instant::now();
    let mut leaves: Vec<Hash> = Vec::with_capacity((size - from.min(size)) as usize);
    for c in checked {
        summary.signature_time += c.signature_time;
        summary.tree_time += c.hash_time;
        for (at, kind) in c.failures {
            findings.find(at, kind);
        }
        for h in &c.leaves {
            frontier.push(*h, |_, _, _| {});
        }
        leaves.extend(c.leaves);
    }
    let trust = TrustedTree {
        state,
        trusted: trusted.as_ref(),
        root: start.trusted_root,
        from,
    };
    tree::check_root(bundle, &trust, &frontier, &leaves, &mut findings)?;
    summary.tree_time += t.elapsed();

    findings.kept.sort_by_key(|f| f.index);
    summary.findings = findings.count;
    // Only a clean run moves the trusted checkpoint forward.
    if let (0, Some(s)) = (findings.count, state) {
        let t = trusted_after(bundle, &frontier, replay.applied, replay.releases);
        s.save(&t, from, &leaves)?;
        summary.trusted = true;
    }
    summary.total = started.elapsed();
    Ok((findings.kept, summary))
}

/// What the auditor trusts after a clean run of `bundle`.
fn trusted_after(
    bundle: &Bundle,
    frontier: &Frontier,
    applied: Vec<Applied>,
    releases: Releases,
) -> Trusted {
    Trusted {
        format: STATE_FORMAT,
        log: bundle.log_key.name().to_string(),
        size: bundle.checkpoint.size,
        root: hash_b64(&bundle.checkpoint.root),
        right_edge: frontier.right_edge().iter().map(hash_b64).collect(),
        checkpoint: bundle.checkpoint_note.clone(),
        applied,
        open_allows: releases.still_open(),
    }
}
