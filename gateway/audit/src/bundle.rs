//! An audit bundle: a folder an auditor can check with nothing else.
//!
//! ```text
//! BUNDLE/
//!   checkpoint            the log's latest signed checkpoint, with every cosignature
//!   log.vkey              the log's note verifier key (name+hash+base64)
//!   trust.json            the deployment's trust roots: governance and gateway keys
//!   tile/entries/<N>...   the entries, as C2SP tlog-tiles entry bundles
//!   tile/<L>/<N>...       the tree's hash tiles
//!   signatures/<N>...     each entry's signatures, in the same tiling
//!   README                this layout, in words
//! ```
//!
//! Writing is in [`write_bundle`]; reading, in [`Bundle`]. Both go
//! through [`crate::tiles`] for the tile formats.

use std::path::{Path, PathBuf};

use ledger::{Checkpoint, Envelope, NoteVerifier};
use policy::Trust;

use crate::finding::FindingKind;
use crate::tiles::{self, HashTiles, TileError, TILE_WIDTH};

pub const CHECKPOINT_FILE: &str = "checkpoint";
pub const VKEY_FILE: &str = "log.vkey";
pub const TRUST_FILE: &str = "trust.json";

const README: &str = "A Consentry audit bundle (consentry audit export).\n\
\n\
checkpoint          the log's signed checkpoint (C2SP tlog-checkpoint, signed-note), with cosignatures\n\
log.vkey            the log's verifier key\n\
trust.json          the deployment's trust roots (governance and gateway public keys)\n\
tile/entries/<N>    entries, C2SP tlog-tiles entry bundles (u16 big-endian length, then the entry)\n\
tile/<L>/<N>        hash tiles (C2SP tlog-tiles)\n\
signatures/<N>      per entry of the same bundle: a count byte, then per signature a key-id length\n\
                    byte, the key id and the 64-byte Ed25519 signature over the entry\n\
\n\
Check it with: consentry audit verify BUNDLE --state FILE\n";

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("{path}: {reason}")]
    Malformed { path: String, reason: String },
    #[error(transparent)]
    Tile(#[from] TileError),
}

fn io(path: &Path, err: std::io::Error) -> BundleError {
    BundleError::Io {
        path: path.display().to_string(),
        err,
    }
}

fn malformed(path: &Path, reason: impl ToString) -> BundleError {
    BundleError::Malformed {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// The trust roots from their JSON file (`keys/trust.json`, or a
/// bundle's `trust.json`). A file from before boards names one
/// governance key: a board of one, quorum 1.
pub fn parse_trust(text: &[u8]) -> Result<Trust, String> {
    let v: serde_json::Value = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    let field = |k: &str| {
        v[k].as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no string {k:?}"))
    };
    let board = match v.get("board") {
        None => Vec::new(),
        Some(b) => b
            .as_array()
            .ok_or("\"board\" is not a list")?
            .iter()
            .map(|m| {
                let s = |k: &str| {
                    m[k].as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("a board member without a string {k:?}"))
                };
                Ok(policy::BoardMember {
                    key_id: s("key_id")?,
                    public_key: s("public_key")?,
                })
            })
            .collect::<Result<_, String>>()?,
    };
    let quorum = match v.get("quorum") {
        None => 1,
        Some(q) => q
            .as_u64()
            .and_then(|q| u32::try_from(q).ok())
            .ok_or("\"quorum\" is not a count")?,
    };
    let trust = Trust {
        governance_key_id: field("governance_key_id")?,
        governance_public_key: field("governance_public_key")?,
        gateway_key_id: field("gateway_key_id")?,
        gateway_public_key: field("gateway_public_key")?,
        board,
        quorum,
    };
    trust.check()?;
    Ok(trust)
}

/// The trust roots as JSON, as [`parse_trust`] reads them: a board of one
/// is written as before boards, so that its file reads the same.
pub fn trust_json(t: &Trust) -> String {
    let mut v = serde_json::json!({
        "governance_key_id": t.governance_key_id,
        "governance_public_key": t.governance_public_key,
        "gateway_key_id": t.gateway_key_id,
        "gateway_public_key": t.gateway_public_key,
    });
    if !t.board.is_empty() || t.quorum != 1 {
        v["board"] = t
            .board
            .iter()
            .map(|m| serde_json::json!({"key_id": m.key_id, "public_key": m.public_key}))
            .collect();
        v["quorum"] = t.quorum.into();
    }
    format!("{v:#}")
}

fn write(dir: &Path, rel: &str, bytes: &[u8]) -> Result<(), BundleError> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    }
    std::fs::write(&path, bytes).map_err(|e| io(&path, e))
}

/// Writes a bundle of the first `size` envelopes (`read(start, end)` gives
/// them in order), the checkpoint note and the public keys, into `dir`,
/// which must not exist yet (a bundle is never half-overwritten).
pub fn write_bundle(
    dir: &Path,
    size: u64,
    mut read: impl FnMut(u64, u64) -> Result<Vec<Envelope>, String>,
    checkpoint_note: &str,
    log_key: &NoteVerifier,
    trust: &Trust,
    mut progress: impl FnMut(u64),
) -> Result<(), BundleError> {
    if dir.exists() {
        return Err(malformed(dir, "already exists; choose a new folder"));
    }
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut hashes = HashTiles::default();
    let mut start = 0;
    while start < size {
        let end = ((start / TILE_WIDTH + 1) * TILE_WIDTH).min(size);
        let envs = read(start, end).map_err(|e| malformed(dir, e))?;
        if envs.len() as u64 != end - start {
            return Err(malformed(
                dir,
                format!("the log gave {} entries for {start}..{end}", envs.len()),
            ));
        }
        let n = start / TILE_WIDTH;
        let width = end - n * TILE_WIDTH;
        let entries = tiles::encode_entries(start, envs.iter().map(|e| e.entry.as_slice()))?;
        let sigs = tiles::encode_signatures(envs.iter().map(|e| e.signatures.as_slice()));
        write(dir, &tiles::tile_path("tile/entries", n, width), &entries)?;
        write(dir, &tiles::tile_path("signatures", n, width), &sigs)?;
        for e in &envs {
            hashes.push(&e.entry);
        }
        start = end;
        progress(start);
    }
    for (level, n, width, bytes) in hashes.tiles() {
        write(
            dir,
            &tiles::tile_path(&format!("tile/{level}"), n, width),
            &bytes,
        )?;
    }
    write(dir, CHECKPOINT_FILE, checkpoint_note.as_bytes())?;
    write(dir, VKEY_FILE, format!("{log_key}\n").as_bytes())?;
    write(dir, TRUST_FILE, trust_json(trust).as_bytes())?;
    write(dir, "README", README.as_bytes())?;
    Ok(())
}

/// A bundle opened for checking: its keys and checkpoint read, its
/// checkpoint verified under the log's key.
pub struct Bundle {
    dir: PathBuf,
    pub checkpoint_note: String,
    pub checkpoint: Checkpoint,
    pub log_key: NoteVerifier,
    pub trust: Trust,
    /// The witnesses the auditor trusts and their quorum: when set, the
    /// checkpoint counts only with that many of their cosignatures.
    pub witness_policy: Option<ledger::WitnessPolicy>,
}

/// What reading a tile of entries found.
pub struct TileRead {
    pub envelopes: Vec<Envelope>,
    /// Set when the tile does not hold the count its place in the tree
    /// calls for (an entry dropped or added).
    pub wrong_count: Option<FindingKind>,
}

impl Bundle {
    /// Opens `dir`: the checkpoint must verify under `log.vkey` (or
    /// `log_key`, when the auditor brings their own), and the trust roots
    /// must parse.
    pub fn open(
        dir: &Path,
        log_key: Option<NoteVerifier>,
        trust: Option<Trust>,
    ) -> Result<Self, BundleError> {
        let read = |rel: &str| {
            let p = dir.join(rel);
            std::fs::read(&p).map_err(|e| io(&p, e))
        };
        let log_key = match log_key {
            Some(k) => k,
            None => {
                let text = read(VKEY_FILE)?;
                NoteVerifier::parse(String::from_utf8_lossy(&text).trim())
                    .map_err(|e| malformed(&dir.join(VKEY_FILE), e))?
            }
        };
        let trust = match trust {
            Some(t) => t,
            None => {
                parse_trust(&read(TRUST_FILE)?).map_err(|e| malformed(&dir.join(TRUST_FILE), e))?
            }
        };
        let note = String::from_utf8(read(CHECKPOINT_FILE)?)
            .map_err(|_| malformed(&dir.join(CHECKPOINT_FILE), "not UTF-8"))?;
        let checkpoint = Checkpoint::open(&note, &log_key).map_err(|e| {
            malformed(
                &dir.join(CHECKPOINT_FILE),
                format!("does not verify under the log's key: {e}"),
            )
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            checkpoint_note: note,
            checkpoint,
            log_key,
            trust,
            witness_policy: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entries of tile `n` of a tree of the checkpoint's size.
    pub fn read_tile(&self, n: u64) -> Result<TileRead, BundleError> {
        let size = self.checkpoint.size;
        let width = (size - n * TILE_WIDTH).min(TILE_WIDTH);
        let entries_rel = tiles::tile_path("tile/entries", n, width);
        let sigs_rel = tiles::tile_path("signatures", n, width);
        let read = |rel: &str| {
            let p = self.dir.join(rel);
            std::fs::read(&p).map_err(|e| io(&p, e))
        };
        let envelopes = tiles::envelopes(&read(&entries_rel)?, &read(&sigs_rel)?, &entries_rel)?;
        let held = envelopes.len() as u64;
        let wrong_count = (held != width).then_some(FindingKind::TileCount {
            tile: entries_rel,
            held,
            width,
        });
        Ok(TileRead {
            envelopes,
            wrong_count,
        })
    }

    /// The leaf hashes of level-0 hash tile `n`, if the bundle has it.
    pub fn leaf_tile(&self, n: u64) -> Option<Vec<ledger::Hash>> {
        let size = self.checkpoint.size;
        let width = (size - n * TILE_WIDTH).min(TILE_WIDTH);
        let bytes = std::fs::read(self.dir.join(tiles::tile_path("tile/0", n, width))).ok()?;
        Some(
            bytes
                .chunks_exact(32)
                .filter_map(|c| <[u8; 32]>::try_from(c).ok())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_roots_from_before_boards_are_a_board_of_one_and_read_the_same() {
        let before = r#"{"governance_key_id":"governance","governance_public_key":"g","gateway_key_id":"gateway","gateway_public_key":"w"}"#;
        let t = parse_trust(before.as_bytes()).unwrap();
        assert_eq!((t.board.len(), t.quorum), (0, 1));
        assert!(!trust_json(&t).contains("board"), "written as before");
        let board = Trust {
            board: vec![policy::BoardMember {
                key_id: "m1".into(),
                public_key: "k1".into(),
            }],
            quorum: 2,
            ..t
        };
        assert_eq!(parse_trust(trust_json(&board).as_bytes()).unwrap(), board);
        let over = trust_json(&board).replace("\"quorum\": 2", "\"quorum\": 3");
        assert!(parse_trust(over.as_bytes())
            .unwrap_err()
            .contains("quorum of 3 for a board of 2"));
    }
}
