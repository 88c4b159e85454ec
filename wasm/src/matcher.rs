//! gorouter's routing rules on top of the trie: a route key is its host's labels reversed
//! (`app.example.com` is com -> example -> app, so hosts sharing a domain share nodes and the
//! wildcard `*.example.com` is just a `*` child of `example`), then its path segments.
//! Semantics are documented in router/src/matcher/route-key.ts and wasm/README.md.

use crate::key::{normalise_host, segment_end_lowercasing, split_uri, Dots, MAX_DOTS};
use crate::trie::{Trie, NO_VALUE, ROOT};

const HOST_LABEL: u8 = 0;
const PATH_SEGMENT: u8 = 1;
/// Node flag: the node has a `*` host-label child (saves a probe for every other node).
const HAS_STAR: u8 = 1;
/// `lookup_host`'s answer when the target decides: call `lookup_path`.
pub const NEEDS_PATH: i32 = -2;

#[derive(Debug, PartialEq, Eq)]
pub enum Inserted {
    Refused,
    Added,
    Replaced,
}

pub struct Matcher {
    trie: Trie,
    routes: u32,
    last_match_length: u32,
    // Per-call scratch, kept here so a lookup neither allocates nor zeroes arrays.
    dots: Dots,
    star_parents: [u32; MAX_DOTS],
    // Between `lookup_host` and `lookup_path`: the hosts still in the running (exact, then
    // wildcards). Any change to the table clears them, as node names may move.
    candidate_nodes: [u32; MAX_DOTS + 1],
    candidates: usize,
    first_undecided: usize,
}

impl Matcher {
    pub fn new(seed: u64) -> Self {
        Matcher {
            trie: Trie::new(seed),
            routes: 0,
            last_match_length: 0,
            dots: [0; MAX_DOTS],
            star_parents: [0; MAX_DOTS],
            candidate_nodes: [0; MAX_DOTS + 1],
            candidates: 0,
            first_undecided: 0,
        }
    }

    pub fn len(&self) -> u32 {
        self.routes
    }

    /// Bytes of the request path the last successful lookup matched (0: a route without a path).
    pub fn last_match_length(&self) -> u32 {
        self.last_match_length
    }

    /// Mean distance of an edge from its home bucket: a health check of the hash (about 0.5-1.5).
    pub fn mean_probe_displacement(&self) -> f64 {
        self.trie.mean_probe_displacement()
    }

    pub fn memory_bytes(&self) -> usize {
        self.trie.memory_bytes()
    }

    pub fn clear(&mut self) {
        self.candidates = 0;
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

    /// The first half of a lookup: the host alone. Returns the route id when the host decides it
    /// (no candidate host has path routes: the common case, which saves JS copying the target),
    /// -1 when nothing can match, or `NEEDS_PATH`, after which `lookup_path` finishes the lookup.
    pub fn lookup_host(&mut self, host: &mut [u8]) -> i32 {
        self.candidates = 0;
        let (n, dot_count) = match normalise_host(host, false, &mut self.dots) {
            Some(found) => found,
            None => return -1,
        };
        let host = &host[..n];
        // One walk from the rightmost label finds the exact host and, on the way, every node with a
        // `*` child: `*.b.c` for `a.b.c` is the `*` child of c -> b, recorded when labels remain.
        let mut stars = 0;
        let mut node = ROOT;
        let mut end = n;
        let mut remaining_dots = dot_count;
        let exact = loop {
            // A node whose only host child is its `*` has no child a request host can reach (it holds
            // no `*`): the usual `*.t-1.apps.example.com` registered alone. Stop without reading it.
            if self.trie.flags(node) & HAS_STAR != 0 && self.trie.children(node, HOST_LABEL) == 1 {
                break None;
            }
            let start = if remaining_dots == 0 { 0 } else { self.dots[remaining_dots - 1] as usize + 1 };
            match self.trie.at(node, HOST_LABEL, &host[start..end]) {
                None => break None,
                Some(child) => node = child,
            }
            if start == 0 {
                break Some(node);
            }
            if self.trie.flags(node) & HAS_STAR != 0 {
                self.star_parents[stars] = node;
                stars += 1;
            }
            end = start - 1;
            remaining_dots -= 1;
        };
        // Candidates in gorouter's order: the exact host, then wildcards, longest suffix first.
        let mut count = 0;
        if let Some(exact) = exact {
            self.candidate_nodes[0] = exact;
            count = 1;
        }
        for i in (0..stars).rev() {
            if let Some(star) = self.trie.at(self.star_parents[i], HOST_LABEL, b"*") {
                self.candidate_nodes[count] = star;
                count += 1;
            }
        }
        // Decide without the path while no candidate has path routes.
        for i in 0..count {
            let candidate = self.candidate_nodes[i];
            if self.trie.children(candidate, PATH_SEGMENT) != 0 {
                self.candidates = count;
                self.first_undecided = i;
                return NEEDS_PATH;
            }
            let value = self.trie.value(candidate);
            if value != NO_VALUE {
                self.last_match_length = 0;
                return value;
            }
        }
        -1
    }

    /// The second half of a lookup after `lookup_host` returned `NEEDS_PATH` (and nothing changed
    /// the table since): the longest path match over the remaining candidates, or -1.
    pub fn lookup_path(&mut self, path: &mut [u8]) -> i32 {
        let count = std::mem::replace(&mut self.candidates, 0);
        for i in self.first_undecided.min(count)..count {
            let id = self.match_path(self.candidate_nodes[i], path);
            if id >= 0 {
                return id;
            }
        }
        -1
    }

    /// The longest path-prefix match under a host node, on `/` boundaries; -1 if none.
    fn match_path(&mut self, host_node: u32, path: &mut [u8]) -> i32 {
        let mut node = host_node;
        let mut best = self.trie.value(node);
        let mut best_length = 0;
        // A target not in origin-form (`*`, absolute-form) matches only routes without a path.
        if path.first() == Some(&b'/') {
            let mut start = 1;
            while self.trie.children(node, PATH_SEGMENT) != 0 {
                let end = segment_end_lowercasing(path, start);
                match self.trie.at(node, PATH_SEGMENT, &path[start..end]) {
                    None => break,
                    Some(child) => node = child,
                }
                let value = self.trie.value(node);
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
            self.last_match_length = best_length as u32;
        }
        best
    }

    /// The node of a registered key: created when `create`, else None if absent or refused.
    fn key_node(&mut self, uri: &mut [u8], complete: bool, create: bool) -> Option<u32> {
        self.candidates = 0;
        let parts = split_uri(uri, complete)?;
        let (n, mut remaining_dots) = normalise_host(&mut uri[..parts.host_end], true, &mut self.dots)?;
        let mut node = ROOT;
        let mut end = n;
        loop {
            let start = if remaining_dots == 0 { 0 } else { self.dots[remaining_dots - 1] as usize + 1 };
            let label = &uri[start..end];
            node = if create {
                let child = self.trie.insert(node, HOST_LABEL, label);
                if label == b"*" {
                    let flags = self.trie.flags(node) | HAS_STAR;
                    self.trie.set_flags(node, flags);
                }
                child
            } else {
                self.trie.at(node, HOST_LABEL, label)?
            };
            if start == 0 {
                break;
            }
            end = start - 1;
            remaining_dots -= 1;
        }
        if parts.path_end > parts.host_end {
            let path = &mut uri[parts.host_end + 1..parts.path_end];
            path.make_ascii_lowercase();
            for segment in path.split(|&c| c == b'/') {
                node = if create { self.trie.insert(node, PATH_SEGMENT, segment) } else { self.trie.at(node, PATH_SEGMENT, segment)? };
            }
        }
        Some(node)
    }
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
