//! What an auditor finds: one [`Finding`] (an index and a [`FindingKind`])
//! from the ledger's whole-log check to the verifier's report.
//!
//! The ledger cannot know consent semantics, so it owns the log-level
//! kinds ([`ledger::FindingKind`]) and this crate's kind wraps them
//! ([`FindingKind::Log`]) beside the auditor's own. Callers match the
//! kind; the prose (`Display`) is what the CLI prints and the JSON report
//! carries, so it stays as it was.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ledger::{EntryError, NoteError};
use policy::{ApplyError, Mismatch, ParseError};
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// One thing wrong, at one index.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("entry {index}: {kind}")]
pub struct Finding {
    pub index: u64,
    pub kind: FindingKind,
}

impl Finding {
    pub fn new(index: u64, kind: FindingKind) -> Self {
        Self { index, kind }
    }
}

impl From<ledger::Finding> for Finding {
    fn from(f: ledger::Finding) -> Self {
        Self::new(f.index, FindingKind::Log(f.kind))
    }
}

// Serialised as it always was, `{"index", "reason"}` with the prose, so
// that the JSON output reads the same.
impl Serialize for Finding {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Finding", 2)?;
        st.serialize_field("index", &self.index)?;
        st.serialize_field("reason", &self.kind.to_string())?;
        st.end()
    }
}

/// What went wrong, with what it takes to say so.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FindingKind {
    /// What the ledger's own check finds.
    #[error(transparent)]
    Log(ledger::FindingKind),

    // The checkpoint, against what the auditor trusted before.
    #[error("the checkpoint covers {size} entries, fewer than the {trusted_size} you trusted: the log shrank or this is an old copy")]
    Shrank { size: u64, trusted_size: u64 },
    #[error("the checkpoint is not accepted: {0}")]
    CheckpointNotAccepted(NoteError),

    // Reading the bundle.
    #[error("{tile} holds {held} entries where the checkpoint calls for {width}: an entry was dropped or added")]
    TileCount { tile: String, held: u64, width: u64 },
    /// `detail` is the reading error's prose (an i/o error is not data).
    #[error("cannot read the entries from here on: {detail}")]
    Unreadable { detail: String },

    // Signatures, against the registry at the entry's position.
    #[error("signed with {key_id}, a weak (small-order) key that proves nothing")]
    WeakKey { key_id: String },
    #[error("signed with {key_id}, a key the registry does not hold at this position")]
    UnknownKey { key_id: String },
    #[error("malformed entry: {0}")]
    Malformed(EntryError),
    #[error("signature check failed: {0}")]
    BadSignature(EntryError),

    // The rules: each entry applies, each decision replays.
    #[error("not a Consentry entry: {0}")]
    NotConsentry(ParseError),
    #[error("does not apply under the rules: {0}")]
    NotApplicable(ApplyError),
    #[error("decision {decision_id} disagrees with the rules at this position: its {} is {}, the replay gives {}", .mismatch.field, .mismatch.logged, .mismatch.replayed)]
    DecisionDisagrees {
        decision_id: String,
        mismatch: Mismatch,
    },
    #[error("decision id {decision_id} is used twice")]
    DecisionIdReused { decision_id: String },

    // Releases, against their decisions.
    #[error("release for decision {decision_id}, which no earlier entry made")]
    ReleaseWithoutDecision { decision_id: String },
    #[error("release after a deny: decision {decision_id} at #{decided_index} denied the request")]
    ReleaseAfterDeny {
        decision_id: String,
        decided_index: u64,
    },
    #[error("a second release for decision {decision_id}")]
    SecondRelease { decision_id: String },
    #[error("release wider than its allow: {count} record(s) of {category} sent, but decision {decision_id} at #{decided_index} allowed only {}", .allowed.join(", "))]
    ReleaseWider {
        decision_id: String,
        decided_index: u64,
        category: String,
        count: u32,
        allowed: Vec<String>,
    },

    // The tree, against the checkpoint's root.
    #[error("the bundle holds {held} entries but the checkpoint covers {size}")]
    EntryCount { held: u64, size: u64 },
    #[error("history rewritten: entry {index} is not the one you verified under the checkpoint of {trusted_size} entries (root {})", B64.encode(.trusted_root))]
    HistoryRewritten {
        index: u64,
        trusted_size: u64,
        trusted_root: ledger::Hash,
    },
    #[error("this entry is not the one the signed tree holds here: changed, dropped or moved")]
    NotInTree,
    #[error("the entries do not hash to the checkpoint's root, and no copy of the tree here says which one changed")]
    RootUnexplained,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CLI and the JSON output say what they said when findings were
    /// prose: the kinds' `Display`, and `{"index", "reason"}`.
    #[test]
    fn findings_read_as_they_always_did() {
        let wider = Finding::new(
            7,
            FindingKind::ReleaseWider {
                decision_id: "d-1".into(),
                decided_index: 5,
                category: "health.mental".into(),
                count: 1,
                allowed: vec!["health.sud.treatment".into(), "housing".into()],
            },
        );
        assert_eq!(
            serde_json::to_value(&wider).unwrap(),
            serde_json::json!({
                "index": 7,
                "reason": "release wider than its allow: 1 record(s) of health.mental sent, but decision d-1 at #5 allowed only health.sud.treatment, housing",
            })
        );
        let rewritten = FindingKind::HistoryRewritten {
            index: 3,
            trusted_size: 9,
            trusted_root: [0; 32],
        };
        assert_eq!(
            rewritten.to_string(),
            format!("history rewritten: entry 3 is not the one you verified under the checkpoint of 9 entries (root {})", B64.encode([0u8; 32]))
        );
        let log = Finding::from(ledger::Finding {
            index: 4,
            kind: ledger::FindingKind::EntryMissing,
        });
        assert_eq!(
            log.kind,
            FindingKind::Log(ledger::FindingKind::EntryMissing)
        );
        assert_eq!(log.to_string(), "entry 4: entry is missing");
    }
}
