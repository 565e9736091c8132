//! The log as C2SP `tlog-tiles` resources, the format of an audit bundle
//! and of the gateway's tile routes:
//!
//! - `tile/entries/<N>[.p/<W>]`: entry bundles, 256 entries each, every
//!   entry prefixed by its big-endian u16 length; each hashes to the leaf at
//!   its index (RFC 6962), so standard tooling can mirror and check them;
//! - `tile/<L>/<N>[.p/<W>]`: hash tiles (level 0 the leaf hashes, level
//!   `L` the roots of full tiles at `L - 1`);
//! - `signatures/<N>[.p/<W>]` (ours, beside the standard ones): for each
//!   entry of the same bundle, its signatures, as the log stores them: a
//!   count byte, then per signature the key id's length byte, the key id
//!   and the 64-byte signature. The tree commits to entries, not to who
//!   signed them, so the auditor checks each signature against the
//!   registry the log itself built up to that entry.

use ledger::merkle::{leaf_hash, Frontier, Hash};
use ledger::{EntrySignature, Envelope};

/// Entries (and hashes) in a full tile.
pub const TILE_WIDTH: u64 = 256;
/// Longest entry an entry bundle can hold (u16 length prefix).
pub const BUNDLE_ENTRY_BYTES_MAX: usize = u16::MAX as usize;

#[derive(Debug, thiserror::Error)]
pub enum TileError {
    #[error("entry {index} is {len} bytes, over the {BUNDLE_ENTRY_BYTES_MAX}-byte limit of an entry bundle")]
    EntryTooLong { index: u64, len: usize },
    #[error("{what} {path} is malformed: {reason}")]
    Malformed {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("{path}: {err}")]
    Io { path: String, err: std::io::Error },
}

/// `N` as tlog-tiles spells it: zero-padded 3-digit elements, all but the
/// last prefixed by `x` (1234067 → `x001/x234/067`).
pub fn tile_index(n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    let mut rest = n / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

/// The path of a tile under `kind` (`tile/0`, `tile/entries`,
/// `signatures`): full when `width` is 256, else partial (`.p/<W>`).
pub fn tile_path(kind: &str, n: u64, width: u64) -> String {
    if width >= TILE_WIDTH {
        format!("{kind}/{}", tile_index(n))
    } else {
        format!("{kind}/{}.p/{width}", tile_index(n))
    }
}

/// Parses `<N>[.p/<W>]` back into (N, W); `None` if it is not a tile path
/// in canonical form.
pub fn parse_tile_index(s: &str) -> Option<(u64, u64)> {
    let (index, width) = match s.split_once(".p/") {
        Some((i, w_text)) => {
            let w: u64 = w_text.parse().ok()?;
            // No leading zeroes: one spelling per width.
            if !(1..TILE_WIDTH).contains(&w) || w.to_string() != w_text {
                return None;
            }
            (i, w)
        }
        None => (s, TILE_WIDTH),
    };
    let parts: Vec<&str> = index.split('/').collect();
    let mut n: u64 = 0;
    for (i, p) in parts.iter().enumerate() {
        let digits = if i + 1 < parts.len() {
            p.strip_prefix('x')?
        } else {
            p
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n = n
            .checked_mul(1000)?
            .checked_add(digits.parse::<u64>().ok()?)?;
    }
    // One canonical spelling only: no leading `x000/`.
    (tile_index(n) == index).then_some((n, width))
}

/// An entry bundle: each entry prefixed by its u16 big-endian length.
pub fn encode_entries<'a>(
    first_index: u64,
    entries: impl Iterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, TileError> {
    let mut out = Vec::new();
    for (i, e) in entries.enumerate() {
        let len = u16::try_from(e.len()).map_err(|_| TileError::EntryTooLong {
            index: first_index + i as u64,
            len: e.len(),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Ok(out)
}

/// The signatures of a bundle's entries, in the same order.
pub fn encode_signatures<'a>(sigs: impl Iterator<Item = &'a [EntrySignature]>) -> Vec<u8> {
    let mut out = Vec::new();
    for list in sigs {
        out.push(list.len() as u8);
        for s in list {
            out.push(s.key_id.len() as u8);
            out.extend_from_slice(s.key_id.as_bytes());
            out.extend_from_slice(&s.signature);
        }
    }
    out
}

fn malformed(what: &'static str, path: &str, reason: impl Into<String>) -> TileError {
    TileError::Malformed {
        what,
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// Splits an entry bundle into its entries (at most `TILE_WIDTH`).
pub fn decode_entries<'a>(bytes: &'a [u8], path: &str) -> Result<Vec<&'a [u8]>, TileError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        if out.len() as u64 >= TILE_WIDTH {
            return Err(malformed("entry bundle", path, "more than 256 entries"));
        }
        let len = rest
            .get(..2)
            .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
            .ok_or_else(|| malformed("entry bundle", path, "truncated length"))?;
        let entry = rest
            .get(2..2 + len)
            .ok_or_else(|| malformed("entry bundle", path, "truncated entry"))?;
        out.push(entry);
        rest = &rest[2 + len..];
    }
    Ok(out)
}

/// Splits a signature bundle into one signature list per entry.
pub fn decode_signatures(bytes: &[u8], path: &str) -> Result<Vec<Vec<EntrySignature>>, TileError> {
    let mut rest = bytes;
    let mut take = |n: usize| -> Result<&[u8], TileError> {
        if rest.len() < n {
            return Err(malformed("signature bundle", path, "truncated"));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let mut lists = Vec::new();
    // Each list starts with its count byte; no byte left means the end.
    while let Ok(count) = take(1) {
        if lists.len() as u64 >= TILE_WIDTH {
            return Err(malformed("signature bundle", path, "more than 256 lists"));
        }
        let count = count[0] as usize;
        if count > ledger::entry::SIGNATURES_MAX {
            return Err(malformed("signature bundle", path, "too many signatures"));
        }
        let mut list = Vec::with_capacity(count);
        for _ in 0..count {
            let len = take(1)?[0] as usize;
            let key_id = String::from_utf8(take(len)?.to_vec())
                .map_err(|_| malformed("signature bundle", path, "key id is not UTF-8"))?;
            let mut signature = [0u8; 64];
            signature.copy_from_slice(take(64)?);
            list.push(EntrySignature { key_id, signature });
        }
        lists.push(list);
    }
    Ok(lists)
}

/// The hash tiles of a tree, built as entries arrive: call [`push`] per
/// leaf, then [`tiles`] for every tile of the tree so far.
///
/// [`push`]: HashTiles::push
/// [`tiles`]: HashTiles::tiles
#[derive(Default)]
pub struct HashTiles {
    frontier: Frontier,
    /// levels[l] holds every hash of tile level `l` (tree level 8l).
    levels: Vec<Vec<Hash>>,
}

impl HashTiles {
    pub fn push(&mut self, entry: &[u8]) {
        let levels = &mut self.levels;
        self.frontier.push(leaf_hash(entry), |level, _, hash| {
            if level % 8 == 0 {
                let l = (level / 8) as usize;
                if levels.len() <= l {
                    levels.resize(l + 1, Vec::new());
                }
                levels[l].push(*hash);
            }
        });
    }

    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// Every tile of the tree: (level, tile index, width, hashes).
    pub fn tiles(&self) -> Vec<(u8, u64, u64, Vec<u8>)> {
        let mut out = Vec::new();
        for (l, hashes) in self.levels.iter().enumerate() {
            for (n, chunk) in hashes.chunks(TILE_WIDTH as usize).enumerate() {
                out.push((l as u8, n as u64, chunk.len() as u64, chunk.concat()));
            }
        }
        out
    }
}

/// Reassembles envelopes from an entry bundle and its signature bundle.
pub fn envelopes(
    entries: &[u8],
    signatures: &[u8],
    path: &str,
) -> Result<Vec<Envelope>, TileError> {
    let e = decode_entries(entries, path)?;
    let s = decode_signatures(signatures, path)?;
    if e.len() != s.len() {
        return Err(malformed(
            "signature bundle",
            path,
            format!("{} signature lists for {} entries", s.len(), e.len()),
        ));
    }
    Ok(e.into_iter()
        .zip(s)
        .map(|(entry, signatures)| Envelope {
            entry: entry.to_vec(),
            signatures,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_indexes_are_spelled_as_the_spec_says() {
        assert_eq!(tile_index(1234067), "x001/x234/067");
        assert_eq!(tile_index(0), "000");
        assert_eq!(tile_index(999), "999");
        assert_eq!(tile_index(1000), "x001/000");
        assert_eq!(tile_path("tile/entries", 5, 256), "tile/entries/005");
        assert_eq!(tile_path("tile/0", 5, 112), "tile/0/005.p/112");
        for n in [0, 7, 999, 1000, 1234067, u64::from(u32::MAX)] {
            assert_eq!(parse_tile_index(&tile_index(n)), Some((n, 256)));
        }
        assert_eq!(parse_tile_index("005.p/112"), Some((5, 112)));
        for bad in [
            "5",
            "x000/005",
            "005.p/0",
            "005.p/256",
            "005.p/012",
            "x1/005",
            "../005",
        ] {
            assert_eq!(parse_tile_index(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_tree_of_70000_has_the_tiles_the_spec_lists() {
        let mut t = HashTiles::default();
        for i in 0..70_000u32 {
            t.push(&i.to_be_bytes());
        }
        let tiles = t.tiles();
        let count = |level: u8, width: u64| {
            tiles
                .iter()
                .filter(|(l, _, w, _)| *l == level && *w == width)
                .count()
        };
        assert_eq!(count(0, 256), 273);
        assert_eq!(count(0, 112), 1);
        assert_eq!(count(1, 256), 1);
        assert_eq!(count(1, 17), 1);
        assert_eq!(count(2, 1), 1);
        assert_eq!(tiles.len(), 277);
    }

    proptest::proptest! {
        /// What the fuzz target holds, on every run: no input panics, and
        /// what parses encodes back to the same bytes.
        #[test]
        fn outside_bytes_never_panic_and_parse_one_way(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            if let Ok(entries) = decode_entries(&data, "p") {
                proptest::prop_assert_eq!(encode_entries(0, entries.into_iter()).unwrap(), data.clone());
            }
            if let Ok(sigs) = decode_signatures(&data, "p") {
                proptest::prop_assert_eq!(encode_signatures(sigs.iter().map(Vec::as_slice)), data.clone());
            }
            if let Ok(s) = std::str::from_utf8(&data) {
                if let Some((n, w)) = parse_tile_index(s) {
                    proptest::prop_assert_eq!(tile_path("t", n, w), format!("t/{s}"));
                }
            }
        }

        #[test]
        fn entry_bundles_round_trip(entries in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), 0..40)) {
            let bytes = encode_entries(0, entries.iter().map(Vec::as_slice)).unwrap();
            let back = decode_entries(&bytes, "p").unwrap();
            proptest::prop_assert_eq!(back, entries.iter().map(Vec::as_slice).collect::<Vec<_>>());
        }
    }

    #[test]
    fn bundles_round_trip_and_refuse_garbage() {
        let entries: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; i as usize * 10]).collect();
        let bytes = encode_entries(0, entries.iter().map(Vec::as_slice)).unwrap();
        let back = decode_entries(&bytes, "t").unwrap();
        assert_eq!(back, entries.iter().map(Vec::as_slice).collect::<Vec<_>>());
        assert!(decode_entries(&bytes[..bytes.len() - 1], "t").is_err());
        let sigs = vec![
            vec![EntrySignature {
                key_id: "k:1".into(),
                signature: [7; 64],
            }],
            vec![],
            vec![],
        ];
        let s = encode_signatures(sigs.iter().map(Vec::as_slice));
        assert_eq!(decode_signatures(&s, "s").unwrap(), sigs);
        assert!(decode_signatures(&s[..5], "s").is_err());
        assert_eq!(envelopes(&bytes, &s, "x").unwrap().len(), 3);
        assert!(envelopes(&bytes, &s[..s.len() - 2], "x").is_err());
        let long = vec![0u8; 70_000];
        assert!(encode_entries(9, std::iter::once(long.as_slice())).is_err());
    }
}
