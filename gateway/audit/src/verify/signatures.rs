//! The signatures, on the workers: each entry's, against the keys the
//! replay resolved for it at its position; and each entry's leaf hash,
//! for the tree.

use std::time::{Duration, Instant};

use ledger::merkle::{leaf_hash, Hash};
use ledger::{Envelope, KeyLookup};

use super::keys::EntryKeys;
use crate::finding::FindingKind;

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
fn verify_batches(envs: &[(u64, Envelope)], keys: &[EntryKeys]) -> Vec<(u64, FindingKind)> {
    let mut failed = Vec::new();
    let jobs: Vec<(&(u64, Envelope), &EntryKeys)> = envs.iter().zip(keys).collect();
    for batch in jobs.chunks(BATCH_ENTRIES) {
        let mut msgs: Vec<&[u8]> = Vec::new();
        let mut sigs = Vec::new();
        let mut batch_keys = Vec::new();
        let mut checked = Vec::new();
        for &((at, env), k) in batch {
            if let Err(e) = env.check_structure() {
                failed.push((*at, FindingKind::Malformed(e)));
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
                    failed.push((at, FindingKind::BadSignature(e)));
                }
            }
        }
    }
    failed
}

/// A step of entries, with the keys each one's signatures resolved to.
pub(super) struct Step {
    pub seq: usize,
    pub envs: Vec<(u64, Envelope)>,
    pub keys: Vec<EntryKeys>,
}

/// What a worker found in a step.
pub(super) struct Checked {
    pub seq: usize,
    pub failures: Vec<(u64, FindingKind)>,
    pub leaves: Vec<Hash>,
    pub signature_time: Duration,
    pub hash_time: Duration,
}

/// Checks a step's signatures, then hashes its leaves.
pub(super) fn check_step(step: Step) -> Checked {
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
