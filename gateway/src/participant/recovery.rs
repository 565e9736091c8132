//! The printable recovery code: a participant's 32-byte key seed in
//! Crockford base32 (no I, L, O or U to misread), with a 20-bit checksum,
//! in groups of four. Typing it back on a new device restores the key; a
//! mistyped character is caught by the checksum, not turned into a wrong
//! key. The code is the key: whoever holds it can sign as the participant,
//! so it is shown once and never sent to the gateway.

use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 256 bits of seed and 20 of checksum make 276 bits: 56 characters of
/// five bits, the last four bits zero.
const CHARS: usize = 56;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    #[error("a recovery code has {CHARS} letters and digits; this one has {0}")]
    Length(usize),
    #[error("{0:?} is not a letter or digit of a recovery code")]
    Character(char),
    #[error("the recovery code's checksum does not match: a character is mistyped")]
    Checksum,
}

fn checksum(seed: &[u8; 32]) -> u32 {
    let d = Sha256::digest(seed);
    (u32::from(d[0]) << 12) | (u32::from(d[1]) << 4) | (u32::from(d[2]) >> 4)
}

/// The code for `seed`, e.g. `7K3M-…` (14 groups of four).
pub fn encode(seed: &[u8; 32]) -> String {
    let mut bits: Vec<bool> = Vec::with_capacity(CHARS * 5);
    for b in seed {
        bits.extend((0..8).rev().map(|i| (b >> i) & 1 == 1));
    }
    let sum = checksum(seed);
    bits.extend((0..20).rev().map(|i| (sum >> i) & 1 == 1));
    // 276 bits, padded with zeros to 56 characters of five.
    bits.resize(CHARS * 5, false);
    let chars: Vec<u8> = bits
        .chunks(5)
        .map(|c| {
            let v = c.iter().fold(0usize, |a, &b| (a << 1) | usize::from(b));
            ALPHABET[v]
        })
        .collect();
    chars
        .chunks(4)
        .map(|g| String::from_utf8_lossy(g).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

fn value(c: char) -> Option<u8> {
    let c = match c.to_ascii_uppercase() {
        'O' => '0',
        'I' | 'L' => '1',
        c => c,
    };
    ALPHABET
        .iter()
        .position(|&a| a as char == c)
        .map(|v| v as u8)
}

/// The seed a code stands for; spaces, dashes and case do not matter.
pub fn decode(code: &str) -> Result<[u8; 32], RecoveryError> {
    let mut values = Vec::with_capacity(CHARS);
    for c in code.chars() {
        if c == '-' || c.is_whitespace() {
            continue;
        }
        values.push(value(c).ok_or(RecoveryError::Character(c))?);
    }
    if values.len() != CHARS {
        return Err(RecoveryError::Length(values.len()));
    }
    let bits: Vec<bool> = values
        .iter()
        .flat_map(|v| (0..5).rev().map(move |i| (v >> i) & 1 == 1))
        .collect();
    let mut seed = [0u8; 32];
    for (i, byte) in seed.iter_mut().enumerate() {
        *byte = bits[i * 8..i * 8 + 8]
            .iter()
            .fold(0u8, |a, &b| (a << 1) | u8::from(b));
    }
    if bits[276..].iter().any(|&b| b) {
        return Err(RecoveryError::Checksum);
    }
    let sum = bits[256..276]
        .iter()
        .fold(0u32, |a, &b| (a << 1) | u32::from(b));
    if sum != checksum(&seed) {
        return Err(RecoveryError::Checksum);
    }
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_seed_round_trips(seed in any::<[u8; 32]>()) {
            let code = encode(&seed);
            prop_assert_eq!(code.len(), 56 + 13);
            prop_assert_eq!(decode(&code).unwrap(), seed);
            prop_assert_eq!(decode(&code.to_lowercase().replace('-', " ")).unwrap(), seed);
        }
    }

    #[test]
    fn every_single_mistyped_character_is_caught() {
        // Deterministic: every substitution at every place, for two seeds.
        for seed in [[0u8; 32], [0xa5; 32]] {
            let code: Vec<u8> = encode(&seed).bytes().filter(|&b| b != b'-').collect();
            for at in 0..code.len() {
                for &c in ALPHABET.iter().filter(|&&c| c != code[at]) {
                    let mut bad = code.clone();
                    bad[at] = c;
                    let text = String::from_utf8(bad).unwrap();
                    assert!(decode(&text).is_err(), "{text} was accepted");
                }
            }
        }
    }

    #[test]
    fn malformed_codes_are_refused_with_the_reason() {
        assert_eq!(decode("ABC"), Err(RecoveryError::Length(3)));
        assert_eq!(decode("U"), Err(RecoveryError::Character('U')));
    }
}
