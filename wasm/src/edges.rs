//! The child index of the trie: one open-addressing table for every edge of every node.
//!
//! Why one global table instead of a child list per node: route tables have nodes with hundreds of
//! thousands of children (`apps.example.com` under which every app lives) next to millions of nodes
//! with none. A global table costs 8 bytes a slot for all of them and finds any child in about one
//! cache miss. A slot is `hash << 32 | (node + 1)`: 0 is empty, and the stored hash rejects almost
//! every wrong candidate without touching the node. Linear probing keeps a probe run in one or two
//! cache lines; deletion shifts the run back instead of leaving tombstones, so lookups never slow
//! down after churn.

const MIN_SLOTS: usize = 64;

pub struct EdgeTable {
    slots: Vec<u64>,
    len: usize,
}

impl EdgeTable {
    pub fn new() -> Self {
        EdgeTable { slots: vec![0; MIN_SLOTS], len: 0 }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * 8
    }

    pub fn clear(&mut self) {
        self.slots = vec![0; MIN_SLOTS];
        self.len = 0;
    }

    /// Grows so that `extra` more edges fit under the load limit without rehashing.
    pub fn reserve(&mut self, extra: usize) {
        let want = self.len + extra;
        if want * 4 > self.slots.len() * 3 {
            let mut size = self.slots.len();
            while want * 4 > size * 3 {
                size *= 2;
            }
            self.rehash(size);
        }
    }

    /// The node stored under `hash` for which `is_match` holds. At most one pass over the table:
    /// a reader in another thread may see the table mid-change (its answer is then thrown away,
    /// see ffi.rs), and must not spin on a table with no empty slot in sight.
    #[inline]
    pub fn find(&self, hash: u32, mut is_match: impl FnMut(u32) -> bool) -> Option<u32> {
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = hash as usize & mask;
        for _ in 0..=mask {
            let slot = self.slots[i];
            if slot == 0 {
                return None;
            }
            if (slot >> 32) as u32 == hash {
                let node = (slot as u32).wrapping_sub(1);
                if is_match(node) {
                    return Some(node);
                }
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// The first slot `find(hash, ..)` reads.
    #[inline]
    pub fn touch(&self, hash: u32) -> u64 {
        self.slots[hash as usize & (self.slots.len() - 1)]
    }

    /// Adds an edge the caller knows is absent.
    pub fn insert(&mut self, hash: u32, node: u32) {
        // Keep the load at or under 3/4: beyond it linear probing's miss runs grow quickly.
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            let size = self.slots.len() * 2;
            self.rehash(size);
        }
        Self::place(&mut self.slots, hash, node);
        self.len += 1;
    }

    /// Removes the edge to `node` stored under `hash`; false if absent.
    pub fn remove(&mut self, hash: u32, node: u32) -> bool {
        let mask = self.slots.len() - 1;
        let wanted = (hash as u64) << 32 | (node as u64 + 1);
        let mut i = hash as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                return false;
            }
            if slot == wanted {
                break;
            }
            i = (i + 1) & mask;
        }
        // Backward-shift deletion: move later members of the run into the hole when the hole lies
        // between their home bucket and where they sit.
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let slot = self.slots[j];
            if slot == 0 {
                break;
            }
            let home = (slot >> 32) as usize & mask;
            let distance_to_slot = j.wrapping_sub(home) & mask;
            let distance_to_hole = hole.wrapping_sub(home) & mask;
            if distance_to_hole <= distance_to_slot {
                self.slots[hole] = slot;
                hole = j;
            }
        }
        self.slots[hole] = 0;
        self.len -= 1;
        true
    }

    /// Renames every stored node through `rename` (the arena was compacted: a node's hash stays,
    /// its offset changes), then gives back slots the table no longer needs.
    pub fn rename(&mut self, rename: impl Fn(u32) -> u32) {
        for slot in self.slots.iter_mut().filter(|s| **s != 0) {
            *slot = (*slot & !0xffff_ffff) | (rename((*slot as u32).wrapping_sub(1)) as u64 + 1);
        }
        let mut size = MIN_SLOTS;
        while self.len * 4 > size * 3 {
            size *= 2;
        }
        if size < self.slots.len() {
            self.rehash(size);
        }
    }

    /// Mean distance of an entry from its home bucket (a probe-length check for the hash).
    pub fn mean_displacement(&self) -> f64 {
        let mask = self.slots.len() - 1;
        let (mut sum, mut count) = (0usize, 0usize);
        for (i, &slot) in self.slots.iter().enumerate() {
            if slot != 0 {
                sum += i.wrapping_sub((slot >> 32) as usize & mask) & mask;
                count += 1;
            }
        }
        sum as f64 / count.max(1) as f64
    }

    fn place(slots: &mut [u64], hash: u32, node: u32) {
        let mask = slots.len() - 1;
        let mut i = hash as usize & mask;
        while slots[i] != 0 {
            i = (i + 1) & mask;
        }
        slots[i] = (hash as u64) << 32 | (node as u64 + 1);
    }

    fn rehash(&mut self, size: usize) {
        let old = std::mem::replace(&mut self.slots, Vec::new());
        let mut slots = vec![0u64; size];
        for slot in old.into_iter().filter(|&s| s != 0) {
            Self::place(&mut slots, (slot >> 32) as u32, (slot as u32).wrapping_sub(1));
        }
        self.slots = slots;
    }
}

#[cfg(test)]
mod tests {
    use super::EdgeTable;

    #[test]
    fn insert_find_remove_with_colliding_hashes() {
        let mut t = EdgeTable::new();
        // Many nodes under few hashes: every operation walks long runs.
        for node in 0..1000u32 {
            t.insert(node % 7, node);
        }
        assert_eq!(t.len(), 1000);
        for node in 0..1000u32 {
            assert_eq!(t.find(node % 7, |n| n == node), Some(node));
        }
        for node in (0..1000u32).step_by(2) {
            assert!(t.remove(node % 7, node));
            assert!(!t.remove(node % 7, node));
        }
        for node in 0..1000u32 {
            let found = t.find(node % 7, |n| n == node);
            assert_eq!(found.is_some(), node % 2 == 1, "node {}", node);
        }
        assert_eq!(t.len(), 500);
    }

    #[test]
    fn wraps_around_the_end_of_the_table() {
        let mut t = EdgeTable::new();
        let last = 63u32; // the last bucket of the initial 64
        for node in 0..10 {
            t.insert(last, node);
        }
        assert!(t.remove(last, 3));
        for node in 0..10 {
            assert_eq!(t.find(last, |n| n == node).is_some(), node != 3);
        }
    }
}
