//! The auditor's state file: what they trust after a clean run, and the
//! leaf hashes a later run names a rewritten entry by.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ledger::merkle::Hash;
use serde::{Deserialize, Serialize};

use super::outcome::{state_err, VerifyError};

/// An entry that changed the consent state (registry, consents, rules,
/// grievances), kept so that a resumed run rebuilds the state without
/// reading the log again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Applied {
    pub index: u64,
    pub signers: Vec<String>,
    pub entry: String,
}

/// An allow not yet followed by its release.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct OpenAllow {
    pub index: u64,
    pub released: Vec<String>,
}

/// What the auditor trusts after a clean run: the checkpoint, the tree's
/// right edge, and what a resumed run needs to go on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Trusted {
    pub format: u32,
    pub log: String,
    pub size: u64,
    pub root: String,
    pub right_edge: Vec<String>,
    pub checkpoint: String,
    pub applied: Vec<Applied>,
    pub open_allows: BTreeMap<String, OpenAllow>,
}

pub(super) const STATE_FORMAT: u32 = 1;

/// The auditor's state: `FILE` (JSON, replaced atomically) and
/// `FILE.leaves` (every verified leaf hash, appended), so that a later
/// run can name the first entry a rewritten history changed.
pub struct StateFile {
    path: PathBuf,
}

pub(super) fn hash_b64(h: &Hash) -> String {
    B64.encode(h)
}

pub(super) fn b64_hash(s: &str) -> Option<Hash> {
    B64.decode(s).ok()?.try_into().ok()
}

impl StateFile {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    fn leaves_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".leaves");
        PathBuf::from(p)
    }

    pub(super) fn load(&self) -> Result<Option<Trusted>, VerifyError> {
        let text = match std::fs::read(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(state_err(&self.path, e)),
        };
        let t: Trusted = serde_json::from_slice(&text).map_err(|e| state_err(&self.path, e))?;
        if t.format != STATE_FORMAT {
            return Err(state_err(
                &self.path,
                format!("format {} is not {STATE_FORMAT}", t.format),
            ));
        }
        Ok(Some(t))
    }

    /// The first `size` trusted leaf hashes.
    pub(super) fn leaves(&self, size: u64) -> Result<Vec<Hash>, VerifyError> {
        let p = self.leaves_path();
        let bytes = std::fs::read(&p).map_err(|e| state_err(&p, e))?;
        if (bytes.len() as u64) < size * 32 {
            return Err(state_err(&p, "shorter than the trusted size"));
        }
        Ok(bytes[..(size * 32) as usize]
            .chunks_exact(32)
            .filter_map(|c| <[u8; 32]>::try_from(c).ok())
            .collect())
    }

    /// Appends `leaves` after the first `from` and syncs, then replaces the
    /// state file atomically (write, sync, rename, sync the folder): a
    /// crash leaves the old state or the new one, never a mix.
    pub(super) fn save(&self, t: &Trusted, from: u64, leaves: &[Hash]) -> Result<(), VerifyError> {
        use std::io::Write;
        let lp = self.leaves_path();
        let f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&lp)
            .map_err(|e| state_err(&lp, e))?;
        // Whatever a crash left after the trusted part goes; the new
        // leaves follow it.
        f.set_len(from * 32).map_err(|e| state_err(&lp, e))?;
        let mut w = std::io::BufWriter::new(&f);
        std::io::Seek::seek(&mut w, std::io::SeekFrom::Start(from * 32))
            .map_err(|e| state_err(&lp, e))?;
        for h in leaves {
            w.write_all(h).map_err(|e| state_err(&lp, e))?;
        }
        w.flush().map_err(|e| state_err(&lp, e))?;
        drop(w);
        f.sync_all().map_err(|e| state_err(&lp, e))?;
        let json = serde_json::to_vec(t).map_err(|e| state_err(&self.path, e))?;
        crate::replace_file(&self.path, &json).map_err(|e| state_err(&self.path, e))
    }
}
