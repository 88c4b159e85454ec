//! gorouter's routing rules on top of the trie: a route key is its host's labels reversed
//! (`app.example.com` is com -> example -> app, so hosts sharing a domain share nodes and the
//! wildcard `*.example.com` is just a `*` child of `example`), then its path segments.
//! Semantics are documented in router/src/matcher/route-key.ts and wasm/README.md.

use crate::hash::chain;
use crate::key::{normalise_host, segment_end_lowercasing, split_uri, Dots, MAX_DOTS};
use crate::trie::{Trie, NO_VALUE, ROOT};

const HOST_LABEL: u8 = 0;
const PATH_SEGMENT: u8 = 1;
/// Node flag: the node has a `*` host-label child (saves a probe for every other node).
const HAS_STAR: u8 = 1;
/// `lookup_host`'s answer when the target decides: call `lookup_path`.
pub const NEEDS_PATH: i32 = -2;
/// The most labels a valid host has.
const MAX_LABELS: usize = MAX_DOTS + 1;

#[derive(Debug, PartialEq, Eq)]
pub enum Inserted {
    Refused,
    Added,
    Replaced,
}

pub struct Matcher {
    trie: Trie,
    routes: u32,
    /// Bumped by every change to the table: a `lookup_path` whose `lookup_host` saw another version
    /// answers -1 (its candidates' names may have moved).
    version: u32,
    /// The writer's own scratch: for its key walks and for lookups made through `lookup`.
    dots: Dots,
    own: Lookup,
}

/// A lookup's scratch and results, one per thread that looks up: the table itself is only read,
/// so readers in other threads (each with its own `Lookup`) can share one `Matcher` whose memory a
/// single writer changes (the router's workers: see ffi.rs and wasm/README.md).
pub struct Lookup {
    last_match_length: u32,
    dots: Dots,
    /// The request host's suffixes' chain states: `[i]` after its `i` rightmost labels.
    states: [u64; MAX_LABELS + 1],
    /// Nodes with a `*` child above the host, deepest first, and how many labels each holds.
    star_parents: [(u32, u32); MAX_DOTS],
    // Between `lookup_host` and `lookup_path`: the hosts still in the running (exact, then
    // wildcards) and their chain states, valid while the table's version is `version`.
    candidate_nodes: [u32; MAX_LABELS],
    candidate_states: [u64; MAX_LABELS],
    candidates: usize,
    first_undecided: usize,
    version: u32,
    /// Sums the slots `lookup_host` loads ahead, so the loads are not optimised away.
    touched: u64,
}

impl Lookup {
    pub fn new() -> Self {
        Lookup {
            last_match_length: 0,
            dots: [0; MAX_DOTS],
            states: [0; MAX_LABELS + 1],
            star_parents: [(0, 0); MAX_DOTS],
            candidate_nodes: [0; MAX_LABELS],
            candidate_states: [0; MAX_LABELS],
            candidates: 0,
            first_undecided: 0,
            version: 0,
            touched: 0,
        }
    }

    /// Bytes of the request path the last successful lookup matched (0: a route without a path).
    pub fn last_match_length(&self) -> u32 {
        self.last_match_length
    }
}

impl Default for Lookup {
    fn default() -> Self {
        Self::new()
    }
}

/// Where label `i` of a host lies, counting from the left (0 is the leftmost): `dots` holds the
/// host's dot positions, `n` its length.
#[inline]
fn label_span(dots: &Dots, dot_count: usize, n: usize, i: usize) -> (usize, usize) {
    let start = if i == 0 { 0 } else { dots[i - 1] as usize + 1 };
    let end = if i == dot_count { n } else { dots[i] as usize };
    (start, end)
}

/// Whether `node` is the suffix of `host` that starts at its label `first` (0 is the leftmost):
/// that label is the node's, and the labels after it are its ancestors' up to the root. On the way
/// it lists the nodes with a `*` child that hold a proper suffix of the host, deepest first, in
/// `star_parents` (their count in `stars`): the wildcard candidates, had by the same reads.
#[inline]
fn is_suffix(trie: &Trie, node: u32, host: &[u8], dots: &Dots, dot_count: usize, first: usize, star_parents: &mut [(u32, u32); MAX_DOTS], stars: &mut usize) -> bool {
    *stars = 0;
    let mut node = node;
    for i in first..=dot_count {
        let (start, end) = label_span(dots, dot_count, host.len(), i);
        if node == ROOT || !trie.is_label(node, HOST_LABEL, &host[start..end]) {
            return false;
        }
        if i > 0 && trie.flags(node) & HAS_STAR != 0 {
            star_parents[*stars] = (node, (dot_count + 1 - i) as u32);
            *stars += 1;
        }
        node = trie.parent(node);
    }
    node == ROOT
}

impl Matcher {
    pub fn new(seed: u64) -> Self {
        Matcher { trie: Trie::new(seed), routes: 0, version: 0, dots: [0; MAX_DOTS], own: Lookup::new() }
    }

    pub fn len(&self) -> u32 {
        self.routes
    }

    /// Bytes of the request path the last successful lookup matched (0: a route without a path).
    pub fn last_match_length(&self) -> u32 {
        self.own.last_match_length
    }

    /// Mean distance of an edge from its home bucket: a health check of the hash (about 0.5-1.5).
    pub fn mean_probe_displacement(&self) -> f64 {
        self.trie.mean_probe_displacement()
    }

    pub fn memory_bytes(&self) -> usize {
        self.trie.memory_bytes()
    }

    pub fn clear(&mut self) {
        self.version = self.version.wrapping_add(1);
        self.trie.clear();
        self.routes = 0;
    }

    /// Pre-sizes for a bulk load of `routes` keys holding `key_bytes` bytes in all.
    pub fn reserve(&mut self, routes: usize, key_bytes: usize) {
        // Most routes add one node (a new leftmost label); shared labels make this an overestimate.
        self.trie.reserve(routes + routes / 4, key_bytes);
    }

    /// Adds or replaces the route `uri` (raw; normalised in place). `complete` is false when the
    /// caller's buffer cut the uri short.
    pub fn insert(&mut self, uri: &mut [u8], complete: bool, id: i32) -> Inserted {
        if id < 0 {
            return Inserted::Refused;
        }
        let node = match self.key_node(uri, complete, true) {
            Some(node) => node,
            None => return Inserted::Refused,
        };
        let previous = self.trie.value(node);
        self.trie.set_value(node, id);
        self.version = self.version.wrapping_add(1);
        if previous == NO_VALUE {
            self.routes += 1;
            Inserted::Added
        } else {
            Inserted::Replaced
        }
    }

    /// Removes the route `uri`; false if it was not there (or the key is refused).
    pub fn remove(&mut self, uri: &mut [u8], complete: bool) -> bool {
        let node = match self.key_node(uri, complete, false) {
            Some(node) => node,
            None => return false,
        };
        if self.trie.value(node) == NO_VALUE {
            return false;
        }
        self.trie.set_value(node, NO_VALUE);
        self.version = self.version.wrapping_add(1);
        self.routes -= 1;
        self.trie.remove(node, |trie, parent, kind, child| {
            if kind == HOST_LABEL && trie.label(child) == b"*" {
                let flags = trie.flags(parent) & !HAS_STAR;
                trie.set_flags(parent, flags);
            }
        });
        true
    }

    /// The id of the route for a raw Host header and raw request target, or -1. Both buffers are
    /// scratch: they are lower-cased in place.
    pub fn lookup(&mut self, host: &mut [u8], path: &mut [u8]) -> i32 {
        match self.lookup_host(host) {
            NEEDS_PATH => self.lookup_path(path),
            decided => decided,
        }
    }

    /// `lookup_host_with` on the writer's own scratch.
    pub fn lookup_host(&mut self, host: &mut [u8]) -> i32 {
        lookup_host(&self.trie, self.version, &mut self.own, host)
    }

    /// `lookup_path_with` on the writer's own scratch.
    pub fn lookup_path(&mut self, path: &mut [u8]) -> i32 {
        lookup_path(&self.trie, self.version, &mut self.own, path)
    }

    /// The first half of a lookup: the host alone. Returns the route id when the host decides it
    /// (no candidate host has path routes: the common case, which saves JS copying the target),
    /// -1 when nothing can match, or `NEEDS_PATH`, after which `lookup_path_with` finishes the
    /// lookup. Reads the table only: all it writes is `l`.
    pub fn lookup_host_with(&self, l: &mut Lookup, host: &mut [u8]) -> i32 {
        lookup_host(&self.trie, self.version, l, host)
    }

    /// The second half of a lookup after `lookup_host_with` returned `NEEDS_PATH` (and nothing
    /// changed the table since: else -1): the longest path match over the remaining candidates.
    pub fn lookup_path_with(&self, l: &mut Lookup, path: &mut [u8]) -> i32 {
        lookup_path(&self.trie, self.version, l, path)
    }

    /// The node of a registered key: created when `create`, else None if absent or refused.
    fn key_node(&mut self, uri: &mut [u8], complete: bool, create: bool) -> Option<u32> {
        let parts = split_uri(uri, complete)?;
        let (n, dot_count) = normalise_host(&mut uri[..parts.host_end], true, &mut self.dots)?;
        let mut node = ROOT;
        let mut state = self.trie.root_state();
        for i in (0..=dot_count).rev() {
            let (start, end) = label_span(&self.dots, dot_count, n, i);
            let label = &uri[start..end];
            state = chain(state, HOST_LABEL, label);
            node = if create {
                let child = self.trie.insert_child(node, HOST_LABEL, label, state);
                if label == b"*" {
                    let flags = self.trie.flags(node) | HAS_STAR;
                    self.trie.set_flags(node, flags);
                }
                child
            } else {
                self.trie.child(node, HOST_LABEL, label, state)?
            };
        }
        if parts.path_end > parts.host_end {
            let path = &mut uri[parts.host_end + 1..parts.path_end];
            path.make_ascii_lowercase();
            for segment in path.split(|&c| c == b'/') {
                state = chain(state, PATH_SEGMENT, segment);
                node = if create { self.trie.insert_child(node, PATH_SEGMENT, segment, state) } else { self.trie.child(node, PATH_SEGMENT, segment, state)? };
            }
        }
        Some(node)
    }
}

/// The host half of a lookup (Matcher::lookup_host_with): reads `trie`, writes only `l`.
fn lookup_host(trie: &Trie, version: u32, l: &mut Lookup, host: &mut [u8]) -> i32 {
    l.candidates = 0;
    l.version = version;
    let (n, dot_count) = match normalise_host(host, false, &mut l.dots) {
        Some(found) => found,
        None => return -1,
    };
    let host = &host[..n];
    // Hash the host once, right to left: the state after each label is its suffix's, so the
    // whole host and every node on the way down have their hashes without hashing again.
    let mut state = trie.root_state();
    l.states[0] = state;
    for depth in 1..=dot_count + 1 {
        let (start, end) = label_span(&l.dots, dot_count, n, dot_count + 1 - depth);
        state = chain(state, HOST_LABEL, &host[start..end]);
        l.states[depth] = state;
    }
    // The exact host in one probe, checked by walking up its parents (shared by many hosts,
    // so in cache), which also lists the wildcard candidates above it.
    let mut stars = 0;
    // The host's parent domain is the next probe when the host is absent (a wildcard or a
    // miss): start loading its slot now, so that the two likely cache misses overlap. For a
    // host that exists, its parent domain is shared and in cache: this costs nothing.
    if dot_count > 0 {
        l.touched = l.touched.wrapping_add(trie.touch(l.states[dot_count]));
    }
    let exact = {
        let (dots, star_parents) = (&l.dots, &mut l.star_parents);
        trie.find(state, |node| is_suffix(trie, node, host, dots, dot_count, 0, star_parents, &mut stars))
    };
    let mut count = 0;
    match exact {
        Some(node) => {
            // Most hosts have a route and no paths: decided before reading anything else.
            if trie.children(node, PATH_SEGMENT) == 0 {
                let value = trie.value(node);
                if value != NO_VALUE {
                    l.last_match_length = 0;
                    return value;
                }
            }
            l.candidate_nodes[0] = node;
            l.candidate_states[0] = state;
            count = 1;
        }
        None => {
            // No such host: its deepest node is usually its parent domain (one probe, checked
            // and listing the `*` nodes as above); else walk down from the root with the
            // states already had, stopping above the labels known absent.
            let parent_domain = if dot_count == 0 {
                None
            } else {
                let (dots, star_parents) = (&l.dots, &mut l.star_parents);
                trie.find(l.states[dot_count], |node| is_suffix(trie, node, host, dots, dot_count, 1, star_parents, &mut stars))
            };
            if parent_domain.is_none() {
                stars = 0;
                let mut node = ROOT;
                for depth in 1..dot_count {
                    // A node whose only host child is its `*` has no child a request host can
                    // reach (it holds no `*`): the usual `*.t-1.apps.example.com` alone.
                    if trie.flags(node) & HAS_STAR != 0 && trie.children(node, HOST_LABEL) == 1 {
                        break;
                    }
                    let (start, end) = label_span(&l.dots, dot_count, n, dot_count + 1 - depth);
                    match trie.child(node, HOST_LABEL, &host[start..end], l.states[depth]) {
                        None => break,
                        Some(child) => node = child,
                    }
                    if trie.flags(node) & HAS_STAR != 0 {
                        l.star_parents[stars] = (node, depth as u32);
                        stars += 1;
                    }
                }
                l.star_parents[..stars].reverse();
            }
        }
    }
    // Candidates in gorouter's order: the exact host, then wildcards, longest suffix first.
    for i in 0..stars {
        let (parent, depth) = l.star_parents[i];
        let star_state = chain(l.states[depth as usize], HOST_LABEL, b"*");
        if let Some(star) = trie.child(parent, HOST_LABEL, b"*", star_state) {
            l.candidate_nodes[count] = star;
            l.candidate_states[count] = star_state;
            count += 1;
        }
    }
    // Decide without the path while no candidate has path routes.
    for i in 0..count {
        let candidate = l.candidate_nodes[i];
        if trie.children(candidate, PATH_SEGMENT) != 0 {
            l.candidates = count;
            l.first_undecided = i;
            return NEEDS_PATH;
        }
        let value = trie.value(candidate);
        if value != NO_VALUE {
            l.last_match_length = 0;
            return value;
        }
    }
    -1
}

/// The path half (Matcher::lookup_path_with).
fn lookup_path(trie: &Trie, version: u32, l: &mut Lookup, path: &mut [u8]) -> i32 {
    let count = std::mem::replace(&mut l.candidates, 0);
    if l.version != version {
        return -1;
    }
    for i in l.first_undecided.min(count)..count {
        let id = match_path(trie, l, l.candidate_nodes[i], l.candidate_states[i], path);
        if id >= 0 {
            return id;
        }
    }
    -1
}

/// The longest path-prefix match under a host node (whose chain state is `state`), on `/`
/// boundaries; -1 if none.
fn match_path(trie: &Trie, l: &mut Lookup, host_node: u32, state: u64, path: &mut [u8]) -> i32 {
    let mut node = host_node;
    let mut state = state;
    let mut best = trie.value(node);
    let mut best_length = 0;
    // A target not in origin-form (`*`, absolute-form) matches only routes without a path.
    if path.first() == Some(&b'/') {
        let mut start = 1;
        while trie.children(node, PATH_SEGMENT) != 0 {
            let end = segment_end_lowercasing(path, start);
            let segment = &path[start..end];
            let child_state = chain(state, PATH_SEGMENT, segment);
            match trie.child(node, PATH_SEGMENT, segment, child_state) {
                None => break,
                Some(child) => {
                    node = child;
                    state = child_state;
                }
            }
            let value = trie.value(node);
            if value != NO_VALUE {
                best = value;
                best_length = end;
            }
            if end >= path.len() || path[end] != b'/' {
                break;
            }
            start = end + 1;
        }
    }
    if best != NO_VALUE {
        l.last_match_length = best_length as u32;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(m: &mut Matcher, uri: &str, id: i32) -> Inserted {
        m.insert(&mut uri.as_bytes().to_vec(), true, id)
    }
    fn remove(m: &mut Matcher, uri: &str) -> bool {
        m.remove(&mut uri.as_bytes().to_vec(), true)
    }
    fn lookup(m: &mut Matcher, host: &str, path: &str) -> i32 {
        m.lookup(&mut host.as_bytes().to_vec(), &mut path.as_bytes().to_vec())
    }

    #[test]
    fn exact_hosts_and_context_paths() {
        let mut m = Matcher::new(0);
        assert_eq!(insert(&mut m, "app.com", 1), Inserted::Added);
        assert_eq!(insert(&mut m, "app.com/api", 2), Inserted::Added);
        assert_eq!(insert(&mut m, "App.com/API/v1/", 3), Inserted::Added);
        assert_eq!(insert(&mut m, "app.com/api/v1", 4), Inserted::Replaced);
        assert_eq!(m.len(), 3);
        assert_eq!(lookup(&mut m, "APP.com:80", "/api"), 2);
        assert_eq!(m.last_match_length(), 4);
        assert_eq!(lookup(&mut m, "app.com.", "/api/V1/x?y"), 4);
        assert_eq!(m.last_match_length(), 7);
        assert_eq!(lookup(&mut m, "app.com", "/apix"), 1);
        assert_eq!(m.last_match_length(), 0);
        assert_eq!(lookup(&mut m, "app.com", "/api//v1"), 2);
        assert_eq!(lookup(&mut m, "app.com", "/api%2Fv1"), 1);
        assert_eq!(lookup(&mut m, "app.com", "*"), 1);
        assert_eq!(lookup(&mut m, "other.com", "/"), -1);
        assert_eq!(lookup(&mut m, "com", "/"), -1);
    }

    #[test]
    fn wildcards_after_exact_hosts() {
        let mut m = Matcher::new(0);
        insert(&mut m, "*.b.c", 10);
        insert(&mut m, "*.c", 11);
        insert(&mut m, "x.b.c", 12);
        insert(&mut m, "*.b.c/deep/path", 13);
        insert(&mut m, "y.b.c/api", 14);
        assert_eq!(lookup(&mut m, "a.b.c", "/"), 10);
        assert_eq!(lookup(&mut m, "a.a.b.c", "/"), 10);
        assert_eq!(lookup(&mut m, "z.c", "/"), 11);
        assert_eq!(lookup(&mut m, "b.c", "/"), 11);
        assert_eq!(lookup(&mut m, "c", "/"), -1);
        assert_eq!(lookup(&mut m, "x.b.c", "/deep/path"), 12);
        assert_eq!(lookup(&mut m, "a.b.c", "/deep/path/x"), 13);
        assert_eq!(lookup(&mut m, "y.b.c", "/api/x"), 14);
        assert_eq!(lookup(&mut m, "y.b.c", "/web"), 10);
        assert_eq!(lookup(&mut m, "*.b.c", "/"), -1);
        assert!(remove(&mut m, "*.b.c"));
        assert!(remove(&mut m, "*.b.c/deep/path"));
        assert_eq!(lookup(&mut m, "a.b.c", "/"), 11);
        assert!(!remove(&mut m, "*.b.c"));
    }

    #[test]
    fn the_host_alone_decides_when_no_candidate_has_paths() {
        let mut m = Matcher::new(0);
        insert(&mut m, "plain.com", 1);
        insert(&mut m, "paths.com/api", 2);
        insert(&mut m, "*.plain.com", 3);
        insert(&mut m, "*.com/deep", 4);
        assert_eq!(m.lookup_host(&mut b"plain.com".to_vec()), 1);
        assert_eq!(m.lookup_host(&mut b"nope.org".to_vec()), -1);
        assert_eq!(m.lookup_host(&mut b"paths.com".to_vec()), NEEDS_PATH);
        assert_eq!(m.lookup_path(&mut b"/api/x".to_vec()), 2);
        // Exact `x.plain.com` is absent: `*.plain.com` has no paths and decides before `*.com`.
        assert_eq!(m.lookup_host(&mut b"x.plain.com".to_vec()), 3);
        assert_eq!(m.lookup_host(&mut b"x.other.com".to_vec()), NEEDS_PATH);
        assert_eq!(m.lookup_path(&mut b"/deep".to_vec()), 4);
        assert_eq!(m.lookup_host(&mut b"x.other.com".to_vec()), NEEDS_PATH);
        assert_eq!(m.lookup_path(&mut b"/shallow".to_vec()), -1);
        // A change between the halves voids the pending lookup.
        assert_eq!(m.lookup_host(&mut b"paths.com".to_vec()), NEEDS_PATH);
        insert(&mut m, "new.com", 5);
        assert_eq!(m.lookup_path(&mut b"/api".to_vec()), -1);
    }

    #[test]
    fn remove_prunes_and_refuses_missing_keys() {
        let mut m = Matcher::new(0);
        insert(&mut m, "x.com", 5);
        insert(&mut m, "x.com/p", 6);
        assert!(!remove(&mut m, "x.com/q"));
        assert!(!remove(&mut m, "y.com"));
        assert!(!remove(&mut m, "a..b"));
        assert!(remove(&mut m, "x.com"));
        assert!(!remove(&mut m, "x.com"));
        assert_eq!(lookup(&mut m, "x.com", "/p/q"), 6);
        assert_eq!(lookup(&mut m, "x.com", "/q"), -1);
        assert!(remove(&mut m, "x.com/p"));
        assert_eq!(m.len(), 0);
        assert_eq!(m.trie.node_count(), 1);
    }

    /// The node of a host, found by walking down label by label (the slow way, as a check).
    fn host_node(m: &Matcher, host: &str) -> u32 {
        host.rsplit('.').fold(ROOT, |node, label| m.trie.at(node, HOST_LABEL, label.as_bytes()).expect(host))
    }

    fn check_suffix(m: &Matcher, node: u32, host: &str, first: usize) -> (bool, Vec<(u32, u32)>) {
        let mut bytes = host.as_bytes().to_vec();
        let mut dots = [0u16; MAX_DOTS];
        let (n, dot_count) = normalise_host(&mut bytes, false, &mut dots).unwrap();
        let mut star_parents = [(0u32, 0u32); MAX_DOTS];
        let mut stars = 0;
        let found = is_suffix(&m.trie, node, &bytes[..n], &dots, dot_count, first, &mut star_parents, &mut stars);
        (found, star_parents[..stars].to_vec())
    }

    #[test]
    fn a_node_found_by_its_hash_is_checked_label_by_label_up_to_the_root() {
        // What stands between a 32-bit hash collision and a wrong answer: `is_suffix` must accept
        // a node only for exactly its own key.
        let mut m = Matcher::new(5);
        insert(&mut m, "a.b.c", 1);
        insert(&mut m, "a.x.c", 2);
        insert(&mut m, "*.b.c", 3);
        insert(&mut m, "*.c", 4);
        let abc = host_node(&m, "a.b.c");
        let bc = host_node(&m, "b.c");
        let c = host_node(&m, "c");
        assert_eq!(check_suffix(&m, abc, "a.b.c", 0), (true, vec![(bc, 2), (c, 1)]), "wildcard parents, deepest first");
        assert_eq!(check_suffix(&m, abc, "A.B.C.", 0).0, true);
        assert!(!check_suffix(&m, abc, "a.x.c", 0).0, "same leftmost label, other parent");
        assert!(!check_suffix(&m, abc, "a.b.c.d", 0).0, "a shallower node");
        assert!(!check_suffix(&m, abc, "b.c", 0).0, "a deeper node");
        assert!(check_suffix(&m, abc, "x.a.b.c", 1).0, "the suffix from the second label");
        assert_eq!(check_suffix(&m, bc, "q.b.c", 1), (true, vec![(bc, 2), (c, 1)]), "a parent domain lists itself");
        assert!(!check_suffix(&m, bc, "q.b.c", 0).0);
        assert!(!check_suffix(&m, ROOT, "c", 0).0, "the root is no host");
        let star = m.trie.at(bc, HOST_LABEL, b"*").unwrap();
        assert!(!check_suffix(&m, star, "a.b.c", 0).0, "a wildcard node is not the host it covers");
    }

    #[test]
    fn one_probe_host_lookups_survive_churn_removal_and_compaction() {
        // Removal finds each edge by its chain hash (recomputed from the root) and compaction
        // renames nodes without re-hashing: both must leave every survivor findable in one probe
        // and no slot behind for the removed.
        let mut m = Matcher::new(9);
        let domains = ["apps.example.com", "b.c", "deep.er.example.org"];
        for round in 0..3 {
            let mut keys = Vec::new();
            for i in 0..6000 {
                let domain = domains[i % 3];
                let key = match i % 10 {
                    0 => format!("*.t{}-{}.{}", round, i, domain),
                    1 => format!("p{}-{}.{}/api/v{}", round, i, domain, i % 3),
                    _ => format!("h{}-{}.{}", round, i, domain),
                };
                assert_eq!(insert(&mut m, &key, i as i32), Inserted::Added, "{}", key);
                keys.push(key);
            }
            // Keep one in ten: most records become garbage, past the compaction threshold.
            for (i, key) in keys.iter().enumerate() {
                if i % 10 != 3 {
                    assert!(remove(&mut m, key), "{}", key);
                }
            }
            for (i, key) in keys.iter().enumerate() {
                let kept = i % 10 == 3;
                let (host, path) = match key.find('/') {
                    Some(slash) => (&key[..slash], &key[slash..]),
                    None => (&key[..], "/"),
                };
                let host = host.replace('*', "shop");
                let expected = if kept { i as i32 } else { -1 };
                assert_eq!(lookup(&mut m, &host, path), expected, "{} after round {}", key, round);
            }
            assert_eq!(m.trie.edge_count() + 1, m.trie.node_count(), "one edge slot per node but the root");
        }
        assert_eq!(m.len(), 3 * 600);
        assert!(m.mean_probe_displacement() < 2.0);
    }

    #[test]
    fn bad_keys_are_refused() {
        let mut m = Matcher::new(0);
        assert_eq!(insert(&mut m, "", 1), Inserted::Refused);
        assert_eq!(insert(&mut m, "a..b/x", 1), Inserted::Refused);
        assert_eq!(insert(&mut m, "a.com", -1), Inserted::Refused);
        assert_eq!(m.len(), 0);
        assert_eq!(lookup(&mut m, "a..b", "/"), -1);
    }
}
