//! `consentry witness`: an independent cosigner, run by another
//! organisation (the community advisory board, a legal-aid clinic).
//!
//! Each round it fetches the gateway's checkpoint, verifies the log's
//! signature, and cosigns (C2SP `tlog-cosignature`) only a checkpoint
//! that extends the last one it cosigned: same origin, not smaller, the
//! same root at the same size, and a consistency proof (RFC 6962) that
//! verifies from the old root to the new. Anything else is refused,
//! loudly, and not cosigned: that is how a split view (one history shown
//! to some, another to others) becomes visible.
//!
//! The state file holds the last checkpoint cosigned. It is replaced
//! atomically (written, synced, renamed, the folder synced) **before**
//! the cosignature leaves, so that after any crash the witness remembers
//! at least everything it ever signed, and never signs two inconsistent
//! checkpoints across restarts.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ledger::merkle::{verify_consistency, Hash};
use ledger::{Checkpoint, Cosigner, NoteVerifier};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::{AgencyClient, ClientError};

#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error("the gateway: {0}")]
    Gateway(#[from] ClientError),
    #[error("the gateway answered {status} to {what}: {detail}")]
    Answer {
        what: &'static str,
        status: u16,
        detail: String,
    },
    #[error("state file {path}: {reason}")]
    State { path: String, reason: String },
}

/// What the witness last cosigned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cosigned {
    pub origin: String,
    pub size: u64,
    pub root: String,
    pub checkpoint: String,
}

/// What one round did.
#[derive(Debug, PartialEq, Eq)]
pub enum Round {
    /// Cosigned the checkpoint of this size.
    Cosigned(u64),
    /// Nothing new: the checkpoint is the one cosigned before.
    Unchanged(u64),
    /// Not cosigned, and why: the gateway shows a history that does not
    /// extend the one this witness cosigned.
    Refused(String),
}

pub struct StateFile(PathBuf);

fn state_err(path: &Path, reason: impl ToString) -> WitnessError {
    WitnessError::State {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

impl StateFile {
    pub fn new(path: &Path) -> Self {
        Self(path.to_path_buf())
    }

    pub fn load(&self) -> Result<Option<Cosigned>, WitnessError> {
        match std::fs::read(&self.0) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| state_err(&self.0, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(state_err(&self.0, e)),
        }
    }

    /// Replaces the state: write a temporary file, sync it, rename it over
    /// the old one, sync the folder. A crash leaves the old or the new.
    pub fn save(&self, c: &Cosigned) -> Result<(), WitnessError> {
        let bytes = serde_json::to_vec(c).map_err(|e| state_err(&self.0, e))?;
        audit::replace_file(&self.0, &bytes).map_err(|e| state_err(&self.0, e))
    }
}

fn hash_of(s: &str) -> Option<Hash> {
    B64.decode(s).ok()?.try_into().ok()
}

fn detail(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect())
}

/// One round: fetch, check, remember, cosign, post.
pub async fn round(
    gateway: &AgencyClient,
    log_key: &NoteVerifier,
    cosigner: &Cosigner,
    state: &StateFile,
    now: u64,
) -> Result<Round, WitnessError> {
    let r = gateway.get("/v1/log/checkpoint").await?;
    if r.status != 200 {
        return Err(WitnessError::Answer {
            what: "the checkpoint",
            status: r.status,
            detail: detail(&r.body),
        });
    }
    let note = String::from_utf8_lossy(&r.body).into_owned();
    let cp = match Checkpoint::open(&note, log_key) {
        Ok(cp) => cp,
        Err(e) => {
            return Ok(Round::Refused(format!(
                "the checkpoint does not verify under the log's key: {e}"
            )))
        }
    };
    let before = state.load()?;
    if let Some(b) = &before {
        let old_root = hash_of(&b.root).ok_or_else(|| state_err(&state.0, "malformed root"))?;
        if cp.origin != b.origin {
            return Ok(Round::Refused(format!(
                "the checkpoint is for log {:?}, not {:?}",
                cp.origin, b.origin
            )));
        }
        if cp.size < b.size {
            return Ok(Round::Refused(format!(
                "the checkpoint covers {} entries, fewer than the {} this witness cosigned: a rollback or a split view",
                cp.size, b.size
            )));
        }
        if cp.size == b.size {
            if cp.root != old_root {
                return Ok(Round::Refused(format!(
                    "a second tree of {} entries with another root: a split view",
                    cp.size
                )));
            }
            // Cosigned before; post again only if the gateway lost it.
            if note.contains(&format!("\u{2014} {} ", cosigner.verifier().name())) {
                return Ok(Round::Unchanged(cp.size));
            }
        } else {
            let path = format!("/v1/log/proof/consistency?old={}&new={}", b.size, cp.size);
            let p = gateway.get(&path).await?;
            if p.status != 200 {
                return Err(WitnessError::Answer {
                    what: "the consistency proof",
                    status: p.status,
                    detail: detail(&p.body),
                });
            }
            let proof: Option<Vec<Hash>> = serde_json::from_slice::<serde_json::Value>(&p.body)
                .ok()
                .and_then(|v| {
                    v["proof"]
                        .as_array()?
                        .iter()
                        .map(|h| h.as_str().and_then(hash_of))
                        .collect()
                });
            let consistent = proof.is_some_and(|proof| {
                verify_consistency(b.size, cp.size, &proof, &old_root, &cp.root).is_ok()
            });
            if !consistent {
                return Ok(Round::Refused(format!(
                    "the checkpoint of {} entries does not extend the one of {} this witness cosigned: a rewritten history or a split view",
                    cp.size, b.size
                )));
            }
        }
    }
    // Remembered before the cosignature leaves.
    state.save(&Cosigned {
        origin: cp.origin.clone(),
        size: cp.size,
        root: B64.encode(cp.root),
        checkpoint: note.clone(),
    })?;
    let line = cosigner.cosign(&cp.body(), now).line();
    let posted = gateway
        .post_json(
            "/v1/log/cosignatures",
            &json!({"size": cp.size, "cosignature": line}),
        )
        .await?;
    if posted.status != 200 {
        return Err(WitnessError::Answer {
            what: "the cosignature",
            status: posted.status,
            detail: detail(&posted.body),
        });
    }
    Ok(Round::Cosigned(cp.size))
}
