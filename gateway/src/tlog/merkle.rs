//! RFC 6962 / RFC 9162 Merkle tree hashing and proofs. Pure: no I/O.
//!
//! Proof generation works over any store of *perfect subtree* hashes:
//! `node(level, index)` is the root of leaves `[index << level, (index + 1) << level)`.
//! Every proof element is either such a node or the root of a right-edge
//! subtree assembled from at most `log2(n)` of them, so proofs never need
//! the leaves themselves.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Why a proof did not verify or could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is not inside a tree of size {size}")]
    IndexOutOfRange {
        /// The index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The proof has the wrong number of hashes for this index and size.
    #[error("proof has {found} hashes, expected {expected}")]
    WrongLength {
        /// Hashes supplied.
        found: usize,
        /// Hashes required.
        expected: usize,
    },
    /// The recomputed root differs from the expected one.
    #[error("recomputed root hash does not match")]
    RootMismatch,
    /// The sizes are not a valid (old, new) pair.
    #[error("invalid tree sizes: old {old}, new {new}")]
    InvalidSizes {
        /// Older size.
        old: u64,
        /// Newer size.
        new: u64,
    },
    /// A node needed for the proof is missing from the store.
    #[error("node at level {level}, index {index} is missing")]
    MissingNode {
        /// Tree level (0 = leaves).
        level: u32,
        /// Index within the level.
        index: u64,
    },
}

/// RFC 6962 leaf hash: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// RFC 6962 interior node hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Number of hashes in an inclusion proof for `index` in a tree of `size`.
pub fn inclusion_proof_length(index: u64, size: u64) -> usize {
    if index >= size {
        return 0;
    }
    let inner = inner_proof_size(index, size);
    let border = (index >> inner).count_ones() as usize;
    inner + border
}

fn inner_proof_size(index: u64, size: u64) -> usize {
    let x = index ^ (size - 1);
    (64 - x.leading_zeros()) as usize
}

/// Recomputes the root from an inclusion proof (RFC 9162 section 2.1.3.2).
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_length(index, size);
    if proof.len() != expected {
        return Err(ProofError::WrongLength {
            found: proof.len(),
            expected,
        });
    }
    let mut fnode = index;
    let mut snode = size - 1;
    let mut root = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength {
                found: proof.len(),
                expected,
            });
        }
        if fnode & 1 == 1 || fnode == snode {
            root = node_hash(p, &root);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            root = node_hash(&root, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength {
            found: proof.len(),
            expected,
        });
    }
    Ok(root)
}

/// Verifies an inclusion proof against `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(index, size, leaf, proof)?;
    if &computed == root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Verifies a consistency proof between two tree states (RFC 9162 section 2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::InvalidSizes {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                found: proof.len(),
                expected: 0,
            });
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if old_size == 0 {
        // Every tree is consistent with the empty tree.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength {
                found: proof.len(),
                expected: 0,
            })
        };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let mut fnode = old_size - 1;
    let mut snode = new_size - 1;
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength {
            found: 0,
            expected: 1,
        });
    };
    let mut fr = *first;
    let mut sr = *first;
    for c in rest {
        if snode == 0 {
            return Err(ProofError::WrongLength {
                found: proof.len(),
                expected: proof.len() - 1,
            });
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength {
            found: proof.len(),
            expected: proof.len() + 1,
        });
    }
    if &fr == old_root && &sr == new_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Largest power of two strictly less than `n` (n >= 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Root of leaves `[start, end)` assembled from perfect-subtree nodes.
pub fn subtree_root<F>(start: u64, end: u64, node: &mut F) -> Result<Hash, ProofError>
where
    F: FnMut(u32, u64) -> Option<Hash>,
{
    let n = end - start;
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let level = n.trailing_zeros();
        let index = start >> level;
        return node(level, index).ok_or(ProofError::MissingNode { level, index });
    }
    let k = split_point(n);
    let left = subtree_root(start, start + k, node)?;
    let right = subtree_root(start + k, end, node)?;
    Ok(node_hash(&left, &right))
}

/// Builds the inclusion proof for leaf `index` in a tree of `size`.
pub fn inclusion_proof<F>(index: u64, size: u64, node: &mut F) -> Result<Vec<Hash>, ProofError>
where
    F: FnMut(u32, u64) -> Option<Hash>,
{
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // At most one hash per level: ceil(log2(size)).
    let depth = (u64::BITS - (size - 1).leading_zeros()) as usize;
    let mut proof = Vec::with_capacity(depth);
    let (mut start, mut end) = (0u64, size);
    // Collect from the top down, then reverse (proofs run leaf to root).
    while end - start > 1 {
        let k = split_point(end - start);
        if index < start + k {
            proof.push(subtree_root(start + k, end, node)?);
            end = start + k;
        } else {
            proof.push(subtree_root(start, start + k, node)?);
            start += k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// Builds the consistency proof between tree sizes `old` and `new`.
pub fn consistency_proof<F>(old: u64, new: u64, node: &mut F) -> Result<Vec<Hash>, ProofError>
where
    F: FnMut(u32, u64) -> Option<Hash>,
{
    if old > new || old == 0 {
        return if old == 0 && new >= old {
            Ok(Vec::new())
        } else {
            Err(ProofError::InvalidSizes { old, new })
        };
    }
    let mut proof = Vec::new();
    let (mut m, mut start, mut end, mut complete) = (old, 0u64, new, true);
    let mut tail: Vec<Hash> = Vec::new();
    loop {
        let n = end - start;
        if m == n {
            if !complete {
                proof.push(subtree_root(start, end, node)?);
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            tail.push(subtree_root(start + k, end, node)?);
            end = start + k;
        } else {
            tail.push(subtree_root(start, start + k, node)?);
            m -= k;
            start += k;
            complete = false;
        }
    }
    tail.reverse();
    proof.extend(tail);
    Ok(proof)
}

/// An in-memory tree of leaf hashes, for tests and small computations.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        MemoryTree {
            levels: vec![Vec::new()],
        }
    }

    /// Appends a leaf hash, updating every completed perfect subtree.
    pub fn push(&mut self, leaf: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut level = 0;
        while self.levels[level].len().is_multiple_of(2) {
            let n = self.levels[level].len();
            let parent = node_hash(&self.levels[level][n - 2], &self.levels[level][n - 1]);
            if self.levels.len() == level + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[level + 1].push(parent);
            level += 1;
        }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Perfect-subtree node lookup.
    pub fn node(&self, level: u32, index: u64) -> Option<Hash> {
        self.levels
            .get(level as usize)?
            .get(usize::try_from(index).ok()?)
            .copied()
    }

    /// Root of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, ProofError> {
        subtree_root(0, size, &mut |l, i| self.node(l, i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference MTH straight from RFC 6962's definition.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    fn tree(n: u64) -> (MemoryTree, Vec<Hash>) {
        let mut t = MemoryTree::new();
        let mut leaves = Vec::new();
        for i in 0..n {
            let h = leaf_hash(format!("leaf {i}").as_bytes());
            t.push(h);
            leaves.push(h);
        }
        (t, leaves)
    }

    #[test]
    fn empty_tree_root_is_sha256_of_nothing() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn rfc6962_leaf_vectors() {
        // Known vectors from the CT reference implementation (empty leaf).
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        // Root of the 8-leaf tree from certificate-transparency-go's test data.
        let leaves: Vec<Vec<u8>> = vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            vec![0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            vec![
                0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d,
                0x6e, 0x6f,
            ],
        ];
        let hashes: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l)).collect();
        assert_eq!(
            hex::encode(reference_root(&hashes)),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        );
        let mut t = MemoryTree::new();
        for h in &hashes {
            t.push(*h);
        }
        assert_eq!(t.root(8).unwrap(), reference_root(&hashes));
        assert_eq!(
            hex::encode(t.root(3).unwrap()),
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"
        );
    }

    #[test]
    fn roots_match_reference_for_all_sizes() {
        let (t, leaves) = tree(130);
        for n in 0..=130u64 {
            assert_eq!(
                t.root(n).unwrap(),
                reference_root(&leaves[..n as usize]),
                "size {n}"
            );
        }
    }

    #[test]
    fn inclusion_proofs_verify_for_every_index_and_size() {
        let (t, leaves) = tree(140);
        for size in 1..=140u64 {
            let root = t.root(size).unwrap();
            for index in 0..size {
                let proof = inclusion_proof(index, size, &mut |l, i| t.node(l, i)).unwrap();
                assert_eq!(proof.len(), inclusion_proof_length(index, size));
                verify_inclusion(index, size, &leaves[index as usize], &proof, &root).unwrap();
            }
        }
    }

    #[test]
    fn tampered_inclusion_proofs_fail() {
        let (t, leaves) = tree(37);
        let root = t.root(37).unwrap();
        let proof = inclusion_proof(12, 37, &mut |l, i| t.node(l, i)).unwrap();
        for k in 0..proof.len() {
            let mut bad = proof.clone();
            bad[k][0] ^= 1;
            assert_eq!(
                verify_inclusion(12, 37, &leaves[12], &bad, &root),
                Err(ProofError::RootMismatch)
            );
        }
        assert!(verify_inclusion(12, 37, &leaves[13], &proof, &root).is_err());
        assert!(verify_inclusion(37, 37, &leaves[12], &proof, &root).is_err());
        assert!(verify_inclusion(12, 37, &leaves[12], &proof[1..], &root).is_err());
        let mut longer = proof.clone();
        longer.push([0; 32]);
        assert!(verify_inclusion(12, 37, &leaves[12], &longer, &root).is_err());
    }

    #[test]
    fn consistency_proofs_verify_between_all_sizes() {
        let (t, _) = tree(70);
        for new in 1..=70u64 {
            let new_root = t.root(new).unwrap();
            for old in 1..=new {
                let old_root = t.root(old).unwrap();
                let proof = consistency_proof(old, new, &mut |l, i| t.node(l, i)).unwrap();
                verify_consistency(old, new, &old_root, &new_root, &proof)
                    .unwrap_or_else(|e| panic!("{old}->{new}: {e}"));
                if old < new && !proof.is_empty() {
                    let mut bad = proof.clone();
                    bad[0][5] ^= 0x40;
                    assert!(verify_consistency(old, new, &old_root, &new_root, &bad).is_err());
                    assert!(verify_consistency(old, new, &new_root, &new_root, &proof).is_err());
                }
            }
        }
    }

    #[test]
    fn consistency_rejects_bad_sizes() {
        let (t, _) = tree(5);
        let r = t.root(5).unwrap();
        assert!(verify_consistency(6, 5, &r, &r, &[]).is_err());
        assert!(verify_consistency(5, 5, &r, &r, &[r]).is_err());
        assert!(verify_consistency(0, 5, &r, &r, &[]).is_ok());
    }
}
