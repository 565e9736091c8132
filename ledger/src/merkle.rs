//! RFC 6962 / RFC 9162 Merkle tree hashing, proof generation and proof
//! verification.
//!
//! Proof generation reads complete-subtree hashes through [`NodeSource`], so
//! a store that keeps every complete subtree hash answers a proof with
//! O(log n) reads and never rehashes the log.

use sha2::{Digest, Sha256};
use thiserror::Error;

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// RFC 6962 leaf hash: SHA-256(0x00 ‖ entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// RFC 6962 interior node hash: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("old size {old} is larger than new size {new}")]
    SizesOutOfOrder { old: u64, new: u64 },
    #[error("tree size {size} is larger than the log ({log_size})")]
    SizeBeyondLog { size: u64, log_size: u64 },
    #[error("stored hash missing at level {level} index {index}")]
    MissingNode { level: u8, index: u64 },
    #[error("node source failed: {0}")]
    Source(String),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("old size {old} is larger than new size {new}")]
    SizesOutOfOrder { old: u64, new: u64 },
    #[error("a consistency proof from the empty tree proves nothing")]
    EmptyOldTree,
    #[error("proof has the wrong length")]
    WrongLength,
    #[error("computed root does not match")]
    RootMismatch,
}

/// Where proof generation reads complete-subtree hashes from: the hash of the
/// aligned subtree covering leaves `[index << level, (index + 1) << level)`.
pub trait NodeSource {
    fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError>;
}

/// Largest power of two strictly below `n` (n >= 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[lo:hi]) from stored complete subtrees: O(log n) reads, because an
/// unaligned range splits into at most one aligned subtree per level.
pub fn subtree_root(src: &dyn NodeSource, lo: u64, hi: u64) -> Result<Hash, ProofError> {
    let n = hi - lo;
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        let level = n.trailing_zeros() as u8;
        return src.node(level, lo >> level);
    }
    let k = split_point(n);
    let left = subtree_root(src, lo, lo + k)?;
    let right = subtree_root(src, lo + k, hi)?;
    Ok(node_hash(&left, &right))
}

/// RFC 9162 §2.1.3.1 inclusion proof for leaf `index` in the tree of `size`.
pub fn inclusion_proof(
    src: &dyn NodeSource,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::with_capacity(64);
    let (mut lo, mut hi) = (0u64, size);
    // Walk top-down, collecting siblings; reversed at the end because the
    // proof lists them leaf-first.
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            proof.push(subtree_root(src, lo + k, hi)?);
            hi = lo + k;
        } else {
            proof.push(subtree_root(src, lo, lo + k)?);
            lo += k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// RFC 9162 §2.1.4.1 consistency proof between tree sizes `old` and `new`.
pub fn consistency_proof(
    src: &dyn NodeSource,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, ProofError> {
    if old > new {
        return Err(ProofError::SizesOutOfOrder { old, new });
    }
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    let mut proof = Vec::with_capacity(64);
    let (mut lo, mut hi, mut m) = (0u64, new, old);
    let mut complete = true;
    loop {
        let n = hi - lo;
        if m == n {
            if !complete {
                proof.push(subtree_root(src, lo, hi)?);
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            proof.push(subtree_root(src, lo + k, hi)?);
            hi = lo + k;
        } else {
            proof.push(subtree_root(src, lo, lo + k)?);
            lo += k;
            m -= k;
            complete = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// RFC 9162 §2.1.3.2: does `proof` show `leaf` at `index` in the tree of
/// `size` with `root`?
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(VerifyError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(VerifyError::WrongLength);
    }
    if &r != root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: does `proof` show that the tree of `old` leaves with
/// `old_root` is a prefix of the tree of `new` leaves with `new_root`?
pub fn verify_consistency(
    old: u64,
    new: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), VerifyError> {
    if old > new {
        return Err(VerifyError::SizesOutOfOrder { old, new });
    }
    if old == 0 {
        // RFC 9162 requires 0 < first: nothing can be proved about the empty
        // tree, and accepting it would let a caller skip the real check.
        return Err(VerifyError::EmptyOldTree);
    }
    if old == new {
        if !proof.is_empty() {
            return Err(VerifyError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(VerifyError::RootMismatch)
        };
    }
    let (first, rest): (&Hash, &[Hash]) = if old.is_power_of_two() {
        (old_root, proof)
    } else {
        match proof.split_first() {
            Some((f, r)) => (f, r),
            None => return Err(VerifyError::WrongLength),
        }
    };
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return Err(VerifyError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(VerifyError::WrongLength);
    }
    if &fr != old_root || &sr != new_root {
        return Err(VerifyError::RootMismatch);
    }
    Ok(())
}

/// The right edge of a growing tree: for each level, the last complete
/// subtree that still waits for its right sibling. Appending a leaf yields
/// exactly the new complete-subtree hashes to store, with no reads.
#[derive(Clone, Debug, Default)]
pub struct Frontier {
    size: u64,
    /// `pending[level]` is meaningful iff bit `level` of `size` is set.
    pending: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from stored nodes.
    pub fn load(src: &dyn NodeSource, size: u64) -> Result<Self, ProofError> {
        let mut pending = vec![[0u8; 32]; 64 - size.leading_zeros() as usize];
        for (level, slot) in pending.iter_mut().enumerate() {
            if (size >> level) & 1 == 1 {
                *slot = src.node(level as u8, (size >> level) - 1)?;
            }
        }
        Ok(Self { size, pending })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds one leaf; calls `emit(level, index, hash)` for every complete
    /// subtree the leaf creates, the leaf itself first.
    pub fn push(&mut self, leaf: Hash, mut emit: impl FnMut(u8, u64, &Hash)) {
        let mut h = leaf;
        let mut level = 0usize;
        let mut idx = self.size;
        emit(0, idx, &h);
        while idx & 1 == 1 {
            h = node_hash(&self.pending[level], &h);
            level += 1;
            idx >>= 1;
            emit(level as u8, idx, &h);
        }
        if self.pending.len() <= level {
            self.pending.resize(level + 1, [0u8; 32]);
        }
        self.pending[level] = h;
        self.size += 1;
    }

    /// What the frontier keeps, to store it: the root of each complete
    /// subtree on the tree's right edge, lowest level first (one per set
    /// bit of the size).
    pub fn right_edge(&self) -> Vec<Hash> {
        self.pending
            .iter()
            .enumerate()
            .filter(|(level, _)| (self.size >> level) & 1 == 1)
            .map(|(_, h)| *h)
            .collect()
    }

    /// The frontier of a tree of `size` leaves from its [`right_edge`];
    /// `None` when the count of hashes does not fit the size.
    ///
    /// [`right_edge`]: Frontier::right_edge
    pub fn from_right_edge(size: u64, edge: &[Hash]) -> Option<Self> {
        if edge.len() != size.count_ones() as usize {
            return None;
        }
        let mut pending = vec![[0u8; 32]; 64 - size.leading_zeros() as usize];
        let mut hashes = edge.iter();
        for (level, slot) in pending.iter_mut().enumerate() {
            if (size >> level) & 1 == 1 {
                *slot = *hashes.next()?;
            }
        }
        Some(Self { size, pending })
    }

    /// The root of the tree as it stands.
    pub fn root(&self) -> Hash {
        let mut acc: Option<Hash> = None;
        for (level, h) in self.pending.iter().enumerate() {
            if (self.size >> level) & 1 == 1 {
                acc = Some(match acc {
                    None => *h,
                    Some(right) => node_hash(h, &right),
                });
            }
        }
        acc.unwrap_or_else(empty_root)
    }
}

/// MTH over in-memory leaf hashes, straight from the RFC's definition; the
/// reference the tests compare the incremental code against.
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

/// A [`NodeSource`] over leaf hashes held in memory (tests, small tools).
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
    frontier: Frontier,
}

impl MemoryTree {
    pub fn new() -> Self {
        Self {
            levels: vec![Vec::new()],
            frontier: Frontier::new(),
        }
    }

    pub fn push(&mut self, leaf: Hash) {
        let levels = &mut self.levels;
        self.frontier.push(leaf, |level, _idx, h| {
            let level = level as usize;
            if levels.len() <= level {
                levels.resize(level + 1, Vec::new());
            }
            levels[level].push(*h);
        });
    }

    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    pub fn root(&self) -> Hash {
        self.frontier.root()
    }
}

impl Default for MemoryTree {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeSource for MemoryTree {
    fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        self.levels
            .get(level as usize)
            .and_then(|l| l.get(index as usize))
            .copied()
            .ok_or(ProofError::MissingNode { level, index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect()
    }

    fn tree(n: usize) -> (MemoryTree, Vec<Hash>) {
        let ls = leaves(n);
        let mut t = MemoryTree::new();
        for l in &ls {
            t.push(*l);
        }
        (t, ls)
    }

    #[test]
    fn known_roots() {
        // RFC 6962 test tree roots as used by transparency-dev (empty tree).
        assert_eq!(
            hex(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn frontier_root_matches_reference() {
        for n in 0..70 {
            let (t, ls) = tree(n);
            let mut f = Frontier::new();
            for l in &ls {
                f.push(*l, |_, _, _| {});
            }
            assert_eq!(f.root(), root_of(&ls), "size {n}");
            assert_eq!(t.root(), root_of(&ls), "size {n}");
            assert_eq!(
                Frontier::load(&t, n as u64).map(|f| f.root()),
                Ok(root_of(&ls))
            );
            // Stored and restored, it goes on as if never stopped.
            let mut back = Frontier::from_right_edge(n as u64, &f.right_edge()).unwrap();
            assert_eq!(back.root(), f.root());
            let extra = leaf_hash(b"one more");
            back.push(extra, |_, _, _| {});
            let mut all = ls.clone();
            all.push(extra);
            assert_eq!(back.root(), root_of(&all), "size {n} + 1");
            if n > 0 {
                assert!(Frontier::from_right_edge(n as u64, &[]).is_none());
            }
        }
    }

    #[test]
    fn every_proof_verifies_small_trees() {
        for n in 1..40u64 {
            let (t, ls) = tree(n as usize);
            let root = root_of(&ls);
            for i in 0..n {
                let p = inclusion_proof(&t, i, n).unwrap();
                verify_inclusion(&ls[i as usize], i, n, &p, &root).unwrap();
            }
            for m in 1..=n {
                let p = consistency_proof(&t, m, n).unwrap();
                let old_root = root_of(&ls[..m as usize]);
                verify_consistency(m, n, &p, &old_root, &root).unwrap();
            }
        }
    }

    proptest! {
        #[test]
        fn proofs_verify_and_wrong_inputs_fail(n in 1u64..600, i_seed in any::<u64>(), m_seed in any::<u64>()) {
            let (t, ls) = tree(n as usize);
            let root = root_of(&ls);
            let i = i_seed % n;
            let p = inclusion_proof(&t, i, n).unwrap();
            prop_assert!(verify_inclusion(&ls[i as usize], i, n, &p, &root).is_ok());
            // Wrong leaf, wrong size, wrong root all fail.
            let wrong_leaf = leaf_hash(b"not in the log");
            prop_assert!(verify_inclusion(&wrong_leaf, i, n, &p, &root).is_err());
            // A wrong size comes with that size's root: extend the log by one.
            let mut longer = ls.clone();
            longer.push(leaf_hash(b"one more"));
            prop_assert!(verify_inclusion(&ls[i as usize], i, n + 1, &p, &root_of(&longer)).is_err());
            if i < n - 1 {
                prop_assert!(verify_inclusion(&ls[i as usize], i, n - 1, &p, &root_of(&ls[..n as usize - 1])).is_err());
            }
            let mut bad_root = root;
            bad_root[0] ^= 1;
            prop_assert!(verify_inclusion(&ls[i as usize], i, n, &p, &bad_root).is_err());
            if n > 1 {
                let j = (i + 1) % n;
                prop_assert!(verify_inclusion(&ls[i as usize], j, n, &p, &root).is_err());
            }

            let m = 1 + m_seed % n;
            let c = consistency_proof(&t, m, n).unwrap();
            let old_root = root_of(&ls[..m as usize]);
            prop_assert!(verify_consistency(m, n, &c, &old_root, &root).is_ok());
            if m < n {
                prop_assert!(verify_consistency(m, n, &c, &old_root, &bad_root).is_err());
                let mut bad_old = old_root;
                bad_old[31] ^= 0x80;
                prop_assert!(verify_consistency(m, n, &c, &bad_old, &root).is_err());
                let mut longer = ls.clone();
                longer.push(leaf_hash(b"one more"));
                prop_assert!(verify_consistency(m, n + 1, &c, &old_root, &root_of(&longer)).is_err());
            }
        }
    }
}
