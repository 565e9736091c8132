//! The tree: the entries must give the checkpoint's root. When they do
//! not, the entry to blame is named: against the leaves the auditor
//! verified before, then against the log's own leaf tiles.

use ledger::merkle::{leaf_hash, Frontier, Hash};

use super::outcome::{Findings, VerifyError};
use super::state::{StateFile, Trusted};
use crate::bundle::Bundle;
use crate::finding::FindingKind;
use crate::tiles::TILE_WIDTH;

/// What the run trusted before it: the state file, what it held, the
/// trusted root when the run went on after it, and where the run began.
pub(super) struct TrustedTree<'a> {
    pub state: Option<&'a StateFile>,
    pub trusted: Option<&'a Trusted>,
    pub root: Option<Hash>,
    pub from: u64,
}

/// Checks that the `frontier` (the trusted edge, then this run's
/// `leaves`) holds the checkpoint's entries and gives its root.
pub(super) fn check_root(
    bundle: &Bundle,
    trust: &TrustedTree<'_>,
    frontier: &Frontier,
    leaves: &[Hash],
    findings: &mut Findings,
) -> Result<(), VerifyError> {
    let size = bundle.checkpoint.size;
    let held = frontier.size();
    if held != size {
        findings.find(held, FindingKind::EntryCount { held, size });
    }
    if held != size || frontier.root() != bundle.checkpoint.root {
        locate_mismatch(bundle, trust, leaves, findings)?;
    }
    Ok(())
}

/// The entries do not give the checkpoint's root: find which entry is to
/// blame. A history rewritten under a trusted checkpoint shows as the
/// first leaf that differs from what the auditor verified before; a
/// changed, dropped or moved entry after it, as the first leaf that
/// differs from the log's own level-0 hash tiles, once those tiles are
/// shown to give the checkpoint's root.
fn locate_mismatch(
    bundle: &Bundle,
    trust: &TrustedTree<'_>,
    leaves: &[Hash],
    findings: &mut Findings,
) -> Result<(), VerifyError> {
    let size = bundle.checkpoint.size;
    let from = trust.from;
    // Under a trusted checkpoint: did the old part change?
    if let (Some(s), Some(t), Some(old_root)) = (trust.state, trust.trusted, trust.root) {
        if from > 0 {
            let old = s.leaves(t.size)?;
            let mut now = Vec::with_capacity(t.size as usize);
            let mut n = 0;
            while (n * TILE_WIDTH) < t.size {
                let tile = bundle.read_tile(n)?;
                now.extend(tile.envelopes.iter().map(|e| leaf_hash(&e.entry)));
                n += 1;
            }
            if let Some(i) = (0..t.size as usize).find(|&i| now.get(i) != old.get(i)) {
                let kind = FindingKind::HistoryRewritten {
                    index: i as u64,
                    trusted_size: t.size,
                    trusted_root: old_root,
                };
                findings.find(i as u64, kind);
                return Ok(());
            }
        }
    }
    // Against the log's own leaf tiles, if they give the signed root.
    let mut tile_leaves = Vec::with_capacity(size as usize);
    let mut n = 0;
    while n * TILE_WIDTH < size {
        match bundle.leaf_tile(n) {
            Some(hs) => tile_leaves.extend(hs),
            None => break,
        }
        n += 1;
    }
    if tile_leaves.len() as u64 == size
        && ledger::merkle::root_of(&tile_leaves) == bundle.checkpoint.root
    {
        let mut named = 0;
        for (k, h) in leaves.iter().enumerate() {
            let at = from + k as u64;
            if tile_leaves.get(at as usize) != Some(h) {
                findings.find(at, FindingKind::NotInTree);
                named += 1;
                if named >= 16 {
                    break;
                }
            }
        }
        if named > 0 {
            return Ok(());
        }
    }
    findings.find(size, FindingKind::RootUnexplained);
    Ok(())
}
