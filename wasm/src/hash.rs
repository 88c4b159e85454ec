//! The hash of a trie node: a chain over the labels from the root, so a node's hash is a function
//! of its whole key (`com`, `example`, `app` for `app.example.com`), not of where its parent sits.
//!
//! Why a chain: the matcher can then hash a request's whole host once, right to left, and find the
//! host's node with one probe of the edge table (checked by walking up its parents, which are shared
//! and in cache) instead of one probe per label. Every suffix's state falls out of the same pass,
//! so the walk from the root needs no more hashing either. Node offsets can move (the arena is
//! compacted) without re-hashing.
//!
//! Why not std's SipHash: it is several times slower on the 3-20 byte labels that dominate route
//! keys, and the table stores the full 32-bit hash so a weak low bit costs only a compare. Labels
//! are read 8 bytes at a time (wasm32 has native i64 and unaligned loads). Each step is a bijection
//! of the parent's state for a given (kind, label), so two parents never give one child state for
//! the same label; `finish` is a splitmix64-style avalanche, so the low bits that pick the bucket
//! are well mixed.

const MUL: u64 = 0x9E37_79B9_7F4A_7C15;

/// The state of the root: the seed, mixed.
#[inline]
pub fn root(seed: u64) -> u64 {
    seed.wrapping_mul(MUL) ^ 0x2545_F491_4F6C_DD1D
}

/// The state of a child: its parent's state extended by one edge of `kind` labelled `label`.
#[inline]
pub fn chain(state: u64, kind: u8, label: &[u8]) -> u64 {
    let mut h = (state ^ (kind as u64 + 1)).wrapping_mul(MUL);
    let mut chunks = label.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(MUL).rotate_left(29);
    }
    let mut tail = 0u64;
    for (i, &b) in chunks.remainder().iter().enumerate() {
        tail |= (b as u64) << (8 * i);
    }
    // The length goes in too, so "a" and "a\0" differ.
    h = (h ^ tail ^ ((label.len() as u64) << 56)).wrapping_mul(MUL);
    // Bring the high bits down: the next step's multiply only carries bits upwards.
    h ^ (h >> 32)
}

/// The 32-bit hash a node is filed under in the edge table.
#[inline]
pub fn finish(state: u64) -> u32 {
    let mut h = state;
    h ^= h >> 31;
    h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h ^= h >> 29;
    h as u32
}

#[cfg(test)]
mod tests {
    use super::{chain, finish, root};

    #[test]
    fn parent_kind_and_length_all_matter() {
        let r = root(0);
        let com = chain(r, 0, b"com");
        let base = finish(chain(com, 0, b"app"));
        assert_ne!(base, finish(chain(chain(r, 0, b"org"), 0, b"app")));
        assert_ne!(base, finish(chain(com, 1, b"app")));
        assert_ne!(finish(chain(r, 0, b"a")), finish(chain(r, 0, b"a\0")));
        assert_ne!(finish(chain(r, 0, b"app")), finish(chain(root(1), 0, b"app")), "the seed matters");
        // Labels do not run together: a.bc is not ab.c.
        assert_ne!(finish(chain(chain(r, 0, b"a"), 0, b"bc")), finish(chain(chain(r, 0, b"ab"), 0, b"c")));
        assert_eq!(base, finish(chain(chain(root(0), 0, b"com"), 0, b"app")));
    }

    #[test]
    fn low_bits_spread_over_sequential_names() {
        // 4096 names like app0..app4095 into 4096 buckets: a good hash fills most of them.
        let parent = chain(root(0), 0, b"com");
        let mut used = vec![false; 4096];
        for i in 0..4096 {
            let name = format!("app{}", i);
            used[(finish(chain(parent, 0, name.as_bytes())) & 4095) as usize] = true;
        }
        let filled = used.iter().filter(|&&u| u).count();
        assert!(filled > 2400, "only {} buckets used", filled);
    }

    #[test]
    fn low_bits_spread_over_parents_with_one_child_name() {
        // The same label under 4096 parents (`www` under every customer domain).
        let com = chain(root(0), 0, b"com");
        let mut used = vec![false; 4096];
        for i in 0..4096 {
            let domain = chain(com, 0, format!("customer{}", i).as_bytes());
            used[(finish(chain(domain, 0, b"www")) & 4095) as usize] = true;
        }
        let filled = used.iter().filter(|&&u| u).count();
        assert!(filled > 2400, "only {} buckets used", filled);
    }
}
