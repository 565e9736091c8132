//! The checkpoint, against what the auditor trusted before: the same log,
//! no smaller than the trusted checkpoint (then the run goes on after
//! it, from the tree's trusted right edge and the replay's trusted
//! state), and cosigned by the witnesses the auditor requires.

use ledger::merkle::{Frontier, Hash};

use super::outcome::{state_err, Findings, VerifyError};
use super::replay::Replay;
use super::state::{b64_hash, StateFile, Trusted};
use crate::bundle::Bundle;
use crate::finding::FindingKind;

/// Where a run starts.
pub(super) struct Start {
    /// The first index this run reads.
    pub from: u64,
    pub frontier: Frontier,
    pub replay: Replay,
    /// The trusted checkpoint's root, when the run goes on after it.
    pub trusted_root: Option<Hash>,
}

/// Where to start: after the trusted checkpoint, if the bundle reaches
/// that far; from the start otherwise (a shrunk log is a finding).
pub(super) fn start(
    bundle: &Bundle,
    state: Option<&StateFile>,
    trusted: Option<&Trusted>,
    findings: &mut Findings,
) -> Result<Start, VerifyError> {
    let size = bundle.checkpoint.size;
    let state_path = state.map(|s| s.path().to_path_buf()).unwrap_or_default();
    let fresh = || Start {
        from: 0,
        frontier: Frontier::new(),
        replay: Replay::new(bundle.trust.clone()),
        trusted_root: None,
    };
    let Some(t) = trusted else {
        return Ok(fresh());
    };
    if t.log != bundle.log_key.name() {
        return Err(state_err(
            &state_path,
            format!("it is for log {:?}, not {:?}", t.log, bundle.log_key.name()),
        ));
    }
    if size < t.size {
        let kind = FindingKind::Shrank {
            size,
            trusted_size: t.size,
        };
        findings.find(size, kind);
        return Ok(fresh());
    }
    let edge: Option<Vec<Hash>> = t.right_edge.iter().map(|h| b64_hash(h)).collect();
    let frontier = edge
        .and_then(|e| Frontier::from_right_edge(t.size, &e))
        .ok_or_else(|| state_err(&state_path, "malformed right edge"))?;
    Ok(Start {
        from: t.size,
        frontier,
        replay: Replay::resume(bundle.trust.clone(), t),
        trusted_root: b64_hash(&t.root),
    })
}

/// A checkpoint that too few trusted witnesses cosigned may be one
/// history of several shown to different people: no trust moves on it.
pub(super) fn witnessed(bundle: &Bundle, findings: &mut Findings) {
    if let Some(policy) = &bundle.witness_policy {
        if let Err(e) = policy.check(&bundle.checkpoint_note) {
            findings.find(
                bundle.checkpoint.size,
                FindingKind::CheckpointNotAccepted(e),
            );
        }
    }
}
