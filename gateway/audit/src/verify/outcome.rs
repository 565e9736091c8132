//! What a run gives, shared by its phases: the findings so far, the
//! summary, and the errors that stop a run (as opposed to findings,
//! which it goes on past).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::bundle::BundleError;
use crate::finding::{Finding, FindingKind};

/// Most findings kept (the count goes on): a broken log must not exhaust
/// the auditor's memory.
pub const FINDINGS_MAX: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("state file {path}: {reason}")]
    State { path: String, reason: String },
}

pub(super) fn state_err(path: &Path, reason: impl ToString) -> VerifyError {
    VerifyError::State {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// How a run went.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Entries checked in this run (after the trusted checkpoint).
    pub from: u64,
    pub to: u64,
    pub signatures: u64,
    pub decisions_replayed: u64,
    pub releases_checked: u64,
    /// All findings, including those beyond [`FINDINGS_MAX`].
    pub findings: u64,
    /// Where the time went (seconds in JSON): the time threads spent in
    /// each part (the signature checks and leaf hashes run on the workers
    /// while the replay runs on the calling thread, so the parts overlap),
    /// and the wall time in all.
    #[serde(serialize_with = "secs")]
    pub read: Duration,
    #[serde(serialize_with = "secs")]
    pub signature_time: Duration,
    #[serde(serialize_with = "secs")]
    pub tree_time: Duration,
    #[serde(serialize_with = "secs")]
    pub replay_time: Duration,
    #[serde(serialize_with = "secs")]
    pub total: Duration,
    /// Whether the state file was updated (only after a clean run).
    pub trusted: bool,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The findings of a run: every one counted, the first
/// [`FINDINGS_MAX`] kept.
#[derive(Default)]
pub(super) struct Findings {
    pub kept: Vec<Finding>,
    pub count: u64,
}

impl Findings {
    pub fn find(&mut self, index: u64, kind: FindingKind) {
        self.count += 1;
        if self.kept.len() < FINDINGS_MAX {
            self.kept.push(Finding::new(index, kind));
        }
    }
}
