//! # audit — what an auditor runs
//!
//! **One job:** check an exported log with nothing but its entries and
//! public keys, and say what it shows. Replay the log into the consent
//! state with every signature checked against the registry as it stood at
//! each position; prove the entries give the signed checkpoint's root and
//! extend the checkpoint the auditor trusted before; replay every decision
//! through `policy` and hold every release against its allow; report what
//! happened, for a board, an ombudsperson or a regulator.
//!
//! **Layout**
//! - this file: replay ([`replay_store`]), the read-only whole-log check of
//!   a stopped deployment ([`fsck_dir`]), [`export_dir`], and
//!   [`replace_file`], the atomic replace the auditor's and the witness's
//!   state files rest on.
//! - [`finding`]: [`Finding`] (an index and a [`FindingKind`]), one type
//!   from the ledger's check (`FindingKind::Log`) to the verifier's.
//! - [`tiles`]: C2SP tlog-tiles paths, entry bundles, hash tiles, and our
//!   signature bundles.
//! - [`bundle`]: the audit bundle folder: write, open.
//! - [`verify`]: `consentry audit verify`, one file per phase under
//!   `verify/`: the checkpoint against the trusted state (`resume`), the
//!   read-and-replay pipeline (`pipeline`: keys at each position, the
//!   rules and each decision in `replay`, releases against their allows
//!   in `releases`, signatures and leaf hashes on the workers in
//!   `signatures`), the root (`tree`); the state file (`state`).
//! - [`report`]: `consentry audit report`: text, JSON, HTML.
//!
//! Modules import only those listed before them (`finding` first, then
//! `tiles`, `bundle`, `verify`, `report`), and of this file only its two
//! helpers, [`decode_key`] and [`replace_file`].
//!
//! **Invariants**
//! - An auditor trusts no gateway code: among the workspace's crates this
//!   one depends on `ledger` and `policy` only, and the compiler holds the
//!   rest (`dependencies_are_what_an_auditor_trusts` reads `Cargo.toml`).
//! - Every key comes from the trust roots or the registry the log itself
//!   built up to that entry, never from the bundle's word alone.
//! - An auditor's trust only moves forward on a clean run: the state file
//!   changes only when `verify` found nothing, and then atomically.
//!
//! **Never:** write to the store it checks; trust what it reads before it
//! is verified; panic on input.

#![forbid(unsafe_code)]

pub mod bundle;
pub mod finding;
pub mod report;
pub mod tiles;
pub mod verify;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use ledger::{Envelope, KeyLookup, Store};
use policy::{parse_event, ConsentState, Trust};

pub use finding::{Finding, FindingKind};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("entry {index} is missing")]
    Missing { index: u64 },
    #[error("cannot read entry {index}: {err}")]
    Store { index: u64, err: ledger::StoreError },
    #[error("entry {index} is refused: {err}")]
    Entry { index: u64, err: ledger::EntryError },
    #[error("entry {index} is not a consentry event: {err}")]
    Parse { index: u64, err: policy::ParseError },
    #[error("entry {index} does not apply: {err}")]
    Policy { index: u64, err: policy::ApplyError },
}

#[derive(Debug, thiserror::Error)]
pub enum FsckError {
    /// What the ledger's check found, as the auditor's finding.
    #[error(transparent)]
    Finding(#[from] Finding),
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// Keys the registry knows at this position, plus the key a self-enrolment
/// entry carries.
pub struct RegistryKeys<'a> {
    pub state: &'a ConsentState,
    pub own: Option<(&'a str, &'a str)>,
}

pub fn decode_key(b64: &str) -> Option<VerifyingKey> {
    let raw: [u8; 32] = B64.decode(b64).ok()?.try_into().ok()?;
    VerifyingKey::from_bytes(&raw).ok()
}

impl KeyLookup for RegistryKeys<'_> {
    fn verifying_key(&self, key_id: &str) -> Option<VerifyingKey> {
        if let Some((id, key)) = self.own {
            if id == key_id {
                return decode_key(key);
            }
        }
        self.state
            .key(key_id)
            .and_then(|k| decode_key(&k.public_key))
    }
}

/// Replays the first `size` entries of `store` into a fresh state,
/// telling `on_key` every (key id, public key) that verified an entry.
pub fn replay_store(
    store: &dyn Store,
    trust: Trust,
    size: u64,
    mut on_key: impl FnMut(&str, VerifyingKey),
) -> Result<ConsentState, ReplayError> {
    let mut state = ConsentState::new(trust);
    for index in 0..size {
        let rec = store
            .record(index)
            .map_err(|err| ReplayError::Store { index, err })?
            .ok_or(ReplayError::Missing { index })?;
        let env = Envelope::decode(&rec).map_err(|err| ReplayError::Entry { index, err })?;
        let event = parse_event(&env.entry).map_err(|err| ReplayError::Parse { index, err })?;
        let keys = RegistryKeys {
            state: &state,
            own: event.self_signing_key(),
        };
        for s in &env.signatures {
            if let Some(k) = keys.verifying_key(&s.key_id) {
                on_key(&s.key_id, k);
            }
        }
        let verified = env
            .verify(&keys)
            .map_err(|err| ReplayError::Entry { index, err })?;
        let signers: Vec<&str> = verified.signers().collect();
        state
            .apply(index, &event, &signers)
            .map_err(|err| ReplayError::Policy { index, err })?;
    }
    Ok(state)
}

/// Checks a stopped deployment's store in `data_dir`, read-only and with
/// public keys only: every frame, every signature against the registry at
/// its position, every stored hash, and the checkpoint (`log_key`).
pub fn fsck_dir(
    data_dir: &std::path::Path,
    trust: Trust,
    log_key: &ledger::NoteVerifier,
) -> Result<ledger::FsckReport, FsckError> {
    let store = ledger::fsck::open_for_check(data_dir).map_err(Finding::from)?;
    let size = store
        .size()
        .map_err(|err| ReplayError::Store { index: 0, err })?;
    let mut signer_keys = ledger::StaticKeys::default();
    replay_store(&store, trust, size, |id, k| {
        signer_keys.0.insert(id.to_string(), k);
    })?;
    let report = ledger::fsck::fsck(&store, &signer_keys, log_key, 2, |_, _| {});
    Ok(report.map_err(Finding::from)?)
}

/// Replaces the file at `path` with `bytes` so that a crash leaves the
/// old content or the new, never a mix: a temporary file is written and
/// synced, renamed over `path`, and the folder synced. The auditor's and
/// the witness's state files both rest on it.
pub fn replace_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

/// Writes an audit bundle of a stopped deployment's store in `data_dir`
/// (read-only: the store is not changed): every entry up to the latest
/// checkpoint, that checkpoint with its cosignatures, and the public keys.
/// Returns the number of entries.
pub fn export_dir(
    data_dir: &std::path::Path,
    trust: &Trust,
    log_key: &ledger::NoteVerifier,
    out: &std::path::Path,
    progress: impl FnMut(u64),
) -> Result<u64, ExportError> {
    let store = ledger::fsck::open_for_check(data_dir).map_err(Finding::from)?;
    let note = store
        .checkpoint()
        .map_err(|e| ExportError::Store(e.to_string()))?
        .ok_or_else(|| ExportError::Store("the store has no checkpoint yet".into()))?;
    let (text, _) =
        ledger::note::split_note(&note).map_err(|e| ExportError::Store(e.to_string()))?;
    let cp = ledger::Checkpoint::parse(text).map_err(|e| ExportError::Store(e.to_string()))?;
    let mut with_cosigs = note.clone();
    for line in store
        .cosignatures(cp.size)
        .map_err(|e| ExportError::Store(e.to_string()))?
    {
        with_cosigs.push_str(&line);
    }
    bundle::write_bundle(
        out,
        cp.size,
        |start, end| {
            (start..end)
                .map(|i| {
                    let rec = store
                        .record(i)
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| format!("entry {i} is missing"))?;
                    Envelope::decode(&rec).map_err(|e| format!("entry {i}: {e}"))
                })
                .collect()
        },
        &with_cosigs,
        log_key,
        trust,
        progress,
    )?;
    Ok(cp.size)
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Open(#[from] Finding),
    #[error("the store: {0}")]
    Store(String),
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
}

#[cfg(test)]
mod tests {
    /// The auditor trusts no gateway code: of the workspace's crates (path
    /// dependencies, directly or through `[workspace.dependencies]`) this
    /// crate depends on `ledger` and `policy` only. Outside crates are
    /// each named, with why, in the same file.
    #[test]
    fn dependencies_are_what_an_auditor_trusts() {
        let read = |rel: &str| -> toml::Table {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
            let text = std::fs::read_to_string(&path).unwrap();
            text.parse().unwrap()
        };
        let own = read("Cargo.toml");
        let root = read("../../Cargo.toml");
        let workspace_deps = &root["workspace"]["dependencies"];
        let is_path = |name: &str, spec: &toml::Value| {
            spec.get("path").is_some()
                || (spec.get("workspace").and_then(toml::Value::as_bool) == Some(true)
                    && workspace_deps
                        .get(name)
                        .is_some_and(|w| w.get("path").is_some()))
        };
        let mut tables: Vec<&toml::Value> = own.get("dependencies").into_iter().collect();
        // Target-specific dependencies are dependencies too.
        if let Some(targets) = own.get("target").and_then(toml::Value::as_table) {
            tables.extend(targets.values().filter_map(|t| t.get("dependencies")));
        }
        let mut ours: Vec<&str> = tables
            .iter()
            .filter_map(|t| t.as_table())
            .flat_map(|t| t.iter())
            .filter(|(name, spec)| is_path(name, spec))
            .map(|(name, _)| name.as_str())
            .collect();
        ours.sort_unstable();
        assert_eq!(ours, ["ledger", "policy"]);
    }
}
