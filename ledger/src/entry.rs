//! Entries and their signature envelopes.
//!
//! An entry is the exact bytes its author signed. [`Envelope`] carries those
//! bytes with one or more Ed25519 signatures; [`VerifiedEntry`] can only be
//! made by [`Envelope::verify`], so holding one proves the checks ran.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::merkle::{leaf_hash, Hash};

/// Largest entry the log accepts. Entries hold ids, codes, times and hashes,
/// never record contents, so a few KiB is ample; the cap bounds memory per
/// queued append.
pub const ENTRY_BYTES_MAX: usize = 16 * 1024;
/// Most signatures one envelope may carry: room for a community board's
/// quorum of at least seven members and any co-signers.
pub const SIGNATURES_MAX: usize = 16;
/// Longest key id.
pub const KEY_ID_BYTES_MAX: usize = 128;
/// Longest `type` value.
pub const TYPE_BYTES_MAX: usize = 64;
/// Largest JSON envelope line accepted from outside (base64 grows 4/3).
pub const ENVELOPE_JSON_BYTES_MAX: usize = ENTRY_BYTES_MAX * 2 + 4096;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum EntryError {
    #[error("malformed envelope: {0}")]
    MalformedEnvelope(String),
    #[error("entry is {len} bytes, over the limit of {max}")]
    Oversized { len: usize, max: usize },
    #[error("entry is not a json object with a string \"type\" and an integer \"v\": {0}")]
    MalformedEntry(String),
    #[error("envelope carries no signature")]
    Unsigned,
    #[error("envelope carries {0} signatures, over the limit")]
    TooManySignatures(usize),
    #[error("key id is empty, too long or not printable")]
    BadKeyId,
    #[error("unknown key id {0:?}")]
    UnknownKey(String),
    #[error("signature by {0:?} does not verify")]
    BadSignature(String),
    #[error("key {0:?} signed twice")]
    DuplicateSigner(String),
    #[error("a verifier thread failed before checking this entry")]
    VerifierFailed,
}

/// One signature over an entry's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntrySignature {
    pub key_id: String,
    pub signature: [u8; 64],
}

/// An entry as received or stored: bytes plus claimed signatures, unchecked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub entry: Vec<u8>,
    pub signatures: Vec<EntrySignature>,
}

/// Resolves key ids to public keys. The ledger does not know who owns a key;
/// the caller's registry does.
pub trait KeyLookup {
    fn verifying_key(&self, key_id: &str) -> Option<VerifyingKey>;
}

/// A fixed set of keys: the trust roots, or a test's keys.
#[derive(Clone, Debug, Default)]
pub struct StaticKeys(pub std::collections::HashMap<String, VerifyingKey>);

impl StaticKeys {
    pub fn with(mut self, key_id: &str, key: VerifyingKey) -> Self {
        self.0.insert(key_id.to_string(), key);
        self
    }
}

impl KeyLookup for StaticKeys {
    fn verifying_key(&self, key_id: &str) -> Option<VerifyingKey> {
        self.0.get(key_id).copied()
    }
}

/// An envelope whose entry is well-formed and whose every signature verified
/// against a known key. Only [`Envelope::verify`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedEntry {
    envelope: Envelope,
    entry_type: String,
    version: u64,
    leaf: Hash,
}

impl VerifiedEntry {
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }
    pub fn bytes(&self) -> &[u8] {
        &self.envelope.entry
    }
    pub fn entry_type(&self) -> &str {
        &self.entry_type
    }
    pub fn version(&self) -> u64 {
        self.version
    }
    pub fn leaf_hash(&self) -> Hash {
        self.leaf
    }
    /// Key ids that signed this entry.
    pub fn signers(&self) -> impl Iterator<Item = &str> {
        self.envelope.signatures.iter().map(|s| s.key_id.as_str())
    }
    pub fn into_envelope(self) -> Envelope {
        self.envelope
    }
}

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    entry_type: String,
    v: u64,
}

/// Checks the entry's shape: a JSON object with `type` and `v`.
fn parse_head(entry: &[u8]) -> Result<Head, EntryError> {
    if entry.len() > ENTRY_BYTES_MAX {
        return Err(EntryError::Oversized {
            len: entry.len(),
            max: ENTRY_BYTES_MAX,
        });
    }
    let head: Head =
        serde_json::from_slice(entry).map_err(|e| EntryError::MalformedEntry(e.to_string()))?;
    if head.entry_type.is_empty() || head.entry_type.len() > TYPE_BYTES_MAX {
        return Err(EntryError::MalformedEntry("bad type".into()));
    }
    Ok(head)
}

fn check_key_id(key_id: &str) -> Result<(), EntryError> {
    let ok = !key_id.is_empty()
        && key_id.len() <= KEY_ID_BYTES_MAX
        && key_id.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(EntryError::BadKeyId)
    }
}

impl Envelope {
    /// Signs `entry` with one key. Used by authors (gateway, tools, tests).
    pub fn sign(entry: Vec<u8>, key_id: &str, key: &SigningKey) -> Self {
        let signature = key.sign(&entry).to_bytes();
        Self {
            entry,
            signatures: vec![EntrySignature {
                key_id: key_id.to_string(),
                signature,
            }],
        }
    }

    /// Signs `entry` with a key the caller holds and returns it verified,
    /// without checking the fresh signature again (a signature just made
    /// by `key` verifies under its public half; checking cost as much as
    /// the rest of a gateway decision). What is checked: the entry's shape,
    /// and that `keys` binds `key_id` to exactly `key`'s public half.
    pub fn sign_verified(
        entry: Vec<u8>,
        key_id: &str,
        key: &SigningKey,
        keys: &dyn KeyLookup,
    ) -> Result<VerifiedEntry, EntryError> {
        if keys.verifying_key(key_id) != Some(key.verifying_key()) {
            return Err(EntryError::UnknownKey(key_id.to_string()));
        }
        let env = Self::sign(entry, key_id, key);
        let head = env.check_shape()?;
        Ok(env.into_verified(head))
    }

    /// Adds another signature (e.g. a co-signing agency).
    pub fn add_signature(&mut self, key_id: &str, key: &SigningKey) {
        let signature = key.sign(&self.entry).to_bytes();
        self.signatures.push(EntrySignature {
            key_id: key_id.to_string(),
            signature,
        });
    }

    /// The structural checks that need no keys: a JSON object with a type
    /// and version, one to [`SIGNATURES_MAX`] signatures (a board's quorum
    /// of seven and more, with co-signers) by distinct, well-formed key
    /// ids.
    pub fn check_structure(&self) -> Result<(), EntryError> {
        self.check_shape().map(|_| ())
    }

    fn check_shape(&self) -> Result<Head, EntryError> {
        let head = parse_head(&self.entry)?;
        if self.signatures.is_empty() {
            return Err(EntryError::Unsigned);
        }
        if self.signatures.len() > SIGNATURES_MAX {
            return Err(EntryError::TooManySignatures(self.signatures.len()));
        }
        for (i, s) in self.signatures.iter().enumerate() {
            check_key_id(&s.key_id)?;
            if self.signatures[..i].iter().any(|o| o.key_id == s.key_id) {
                return Err(EntryError::DuplicateSigner(s.key_id.clone()));
            }
        }
        Ok(head)
    }

    /// Verifies shape and every signature; the only way to a [`VerifiedEntry`].
    pub fn verify(self, keys: &dyn KeyLookup) -> Result<VerifiedEntry, EntryError> {
        let head = self.checked_head(keys)?;
        Ok(self.into_verified(head))
    }

    /// The checks of [`verify`](Envelope::verify), by reference, for a
    /// checker that keeps the envelope (the auditor's verifier).
    pub fn check(&self, keys: &dyn KeyLookup) -> Result<(), EntryError> {
        self.checked_head(keys).map(|_| ())
    }

    fn checked_head(&self, keys: &dyn KeyLookup) -> Result<Head, EntryError> {
        let head = self.check_shape()?;
        for s in &self.signatures {
            let key = keys
                .verifying_key(&s.key_id)
                .ok_or_else(|| EntryError::UnknownKey(s.key_id.clone()))?;
            key.verify_strict(&self.entry, &Signature::from_bytes(&s.signature))
                .map_err(|_| EntryError::BadSignature(s.key_id.clone()))?;
        }
        Ok(head)
    }

    fn into_verified(self, head: Head) -> VerifiedEntry {
        let leaf = leaf_hash(&self.entry);
        VerifiedEntry {
            envelope: self,
            entry_type: head.entry_type,
            version: head.v,
            leaf,
        }
    }

    /// The JSON line form used on the wire and in exported bundles.
    pub fn to_json(&self) -> String {
        let wire = WireEnvelope {
            entry: B64.encode(&self.entry),
            sigs: self
                .signatures
                .iter()
                .map(|s| WireSig {
                    keyid: s.key_id.clone(),
                    sig: B64.encode(s.signature),
                })
                .collect(),
        };
        // Serialising plain strings cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Parses the JSON form, with every size bounded before allocation grows.
    pub fn from_json(text: &[u8]) -> Result<Self, EntryError> {
        if text.len() > ENVELOPE_JSON_BYTES_MAX {
            return Err(EntryError::Oversized {
                len: text.len(),
                max: ENVELOPE_JSON_BYTES_MAX,
            });
        }
        let wire: WireEnvelope = serde_json::from_slice(text)
            .map_err(|e| EntryError::MalformedEnvelope(e.to_string()))?;
        if wire.sigs.len() > SIGNATURES_MAX {
            return Err(EntryError::TooManySignatures(wire.sigs.len()));
        }
        let entry = B64
            .decode(wire.entry.as_bytes())
            .map_err(|e| EntryError::MalformedEnvelope(format!("entry is not base64: {e}")))?;
        if entry.len() > ENTRY_BYTES_MAX {
            return Err(EntryError::Oversized {
                len: entry.len(),
                max: ENTRY_BYTES_MAX,
            });
        }
        let mut signatures = Vec::with_capacity(wire.sigs.len());
        for s in wire.sigs {
            let raw = B64.decode(s.sig.as_bytes()).map_err(|e| {
                EntryError::MalformedEnvelope(format!("signature is not base64: {e}"))
            })?;
            let signature: [u8; 64] = raw
                .try_into()
                .map_err(|_| EntryError::MalformedEnvelope("signature is not 64 bytes".into()))?;
            signatures.push(EntrySignature {
                key_id: s.keyid,
                signature,
            });
        }
        Ok(Self { entry, signatures })
    }

    /// Compact binary form for storage: `u32 len ‖ entry ‖ u8 count ‖
    /// (u8 len ‖ key id ‖ 64-byte signature)*`. Entry bytes stay verbatim.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + self.entry.len() + self.signatures.len() * 100);
        out.extend_from_slice(&(self.entry.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.entry);
        out.push(self.signatures.len() as u8);
        for s in &self.signatures {
            out.push(s.key_id.len() as u8);
            out.extend_from_slice(s.key_id.as_bytes());
            out.extend_from_slice(&s.signature);
        }
        out
    }

    /// The entry bytes of a storage record, without copying or parsing the
    /// signatures (for recomputing leaf hashes).
    pub fn entry_of_record(b: &[u8]) -> Result<&[u8], EntryError> {
        let len = b
            .get(..4)
            .and_then(|l| <[u8; 4]>::try_from(l).ok())
            .map(|l| u32::from_be_bytes(l) as usize)
            .ok_or_else(|| EntryError::MalformedEnvelope("truncated record".into()))?;
        if len > ENTRY_BYTES_MAX {
            return Err(EntryError::Oversized {
                len,
                max: ENTRY_BYTES_MAX,
            });
        }
        b.get(4..4 + len)
            .ok_or_else(|| EntryError::MalformedEnvelope("truncated record".into()))
    }

    pub fn decode(mut b: &[u8]) -> Result<Self, EntryError> {
        fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], EntryError> {
            if b.len() < n {
                return Err(EntryError::MalformedEnvelope("truncated record".into()));
            }
            let (head, tail) = b.split_at(n);
            *b = tail;
            Ok(head)
        }
        let mut len = [0u8; 4];
        len.copy_from_slice(take(&mut b, 4)?);
        let len = u32::from_be_bytes(len) as usize;
        if len > ENTRY_BYTES_MAX {
            return Err(EntryError::Oversized {
                len,
                max: ENTRY_BYTES_MAX,
            });
        }
        let entry = take(&mut b, len)?.to_vec();
        let count = take(&mut b, 1)?[0] as usize;
        let mut signatures = Vec::with_capacity(count.min(SIGNATURES_MAX));
        for _ in 0..count {
            let klen = take(&mut b, 1)?[0] as usize;
            let key_id = String::from_utf8(take(&mut b, klen)?.to_vec())
                .map_err(|_| EntryError::BadKeyId)?;
            let mut signature = [0u8; 64];
            signature.copy_from_slice(take(&mut b, 64)?);
            signatures.push(EntrySignature { key_id, signature });
        }
        if !b.is_empty() {
            return Err(EntryError::MalformedEnvelope(
                "trailing bytes in record".into(),
            ));
        }
        Ok(Self { entry, signatures })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEnvelope {
    entry: String,
    sigs: Vec<WireSig>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSig {
    keyid: String,
    sig: String,
}

/// Verifies many envelopes, one result per envelope, in order, each with
/// the single strict check ([`Envelope::verify`]).
///
/// Why not Ed25519 batch verification: it is looser than `verify_strict`.
/// It does not reject small-order points, and a signer who adds a torsion
/// point to R (or whose key has a torsion component) makes a signature that
/// the strict check rejects but a random linear combination accepts one
/// time in eight; two auditors could then disagree about one log. Ruling
/// that out needs a torsion check on every R, which costs as much as the
/// single check, so the single check is what runs (on every core, see
/// [`crate::fsck::verify_parallel`]).
pub fn verify_batch(
    envelopes: Vec<Envelope>,
    keys: &dyn KeyLookup,
) -> Vec<Result<VerifiedEntry, EntryError>> {
    envelopes.into_iter().map(|env| env.verify(keys)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn keys() -> StaticKeys {
        StaticKeys::default()
            .with("k1", key(1).verifying_key())
            .with("k2", key(2).verifying_key())
    }

    #[test]
    fn sign_verify_roundtrip_keeps_bytes() {
        // Odd spacing on purpose: the log must never re-encode.
        let bytes = br#"{ "type":"t",  "v":1, "x": [1,2] }"#.to_vec();
        let mut env = Envelope::sign(bytes.clone(), "k1", &key(1));
        env.add_signature("k2", &key(2));
        let back = Envelope::from_json(env.to_json().as_bytes()).unwrap();
        assert_eq!(back, env);
        assert_eq!(Envelope::decode(&env.encode()).unwrap(), env);
        let v = back.verify(&keys()).unwrap();
        assert_eq!(v.bytes(), &bytes[..]);
        assert_eq!(v.entry_type(), "t");
        assert_eq!(v.signers().collect::<Vec<_>>(), vec!["k1", "k2"]);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let good = br#"{"type":"t","v":1}"#.to_vec();
        let mut bad_sig = Envelope::sign(good.clone(), "k1", &key(1));
        bad_sig.signatures[0].signature[3] ^= 1;
        assert_eq!(
            bad_sig.verify(&keys()),
            Err(EntryError::BadSignature("k1".into()))
        );

        let wrong_key = Envelope::sign(good.clone(), "k1", &key(2));
        assert_eq!(
            wrong_key.verify(&keys()),
            Err(EntryError::BadSignature("k1".into()))
        );

        let unknown = Envelope::sign(good.clone(), "nobody", &key(1));
        assert_eq!(
            unknown.verify(&keys()),
            Err(EntryError::UnknownKey("nobody".into()))
        );

        let unsigned = Envelope {
            entry: good.clone(),
            signatures: vec![],
        };
        assert_eq!(unsigned.verify(&keys()), Err(EntryError::Unsigned));

        let big = format!(
            r#"{{"type":"t","v":1,"pad":"{}"}}"#,
            "x".repeat(ENTRY_BYTES_MAX)
        );
        let env = Envelope::sign(big.into_bytes(), "k1", &key(1));
        assert!(matches!(
            env.verify(&keys()),
            Err(EntryError::Oversized { .. })
        ));

        for bad in [
            &b"not json"[..],
            br#"{"v":1}"#,
            br#"{"type":"t"}"#,
            br#"[1]"#,
            br#"{"type":"","v":1}"#,
        ] {
            let env = Envelope::sign(bad.to_vec(), "k1", &key(1));
            assert!(
                matches!(env.verify(&keys()), Err(EntryError::MalformedEntry(_))),
                "{bad:?}"
            );
        }

        for bad in [
            &b""[..],
            b"{}",
            br#"{"entry":"!!","sigs":[]}"#,
            br#"{"entry":"e30=","sigs":[{"keyid":"k1","sig":"AAAA"}]}"#,
            br#"{"entry":"e30=","sigs":[],"extra":1}"#,
        ] {
            assert!(
                matches!(
                    Envelope::from_json(bad),
                    Err(EntryError::MalformedEnvelope(_))
                ),
                "{bad:?}"
            );
        }
        assert!(Envelope::decode(&[0, 0, 0, 9, 1]).is_err());
    }

    #[test]
    fn many_at_once_gives_the_strict_verdict_on_torsion_tricks() {
        // Signatures a cofactorless batch equation can be fooled by: R with
        // a small-order point added, R replaced by one, a non-canonical s.
        // Whatever the trick, `verify_batch` must say what `verify` says.
        use curve25519_dalek::constants::EIGHT_TORSION;
        use curve25519_dalek::edwards::CompressedEdwardsY;
        let good = Envelope::sign(br#"{"type":"t","v":1}"#.to_vec(), "k1", &key(1));
        let r = CompressedEdwardsY(good.signatures[0].signature[..32].try_into().unwrap())
            .decompress()
            .unwrap();
        let mut variants = vec![good.clone()];
        for t in &EIGHT_TORSION[1..] {
            let mut v = good.clone();
            v.signatures[0].signature[..32].copy_from_slice((r + t).compress().as_bytes());
            variants.push(v);
            let mut v = good.clone();
            v.signatures[0].signature[..32].copy_from_slice(t.compress().as_bytes());
            variants.push(v);
        }
        let mut big_s = good.clone();
        big_s.signatures[0].signature[63] |= 0xf0;
        variants.push(big_s);
        let single: Vec<bool> = variants
            .iter()
            .map(|v| v.clone().verify(&keys()).is_ok())
            .collect();
        let many: Vec<bool> = verify_batch(variants, &keys())
            .iter()
            .map(|r| r.is_ok())
            .collect();
        assert_eq!(many, single);
        assert_eq!(
            single.iter().filter(|ok| **ok).count(),
            1,
            "only the honest one"
        );
    }

    #[test]
    fn sign_verified_needs_the_registered_key() {
        let bytes = br#"{"type":"t","v":1}"#.to_vec();
        let v = Envelope::sign_verified(bytes.clone(), "k1", &key(1), &keys()).unwrap();
        assert!(v.envelope().clone().verify(&keys()).is_ok());
        assert_eq!(
            Envelope::sign_verified(bytes.clone(), "k1", &key(2), &keys()),
            Err(EntryError::UnknownKey("k1".into()))
        );
        assert!(Envelope::sign_verified(b"nope".to_vec(), "k1", &key(1), &keys()).is_err());
    }

    #[test]
    fn batch_verification_names_the_bad_entry() {
        let envs: Vec<Envelope> = (0..10)
            .map(|i| {
                Envelope::sign(
                    format!(r#"{{"type":"t","v":1,"i":{i}}}"#).into_bytes(),
                    "k1",
                    &key(1),
                )
            })
            .collect();
        assert!(verify_batch(envs.clone(), &keys())
            .iter()
            .all(|r| r.is_ok()));
        let mut bad = envs;
        bad[7].signatures[0].signature[0] ^= 1;
        let res = verify_batch(bad, &keys());
        let failed: Vec<usize> = res
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_err())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(failed, vec![7]);
    }
}
