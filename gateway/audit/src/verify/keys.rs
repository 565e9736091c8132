//! Which key each signature names at its entry's position.

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;
use ledger::KeyLookup;
use policy::ConsentState;

use crate::decode_key;

/// Decoded registry keys by id: a key id is never reused, so a key once
/// decoded stays right.
#[derive(Default)]
pub(super) struct KeyCache(HashMap<String, VerifyingKey>);

impl KeyCache {
    /// The key `key_id` names at this position: the entry's own (a
    /// self-enrolment), else the registry's.
    pub fn resolve(
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
pub(super) struct EntryKeys(pub Vec<(String, VerifyingKey)>);

impl KeyLookup for EntryKeys {
    fn verifying_key(&self, key_id: &str) -> Option<VerifyingKey> {
        self.0.iter().find(|(k, _)| k == key_id).map(|(_, v)| *v)
    }
}
