//! A trie of byte-string labels with an i32 value per node: the data structure under the matcher,
//! free of any routing rule. Edges have a `kind` (the matcher uses one for host labels and one for
//! path segments) so a node can have two independent sets of children.
//!
//! Layout, chosen for cache misses at a million routes (where each miss costs 100-250 ns):
//! - a node is one record in a single `Vec<u32>` arena: a 20-byte header (parent, value, one
//!   children word per kind, label length/kind/flags) followed by its label bytes, so checking a
//!   candidate child touches one cache line instead of a node line and a label line;
//! - a children word is a count, except when the node has exactly one child of that kind: then it
//!   names that child (a META bit says which), and `child` reads it straight from the parent it
//!   already holds in cache instead of probing the edge table (a likely cache miss at 1M routes).
//!   Single children are everywhere in route tables: `*.t-1.apps.example.com` alone under its
//!   parent, `app.com/api/v1` segment chains;
//! - nodes are named by their word offset in the arena; removed records become garbage, and the
//!   arena is compacted (records slid down, edge slots renamed) once garbage outweighs live records;
//! - children are found through the global `EdgeTable`, not through per-node child lists (see
//!   edges.rs for why), filed under the node's chain hash: a hash of its whole key from the root
//!   (hash.rs). Callers that walk down carry the chain state (`root_state`, then `hash::chain` per
//!   edge), so a child costs one hash step; and a caller that knows a whole key can `find` its node
//!   in one probe, then check it by walking up with `parent`/`is_label`.

use crate::edges::EdgeTable;
use crate::hash::{chain, finish, root};

pub const ROOT: u32 = 0;
pub const NO_VALUE: i32 = -1;

const PARENT: usize = 0;
const VALUE: usize = 1;
const CHILDREN: usize = 2; // two words, one per kind: a count, or the only child (see ONLY_CHILD)
const META: usize = 4; // label length (16 bits) | kind (4) | ONLY_CHILD bits (4) | user flags (8)
const HEADER_WORDS: usize = 5;
const KIND_SHIFT: u32 = 16;
const KIND_MASK: u32 = 0xf;
const FREE: u32 = 0xf;
/// META bit `ONLY_CHILD << kind`: the children word of `kind` names the node's only such child.
const ONLY_CHILD: u32 = 1 << 20;
/// The arena is only compacted beyond this much garbage, so small tables never pay for it.
const MIN_GARBAGE_WORDS: usize = 16 * 1024;

pub struct Trie {
    arena: Vec<u32>,
    edges: EdgeTable,
    live_nodes: usize,
    garbage_words: usize,
    root_state: u64,
    // `remove`'s scratch (the nodes above the removed one and their hashes), kept to not allocate.
    trail: Vec<u32>,
    trail_hashes: Vec<u32>,
}

#[inline]
fn words_for(label_len: usize) -> usize {
    HEADER_WORDS + (label_len + 3) / 4
}

/// Byte-string equality without a call to `memcmp` (a byte loop in wasm32's compiler-builtins):
/// labels are short, so 8 bytes at a time and a byte tail.
#[inline]
pub fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        let mut wx = [0u8; 8];
        let mut wy = [0u8; 8];
        wx.copy_from_slice(x);
        wy.copy_from_slice(y);
        if u64::from_ne_bytes(wx) != u64::from_ne_bytes(wy) {
            return false;
        }
    }
    ca.remainder().iter().zip(cb.remainder()).all(|(x, y)| x == y)
}

impl Trie {
    pub fn new(seed: u64) -> Self {
        let mut trie = Trie {
            arena: Vec::new(),
            edges: EdgeTable::new(),
            live_nodes: 0,
            garbage_words: 0,
            root_state: root(seed),
            trail: Vec::new(),
            trail_hashes: Vec::new(),
        };
        trie.clear();
        trie
    }

    pub fn clear(&mut self) {
        self.arena = vec![u32::MAX, NO_VALUE as u32, 0, 0, 0];
        self.edges.clear();
        self.live_nodes = 1;
        self.garbage_words = 0;
    }

    /// Pre-sizes for `nodes` more nodes holding `label_bytes` more label bytes (bulk loads).
    pub fn reserve(&mut self, nodes: usize, label_bytes: usize) {
        self.arena.reserve(nodes * (HEADER_WORDS + 1) + label_bytes / 4);
        self.edges.reserve(nodes);
    }

    /// The chain state of the root, from which callers hash their way down (`hash::chain`).
    #[inline]
    pub fn root_state(&self) -> u64 {
        self.root_state
    }

    #[inline]
    pub fn value(&self, node: u32) -> i32 {
        self.arena[node as usize + VALUE] as i32
    }

    #[inline]
    pub fn set_value(&mut self, node: u32, value: i32) {
        self.arena[node as usize + VALUE] = value as u32;
    }

    #[inline]
    pub fn flags(&self, node: u32) -> u8 {
        (self.arena[node as usize + META] >> 24) as u8
    }

    pub fn set_flags(&mut self, node: u32, flags: u8) {
        let meta = &mut self.arena[node as usize + META];
        *meta = (*meta & 0x00ff_ffff) | (flags as u32) << 24;
    }

    /// The node's parent (the root's is u32::MAX).
    #[inline]
    pub fn parent(&self, node: u32) -> u32 {
        self.arena[node as usize + PARENT]
    }

    /// How many `kind` children `node` has.
    #[inline]
    pub fn children(&self, node: u32, kind: u8) -> u32 {
        let at = node as usize;
        if self.arena[at + META] & ONLY_CHILD << kind != 0 {
            1
        } else {
            self.arena[at + CHILDREN + kind as usize]
        }
    }

    /// `node`'s only `kind` child, if it has exactly one and knows which (it may not after a removal
    /// left one of two: then it is found by a probe, as children of larger families are).
    #[inline]
    fn only_child(&self, node: u32, kind: u8) -> Option<u32> {
        let at = node as usize;
        if self.arena[at + META] & ONLY_CHILD << kind != 0 {
            Some(self.arena[at + CHILDREN + kind as usize])
        } else {
            None
        }
    }

    fn add_child(&mut self, parent: u32, kind: u8, child: u32) {
        let at = parent as usize;
        let word = at + CHILDREN + kind as usize;
        let only = ONLY_CHILD << kind;
        if self.arena[at + META] & only != 0 {
            self.arena[at + META] &= !only;
            self.arena[word] = 2;
        } else if self.arena[word] == 0 {
            self.arena[at + META] |= only;
            self.arena[word] = child;
        } else {
            self.arena[word] += 1;
        }
    }

    fn remove_child(&mut self, parent: u32, kind: u8) {
        let at = parent as usize;
        let word = at + CHILDREN + kind as usize;
        let only = ONLY_CHILD << kind;
        if self.arena[at + META] & only != 0 {
            self.arena[at + META] &= !only;
            self.arena[word] = 0;
        } else {
            self.arena[word] -= 1;
        }
    }

    #[inline]
    fn kind(&self, node: u32) -> u32 {
        (self.arena[node as usize + META] >> KIND_SHIFT) & KIND_MASK
    }

    #[inline]
    pub fn label(&self, node: u32) -> &[u8] {
        let start = node as usize;
        let len = (self.arena[start + META] & 0xffff) as usize;
        let words = &self.arena[start + HEADER_WORDS..start + words_for(len)];
        // SAFETY: the words after the header hold the label's bytes, in memory order, padded.
        unsafe { std::slice::from_raw_parts(words.as_ptr() as *const u8, len) }
    }

    /// Whether `node` is reached by a `kind` edge labelled `label` (from whichever parent).
    #[inline]
    pub fn is_label(&self, node: u32, kind: u8, label: &[u8]) -> bool {
        let meta = label.len() as u32 | (kind as u32) << KIND_SHIFT;
        self.arena[node as usize + META] & (0xffff | KIND_MASK << KIND_SHIFT) == meta && bytes_eq(self.label(node), label)
    }

    /// Live nodes, the root included.
    pub fn node_count(&self) -> usize {
        self.live_nodes
    }

    /// Bytes held by the trie's vectors (capacity, not length: what the allocator gave us).
    pub fn memory_bytes(&self) -> usize {
        self.arena.capacity() * 4 + self.edges.memory_bytes() + self.trail.capacity() * 4 + self.trail_hashes.capacity() * 4
    }

    pub fn mean_probe_displacement(&self) -> f64 {
        self.edges.mean_displacement()
    }

    /// The child of `parent` reached by a `kind` edge labelled `label`, whose chain state is `state`
    /// (`hash::chain(parent's state, kind, label)`, computed by the caller on its way down).
    #[inline]
    pub fn child(&self, parent: u32, kind: u8, label: &[u8], state: u64) -> Option<u32> {
        if let Some(only) = self.only_child(parent, kind) {
            return if self.is_child(only, parent, kind, label) { Some(only) } else { None };
        }
        if self.arena[parent as usize + CHILDREN + kind as usize] == 0 {
            return None;
        }
        self.edges.find(finish(state), |candidate| self.is_child(candidate, parent, kind, label))
    }

    /// The node whose chain state is `state` and for which `is_match` holds: one probe for a whole
    /// key. `is_match` must check the key (a 32-bit hash says little), e.g. by walking up `parent`.
    #[inline]
    pub fn find(&self, state: u64, is_match: impl FnMut(u32) -> bool) -> Option<u32> {
        self.edges.find(finish(state), is_match)
    }

    /// Loads the first slot `find(state, ..)` will read and returns it: a caller that will probe
    /// for one key after another can start the second load before the first has arrived.
    #[inline]
    pub fn touch(&self, state: u64) -> u64 {
        self.edges.touch(finish(state))
    }

    /// The child of `parent` reached by a `kind` edge labelled `label` (hashing the parent's key
    /// again: walkers should carry the state and call `child`).
    pub fn at(&self, parent: u32, kind: u8, label: &[u8]) -> Option<u32> {
        self.child(parent, kind, label, chain(self.state_of(parent), kind, label))
    }

    #[inline]
    fn is_child(&self, candidate: u32, parent: u32, kind: u8, label: &[u8]) -> bool {
        self.arena[candidate as usize + PARENT] == parent && self.is_label(candidate, kind, label)
    }

    /// The chain state of `node`: its labels hashed from the root down.
    fn state_of(&self, node: u32) -> u64 {
        let mut trail = Vec::new();
        let mut n = node;
        while n != ROOT {
            trail.push(n);
            n = self.parent(n);
        }
        trail.iter().rev().fold(self.root_state, |state, &n| chain(state, self.kind(n) as u8, self.label(n)))
    }

    /// The child of `parent` reached by `kind`/`label`, created (without a value) if missing.
    pub fn insert(&mut self, parent: u32, kind: u8, label: &[u8]) -> u32 {
        let state = chain(self.state_of(parent), kind, label);
        self.insert_child(parent, kind, label, state)
    }

    /// `insert` for a caller that carries the child's chain state (see `child`). Labels longer than
    /// u16::MAX bytes are the caller's to refuse.
    pub fn insert_child(&mut self, parent: u32, kind: u8, label: &[u8], state: u64) -> u32 {
        if let Some(existing) = self.child(parent, kind, label, state) {
            return existing;
        }
        let node = self.arena.len() as u32;
        self.arena.extend_from_slice(&[parent, NO_VALUE as u32, 0, 0, label.len() as u32 | (kind as u32) << KIND_SHIFT]);
        for chunk in label.chunks(4) {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            self.arena.push(u32::from_ne_bytes(word));
        }
        self.add_child(parent, kind, node);
        self.edges.insert(finish(state), node);
        self.live_nodes += 1;
        node
    }

    /// Removes `node` and then each ancestor left with no value and no children (never the root).
    /// Calls `on_unlink(trie, parent, kind, node)` for each removed node before it goes.
    pub fn remove(&mut self, node: u32, mut on_unlink: impl FnMut(&mut Trie, u32, u8, u32)) {
        // Each edge slot is found by its node's hash, a hash of the whole key: hash the way down
        // once for all the nodes that may go.
        let mut trail = std::mem::take(&mut self.trail);
        let mut hashes = std::mem::take(&mut self.trail_hashes);
        trail.clear();
        hashes.clear();
        let mut n = node;
        while n != ROOT {
            trail.push(n);
            n = self.parent(n);
        }
        hashes.resize(trail.len(), 0);
        let mut state = self.root_state;
        for i in (0..trail.len()).rev() {
            state = chain(state, self.kind(trail[i]) as u8, self.label(trail[i]));
            hashes[i] = finish(state);
        }
        for (&node, &hash) in trail.iter().zip(hashes.iter()) {
            let at = node as usize;
            // A children word is non-zero while there are children (a count, or a child's offset).
            if self.value(node) != NO_VALUE || self.arena[at + CHILDREN] != 0 || self.arena[at + CHILDREN + 1] != 0 {
                break;
            }
            let parent = self.arena[at + PARENT];
            let kind = self.kind(node) as u8;
            on_unlink(self, parent, kind, node);
            let removed = self.edges.remove(hash, node);
            debug_assert!(removed);
            self.remove_child(parent, kind);
            self.garbage_words += words_for(self.label(node).len());
            self.arena[at + META] = FREE << KIND_SHIFT | (self.arena[at + META] & 0xffff);
            self.live_nodes -= 1;
        }
        self.trail = trail;
        self.trail_hashes = hashes;
        if self.garbage_words > MIN_GARBAGE_WORDS && self.garbage_words * 2 > self.arena.len() {
            self.compact();
        }
    }

    /// Slides live records down over the garbage, then renames parents, only children and the
    /// nodes in edge slots (a node's name is its offset; its hash does not depend on it).
    fn compact(&mut self) {
        let mut old_offsets: Vec<u32> = Vec::with_capacity(self.live_nodes);
        let mut write = 0usize;
        let mut read = 0usize;
        while read < self.arena.len() {
            let words = words_for((self.arena[read + META] & 0xffff) as usize);
            if (self.arena[read + META] >> KIND_SHIFT) & KIND_MASK != FREE {
                old_offsets.push(read as u32);
                self.arena.copy_within(read..read + words, write);
                write += words;
            }
            read += words;
        }
        self.arena.truncate(write);
        self.arena.shrink_to_fit();
        // Live records kept their order, so a node's new offset is found by binary search.
        let mut new_offset = 0usize;
        let mut new_offsets = Vec::with_capacity(old_offsets.len());
        for _ in 0..old_offsets.len() {
            new_offsets.push(new_offset as u32);
            new_offset += words_for((self.arena[new_offset + META] & 0xffff) as usize);
        }
        let relocate = |old: u32| new_offsets[old_offsets.binary_search(&old).expect("live nodes name live nodes")];
        for &node in new_offsets.iter() {
            let at = node as usize;
            for kind in 0..2 {
                if self.arena[at + META] & ONLY_CHILD << kind != 0 {
                    self.arena[at + CHILDREN + kind] = relocate(self.arena[at + CHILDREN + kind]);
                }
            }
            if node != ROOT {
                self.arena[at + PARENT] = relocate(self.arena[at + PARENT]);
            }
        }
        self.edges.rename(relocate);
        self.garbage_words = 0;
    }

    #[cfg(test)]
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_at_remove_and_prune() {
        let mut t = Trie::new(1);
        let com = t.insert(ROOT, 0, b"com");
        let example = t.insert(com, 0, b"example");
        let api = t.insert(example, 1, b"api");
        assert_eq!(t.insert(ROOT, 0, b"com"), com);
        assert_eq!(t.at(ROOT, 0, b"com"), Some(com));
        assert_eq!(t.at(com, 0, b"example"), Some(example));
        assert_eq!(t.label(example), b"example");
        // Same label, other kind: a different edge.
        assert_eq!(t.at(example, 0, b"api"), None);
        assert_eq!(t.at(example, 1, b"api"), Some(api));
        t.set_value(api, 7);
        t.remove(example, |_, _, _, _| {});
        assert_eq!(t.at(com, 0, b"example"), Some(example), "a node with children stays");
        t.set_value(api, NO_VALUE);
        let mut unlinked = 0;
        t.remove(api, |_, _, _, _| unlinked += 1);
        assert_eq!(unlinked, 3);
        assert_eq!(t.at(ROOT, 0, b"com"), None);
        assert_eq!(t.node_count(), 1);
        assert_eq!(t.edge_count(), 0);
        assert_eq!(t.children(ROOT, 0), 0);
    }

    #[test]
    fn only_children_are_read_without_probing_and_survive_removal_and_compaction() {
        let mut t = Trie::new(3);
        let a = t.insert(ROOT, 0, b"a");
        let x = t.insert(a, 1, b"x");
        assert_eq!(t.children(a, 1), 1);
        assert_eq!(t.only_child(a, 1), Some(x));
        assert_eq!(t.at(a, 1, b"x"), Some(x));
        assert_eq!(t.at(a, 1, b"y"), None);
        assert_eq!(t.at(a, 0, b"x"), None, "the other kind has no child");
        assert_eq!(t.insert(a, 1, b"x"), x);
        let y = t.insert(a, 1, b"y");
        assert_eq!((t.children(a, 1), t.only_child(a, 1)), (2, None));
        assert_eq!(t.at(a, 1, b"x"), Some(x));
        t.set_value(x, 1);
        t.remove(y, |_, _, _, _| {});
        // One of two left: counted, found by a probe.
        assert_eq!((t.children(a, 1), t.only_child(a, 1)), (1, None));
        assert_eq!(t.at(a, 1, b"x"), Some(x));
        assert_eq!(t.at(a, 1, b"y"), None);
        // Garbage before `b`, whose only child must be renamed when the arena is compacted.
        let junk = t.insert(ROOT, 0, b"junk");
        for i in 0..6000 {
            t.insert(junk, 1, format!("segment-number-{}", i).as_bytes());
        }
        let b = t.insert(ROOT, 0, b"b");
        let c = t.insert(b, 0, b"c");
        t.set_value(c, 7);
        assert_eq!(t.only_child(b, 0), Some(c));
        for i in 0..6000 {
            let n = t.at(t.at(ROOT, 0, b"junk").unwrap(), 1, format!("segment-number-{}", i).as_bytes()).unwrap();
            t.remove(n, |_, _, _, _| {});
        }
        assert!(t.arena.len() < 30_000, "compacted: {}", t.arena.len());
        let b = t.at(ROOT, 0, b"b").unwrap();
        let c = t.at(b, 0, b"c").expect("only child renamed");
        assert_eq!((t.label(c), t.value(c)), (&b"c"[..], 7));
        assert_eq!(t.only_child(b, 0), Some(c));
        t.set_value(c, NO_VALUE);
        t.remove(c, |_, _, _, _| {});
        assert_eq!(t.at(ROOT, 0, b"b"), None);
        let a = t.at(ROOT, 0, b"a").unwrap();
        assert_eq!(t.value(t.at(a, 1, b"x").unwrap()), 1);
    }

    #[test]
    fn compaction_keeps_every_live_node_reachable() {
        let mut t = Trie::new(2);
        let keep = t.insert(ROOT, 0, b"keep");
        t.set_value(keep, 1);
        let mut kept = Vec::new();
        for round in 0..4 {
            let mut added = Vec::new();
            for i in 0..5000 {
                let label = format!("label-number-{}-{}", round, i);
                let n = t.insert(keep, 1, label.as_bytes());
                if i % 100 == 0 {
                    t.set_value(n, i);
                    kept.push(label);
                } else {
                    added.push(label);
                }
            }
            for label in added {
                // Offsets move at compaction: look each node up again by its label.
                let parent = t.at(ROOT, 0, b"keep").unwrap();
                let n = t.at(parent, 1, label.as_bytes()).expect("added label");
                t.remove(n, |_, _, _, _| {});
            }
        }
        let keep = t.at(ROOT, 0, b"keep").unwrap();
        assert_eq!(t.label(keep), b"keep");
        assert_eq!(t.value(keep), 1);
        for label in &kept {
            let n = t.at(keep, 1, label.as_bytes()).expect("kept label");
            assert_eq!(t.label(n), label.as_bytes());
        }
        assert_eq!(t.node_count(), 2 + kept.len());
        assert!(t.arena.len() < 100_000, "arena was compacted: {}", t.arena.len());
    }
}
