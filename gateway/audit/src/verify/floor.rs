//! The physical floor the verifier is measured against (`--floor`).

use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;
use policy::{parse_event, ConsentState};

use super::keys::KeyCache;
use super::outcome::{state_err, VerifyError};
use crate::bundle::Bundle;
use crate::tiles::TILE_WIDTH;

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
