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

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::VerifyingKey;
use ledger::merkle::{leaf_hash, Frontier, Hash};
use ledger::{Envelope, KeyLookup};
use policy::{parse_event, replay_check, ConsentState, Event, Outcome};
use serde::{Deserialize, Serialize};

use crate::bundle::{Bundle, BundleError};
use crate::decode_key;
use crate::tiles::TILE_WIDTH;

/// Tiles read and checked per step: bounds memory on a log of any size.
const TILES_PER_STEP: u64 = 32;
/// Most findings kept (the count goes on): a broken log must not exhaust
/// the auditor's memory.
pub const FINDINGS_MAX: usize = 10_000;

/// One thing wrong, at one index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub index: u64,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("state file {path}: {reason}")]
    State { path: String, reason: String },
}

/// An entry that changed the consent state (registry, consents, rules,
/// grievances), kept so that a resumed run rebuilds the state without
/// reading the log again.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Applied {
    index: u64,
    signers: Vec<String>,
    entry: String,
}

/// An allow not yet followed by its release.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct OpenAllow {
    index: u64,
    released: Vec<String>,
}

/// What the auditor trusts after a clean run: the checkpoint, the tree's
/// right edge, and what a resumed run needs to go on.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Trusted {
    format: u32,
    log: String,
    size: u64,
    root: String,
    right_edge: Vec<String>,
    checkpoint: String,
    applied: Vec<Applied>,
    open_allows: BTreeMap<String, OpenAllow>,
}

const STATE_FORMAT: u32 = 1;

/// The auditor's state: `FILE` (JSON, replaced atomically) and
/// `FILE.leaves` (every verified leaf hash, appended), so that a later
/// run can name the first entry a rewritten history changed.
pub struct StateFile {
    path: PathBuf,
}

fn state_err(path: &Path, reason: impl ToString) -> VerifyError {
    VerifyError::State {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn hash_b64(h: &Hash) -> String {
    B64.encode(h)
}

fn b64_hash(s: &str) -> Option<Hash> {
    B64.decode(s).ok()?.try_into().ok()
}

impl StateFile {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    fn leaves_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".leaves");
        PathBuf::from(p)
    }

    fn load(&self) -> Result<Option<Trusted>, VerifyError> {
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
    fn leaves(&self, size: u64) -> Result<Vec<Hash>, VerifyError> {
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
    fn save(&self, t: &Trusted, from: u64, leaves: &[Hash]) -> Result<(), VerifyError> {
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

/// Decoded registry keys by id: a key id is never reused, so a key once
/// decoded stays right.
#[derive(Default)]
struct KeyCache(HashMap<String, VerifyingKey>);

impl KeyCache {
    /// The key `key_id` names at this position: the entry's own (a
    /// self-enrolment), else the registry's.
    fn resolve(
        &mut self,
        state: &ConsentState,
        own: Option<(&str, &str)>,
        key_id: &str,
    ) -> Option<VerifyingKey> {
        if let Some((id, k)) = own {
            if id == key_id {
                return decode_key(k);
            }
        }
        if let Some(k) = self.0.get(key_id) {
            return Some(*k);
        }
        let k = state.key(key_id).and_then(|k| decode_key(&k.public_key))?;
        self.0.insert(key_id.to_string(), k);
        Some(k)
    }
}

/// The keys one entry's signatures resolve to at its position.
struct EntryKeys(Vec<(String, VerifyingKey)>);

impl KeyLookup for EntryKeys {
    fn verifying_key(&self, key_id: &str) -> Option<VerifyingKey> {
        self.0.iter().find(|(k, _)| k == key_id).map(|(_, v)| *v)
    }
}

struct Seen {
    allow: bool,
    index: u64,
    released: Vec<String>,
    released_yet: bool,
}

struct Run {
    findings: Vec<Finding>,
    count: u64,
}

impl Run {
    fn find(&mut self, index: u64, reason: impl Into<String>) {
        self.count += 1;
        if self.findings.len() < FINDINGS_MAX {
            self.findings.push(Finding {
                index,
                reason: reason.into(),
            });
        }
    }
}

/// Checks `bundle`, resuming from `state` when it holds a trusted
/// checkpoint of the same log. Returns the findings (sorted by index) and
/// the summary; the state file is updated only when there is none.
pub fn verify(
    bundle: &Bundle,
    state: Option<&StateFile>,
    threads: usize,
    mut progress: impl FnMut(u64, u64),
) -> Result<(Vec<Finding>, Summary), VerifyError> {
    let started = Instant::now();
    let cp = &bundle.checkpoint;
    let size = cp.size;
    let mut run = Run {
        findings: Vec::new(),
        count: 0,
    };
    let mut summary = Summary::default();
    let trusted = match state {
        Some(s) => s.load()?,
        None => None,
    };
    if let Some(t) = &trusted {
        if t.log != bundle.log_key.name() {
            return Err(state_err(
                &state.map(|s| s.path.clone()).unwrap_or_default(),
                format!("it is for log {:?}, not {:?}", t.log, bundle.log_key.name()),
            ));
        }
    }

    // Where this run starts: after the trusted checkpoint, if the bundle
    // reaches that far.
    let mut policy_state = ConsentState::new(bundle.trust.clone());
    let mut frontier = Frontier::new();
    let mut open: HashMap<String, Seen> = HashMap::new();
    let mut applied: Vec<Applied> = Vec::new();
    let mut from = 0;
    let mut trusted_root = None;
    if let Some(t) = &trusted {
        if size < t.size {
            run.find(
                size,
                format!(
                    "the checkpoint covers {size} entries, fewer than the {} you trusted: the log shrank or this is an old copy",
                    t.size
                ),
            );
        } else {
            let edge: Option<Vec<Hash>> = t.right_edge.iter().map(|h| b64_hash(h)).collect();
            frontier = edge
                .and_then(|e| Frontier::from_right_edge(t.size, &e))
                .ok_or_else(|| {
                    state_err(
                        &state.map(|s| s.path.clone()).unwrap_or_default(),
                        "malformed right edge",
                    )
                })?;
            trusted_root = b64_hash(&t.root);
            for a in &t.applied {
                let entry = B64.decode(&a.entry).unwrap_or_default();
                let signers: Vec<&str> = a.signers.iter().map(String::as_str).collect();
                if let Ok(e) = parse_event(&entry) {
                    // Checked when first seen; re-applied only to rebuild.
                    let _ = policy_state.apply(a.index, &e, &signers);
                }
            }
            applied = t.applied.clone();
            for (id, o) in &t.open_allows {
                open.insert(
                    id.clone(),
                    Seen {
                        allow: true,
                        index: o.index,
                        released: o.released.clone(),
                        released_yet: false,
                    },
                );
            }
            from = t.size;
        }
    }
    summary.from = from;
    summary.to = size;
    // A checkpoint that too few trusted witnesses cosigned may be one
    // history of several shown to different people: no trust moves on it.
    if let Some(policy) = &bundle.witness_policy {
        if let Err(e) = policy.check(&bundle.checkpoint_note) {
            run.find(size, format!("the checkpoint is not accepted: {e}"));
        }
    }

    let mut keys = KeyCache::default();
    let mut leaves: Vec<Hash> = Vec::with_capacity((size - from.min(size)) as usize);
    let mut n = from / TILE_WIDTH;
    let mut index = n * TILE_WIDTH;
    // A pipeline: this thread reads and replays step by step (the replay
    // is sequential by nature) while `threads` workers check the previous
    // steps' signatures and hash their leaves.
    let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<Step>(threads.max(1));
    let work_rx = std::sync::Mutex::new(work_rx);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Checked>();
    let mut seq = 0usize;
    std::thread::scope(|scope| -> Result<(), VerifyError> {
        for _ in 0..threads.max(1) {
            let (rx, tx) = (&work_rx, done_tx.clone());
            scope.spawn(move || loop {
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
            });
        }
        drop(done_tx);
        while index < size {
            // Read a step of tiles.
            let t0 = Instant::now();
            let mut envs: Vec<(u64, Envelope)> = Vec::new();
            let last = (n + TILES_PER_STEP).min(size.div_ceil(TILE_WIDTH));
            let mut broken = false;
            while n < last {
                match bundle.read_tile(n) {
                    Ok(tile) => {
                        if let Some(w) = tile.wrong_count {
                            run.find(n * TILE_WIDTH, w);
                        }
                        for (i, e) in tile.envelopes.into_iter().enumerate() {
                            let at = n * TILE_WIDTH + i as u64;
                            if at >= from && at < size && i < TILE_WIDTH as usize {
                                envs.push((at, e));
                            }
                        }
                    }
                    Err(e) => {
                        run.find(
                            n * TILE_WIDTH,
                            format!("cannot read the entries from here on: {e}"),
                        );
                        broken = true;
                    }
                }
                n += 1;
                if broken {
                    break;
                }
            }
            summary.read += t0.elapsed();

            // Replay, in order: keys as the registry holds them here, each
            // decision against `decide`, each release against its allow.
            let t1 = Instant::now();
            let mut keyed: Vec<EntryKeys> = Vec::with_capacity(envs.len());
            for (at, env) in &envs {
                let at = *at;
                let parsed = parse_event(&env.entry);
                let own = parsed.as_ref().ok().and_then(|e| e.self_signing_key());
                let mut resolved = Vec::with_capacity(env.signatures.len());
                for s in &env.signatures {
                    let key = keys.resolve(&policy_state, own, &s.key_id);
                    match key {
                        // A small-order key would let anyone sign for it.
                        Some(k) if k.is_weak() => run.find(
                            at,
                            format!(
                                "signed with {}, a weak (small-order) key that proves nothing",
                                s.key_id
                            ),
                        ),
                        Some(k) => resolved.push((s.key_id.clone(), k)),
                        None => run.find(
                            at,
                            format!(
                                "signed with {}, a key the registry does not hold at this position",
                                s.key_id
                            ),
                        ),
                    }
                }
                keyed.push(EntryKeys(resolved));
                let event = match parsed {
                    Ok(e) => e,
                    Err(e) => {
                        run.find(at, format!("not a Consentry entry: {e}"));
                        continue;
                    }
                };
                match &event {
                    Event::AccessDecided(d) => {
                        summary.decisions_replayed += 1;
                        if let Err(m) = replay_check(&policy_state, d) {
                            run.find(
                            at,
                            format!(
                                "decision {} disagrees with the rules at this position: its {} is {}, the replay gives {}",
                                d.decision_id, m.field, m.logged, m.replayed
                            ),
                        );
                        }
                        if open.contains_key(&d.decision_id) {
                            run.find(at, format!("decision id {} is used twice", d.decision_id));
                        }
                        open.insert(
                            d.decision_id.clone(),
                            Seen {
                                allow: d.outcome == Outcome::Allow,
                                index: at,
                                released: d.released.clone(),
                                released_yet: false,
                            },
                        );
                    }
                    Event::AccessReleased(r) => {
                        summary.releases_checked += 1;
                        match open.get_mut(&r.decision_id) {
                            None => run.find(
                                at,
                                format!(
                                    "release for decision {}, which no earlier entry made",
                                    r.decision_id
                                ),
                            ),
                            Some(seen) if !seen.allow => run.find(
                                at,
                                format!(
                                    "release after a deny: decision {} at #{} denied the request",
                                    r.decision_id, seen.index
                                ),
                            ),
                            Some(seen) if seen.released_yet => run.find(
                                at,
                                format!("a second release for decision {}", r.decision_id),
                            ),
                            Some(seen) => {
                                seen.released_yet = true;
                                for k in &r.kept {
                                    if !seen.released.contains(&k.category) {
                                        run.find(
                                        at,
                                        format!(
                                            "release wider than its allow: {} record(s) of {} sent, but decision {} at #{} allowed only {}",
                                            k.count,
                                            k.category,
                                            r.decision_id,
                                            seen.index,
                                            seen.released.join(", ")
                                        ),
                                    );
                                    }
                                }
                            }
                        }
                    }
                    _ => {}
                }
                let signers: Vec<&str> = env.signatures.iter().map(|s| s.key_id.as_str()).collect();
                match policy_state.apply(at, &event, &signers) {
                    Ok(()) => {
                        if !matches!(
                            event,
                            Event::AccessDecided(_)
                                | Event::AccessReleased(_)
                                | Event::AccessRefused(_)
                                | Event::ParticipantNotice(_)
                        ) {
                            applied.push(Applied {
                                index: at,
                                signers: signers.iter().map(|s| s.to_string()).collect(),
                                entry: B64.encode(&env.entry),
                            });
                        }
                    }
                    Err(e) => run.find(at, format!("does not apply under the rules: {e}")),
                }
            }
            summary.replay_time += t1.elapsed();

            // Signatures and leaves: to the workers, while this thread goes on
            // to the next step.
            summary.signatures += envs
                .iter()
                .map(|(_, e)| e.signatures.len() as u64)
                .sum::<u64>();
            if work_tx
                .send(Step {
                    seq,
                    envs,
                    keys: keyed,
                })
                .is_err()
            {
                break;
            }
            seq += 1;

            index = n * TILE_WIDTH;
            progress(index.min(size), size);
            if broken {
                break;
            }
        }
        drop(work_tx);
        Ok(())
    })?;
    // In order: the findings of each step, then its leaves into the tree.
    let t3 = Instant::now();
    let mut checked: Vec<Checked> = done_rx.into_iter().collect();
    checked.sort_by_key(|c| c.seq);
    for c in checked {
        summary.signature_time += c.signature_time;
        summary.tree_time += c.hash_time;
        for (at, reason) in c.failures {
            run.find(at, reason);
        }
        for h in &c.leaves {
            frontier.push(*h, |_, _, _| {});
        }
        leaves.extend(c.leaves);
    }
    summary.tree_time += t3.elapsed();

    // The root: the entries must give the checkpoint's.
    let t3 = Instant::now();
    let got = frontier.size();
    if got != size {
        run.find(
            got,
            format!("the bundle holds {got} entries but the checkpoint covers {size}"),
        );
    }
    if got != size || frontier.root() != cp.root {
        locate_mismatch(
            bundle,
            state,
            trusted.as_ref(),
            trusted_root,
            from,
            &leaves,
            &mut run,
        )?;
    }
    summary.tree_time += t3.elapsed();

    run.findings.sort_by_key(|f| f.index);
    summary.findings = run.count;
    // Only a clean run moves the trusted checkpoint forward.
    if run.count == 0 {
        if let Some(s) = state {
            let still_open: BTreeMap<String, OpenAllow> = open
                .into_iter()
                .filter(|(_, v)| v.allow && !v.released_yet)
                .map(|(k, v)| {
                    (
                        k,
                        OpenAllow {
                            index: v.index,
                            released: v.released,
                        },
                    )
                })
                .collect();
            let t = Trusted {
                format: STATE_FORMAT,
                log: bundle.log_key.name().to_string(),
                size,
                root: hash_b64(&cp.root),
                right_edge: frontier.right_edge().iter().map(hash_b64).collect(),
                checkpoint: bundle.checkpoint_note.clone(),
                applied,
                open_allows: still_open,
            };
            s.save(&t, from, &leaves)?;
            summary.trusted = true;
        }
    }
    summary.total = started.elapsed();
    Ok((run.findings, summary))
}

/// Entries per signature batch.
const BATCH_ENTRIES: usize = 64;

/// Verifies every job's signatures, split across `threads`; returns the
/// failures, in index order.
///
/// Each batch of entries is checked with the batch Ed25519 equation (one
/// multi-scalar multiplication for all of them, its coefficients derived
/// from the batch itself, so every auditor gets the same answer). A batch
/// that fails is checked again entry by entry with the strict check, to
/// name the entries at fault. The batch equation proves authorship as the
/// strict check does: only the key's holder can make a signature it
/// accepts (weak, small-order keys are refused where keys are resolved).
/// Where the two differ is a signature its own signer malleated (a torsion
/// component in R, a non-canonical encoding): the gateway's strict check
/// refuses it at the door, the batch may let it through. That changes no
/// one's authorship, so the auditor does not pay the strict check's
/// price for it on every entry.
fn verify_batches(envs: &[(u64, Envelope)], keys: &[EntryKeys]) -> Vec<(u64, String)> {
    let mut failed = Vec::new();
    let jobs: Vec<(&(u64, Envelope), &EntryKeys)> = envs.iter().zip(keys).collect();
    for batch in jobs.chunks(BATCH_ENTRIES) {
        let mut msgs: Vec<&[u8]> = Vec::new();
        let mut sigs = Vec::new();
        let mut batch_keys = Vec::new();
        let mut checked = Vec::new();
        for &((at, env), k) in batch {
            if let Err(e) = env.check_structure() {
                failed.push((*at, format!("malformed entry: {e}")));
                continue;
            }
            // An entry with a key the registry lacks is already a finding.
            if k.0.len() != env.signatures.len() {
                continue;
            }
            for s in &env.signatures {
                if let Some(key) = k.verifying_key(&s.key_id) {
                    msgs.push(env.entry.as_slice());
                    sigs.push(ed25519_dalek::Signature::from_bytes(&s.signature));
                    batch_keys.push(key);
                }
            }
            checked.push((*at, env, k));
        }
        if ed25519_dalek::verify_batch(&msgs, &sigs, &batch_keys).is_err() {
            for (at, env, k) in checked {
                if let Err(e) = env.check(k) {
                    failed.push((at, format!("signature check failed: {e}")));
                }
            }
        }
    }
    failed
}

/// A step of entries, with the keys each one's signatures resolved to.
struct Step {
    seq: usize,
    envs: Vec<(u64, Envelope)>,
    keys: Vec<EntryKeys>,
}

/// What a worker found in a step.
struct Checked {
    seq: usize,
    failures: Vec<(u64, String)>,
    leaves: Vec<Hash>,
    signature_time: Duration,
    hash_time: Duration,
}

fn check_step(step: Step) -> Checked {
    let t = Instant::now();
    let failures = verify_batches(&step.envs, &step.keys);
    let signature_time = t.elapsed();
    let t = Instant::now();
    let leaves = step.envs.iter().map(|(_, e)| leaf_hash(&e.entry)).collect();
    Checked {
        seq: step.seq,
        failures,
        leaves,
        signature_time,
        hash_time: t.elapsed(),
    }
}

/// The entries do not give the checkpoint's root: find which entry is to
/// blame. A history rewritten under a trusted checkpoint shows as the
/// first leaf that differs from what the auditor verified before; a
/// changed, dropped or moved entry after it, as the first leaf that
/// differs from the log's own level-0 hash tiles, once those tiles are
/// shown to give the checkpoint's root.
fn locate_mismatch(
    bundle: &Bundle,
    state: Option<&StateFile>,
    trusted: Option<&Trusted>,
    trusted_root: Option<Hash>,
    from: u64,
    leaves: &[Hash],
    run: &mut Run,
) -> Result<(), VerifyError> {
    let size = bundle.checkpoint.size;
    // Under a trusted checkpoint: did the old part change?
    if let (Some(s), Some(t), Some(old_root)) = (state, trusted, trusted_root) {
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
                run.find(
                    i as u64,
                    format!(
                        "history rewritten: entry {i} is not the one you verified under the checkpoint of {} entries (root {})",
                        t.size,
                        hash_b64(&old_root)
                    ),
                );
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
                run.find(at, "this entry is not the one the signed tree holds here: changed, dropped or moved");
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
    run.find(
        size,
        "the entries do not hash to the checkpoint's root, and no copy of the tree here says which one changed",
    );
    Ok(())
}

/// The physical floor the verifier is measured against: the bare batch
/// Ed25519 verification of the same signatures, split across `threads`,
/// with nothing else (no replay, no tree, no strict checks). Keys are
/// resolved beforehand, untimed. Returns (signatures, time).
pub fn signature_floor(bundle: &Bundle, threads: usize) -> Result<(u64, Duration), VerifyError> {
    let size = bundle.checkpoint.size;
    let mut envs = Vec::with_capacity(size as usize);
    for n in 0..size.div_ceil(TILE_WIDTH) {
        envs.extend(bundle.read_tile(n)?.envelopes);
    }
    let mut state = ConsentState::new(bundle.trust.clone());
    let mut keys = KeyCache::default();
    let mut triples: Vec<(usize, VerifyingKey, ed25519_dalek::Signature)> = Vec::new();
    for (i, env) in envs.iter().enumerate() {
        let event = parse_event(&env.entry).ok();
        let own = event.as_ref().and_then(|e| e.self_signing_key());
        for s in &env.signatures {
            let key = keys.resolve(&state, own, &s.key_id);
            if let Some(k) = key {
                triples.push((i, k, ed25519_dalek::Signature::from_bytes(&s.signature)));
            }
        }
        if let Some(e) = event {
            let signers: Vec<&str> = env.signatures.iter().map(|s| s.key_id.as_str()).collect();
            let _ = state.apply(i as u64, &e, &signers);
        }
    }
    let count = triples.len() as u64;
    let threads = threads.max(1);
    let per = triples.len().div_ceil(threads).max(1);
    let started = Instant::now();
    let ok = std::thread::scope(|s| {
        let handles: Vec<_> = triples
            .chunks(per)
            .map(|part| {
                let envs = &envs;
                s.spawn(move || {
                    part.chunks(64).all(|batch| {
                        let msgs: Vec<&[u8]> = batch
                            .iter()
                            .map(|(i, _, _)| envs[*i].entry.as_slice())
                            .collect();
                        let sigs: Vec<_> = batch.iter().map(|(_, _, s)| *s).collect();
                        let keys: Vec<_> = batch.iter().map(|(_, k, _)| *k).collect();
                        ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok()
                    })
                })
            })
            .collect();
        handles.into_iter().all(|h| h.join().unwrap_or(false))
    });
    let elapsed = started.elapsed();
    if !ok {
        return Err(state_err(
            bundle.dir(),
            "a batch of signatures does not verify",
        ));
    }
    Ok((count, elapsed))
}
