//! A native timing of the matcher at 100k and 1M routes, shaped like the Node bench
//! (bench/matcher/route-fixtures.ts: 80% exact hosts, 10% with a context path, 10% wildcards under
//! 12 shared domains): a measurement, not a test, so it is an example
//! (`cargo run --release --example lookup_speed`). It separates the Rust cost from the JS -> wasm
//! crossing. Request bytes sit in one buffer in lookup order, as a router's fresh request strings
//! do, so the harness adds no cache miss of its own: what misses is the table.

use skiff_matcher::matcher::Matcher;
use std::time::Instant;

const DOMAINS: [&str; 12] = [
    "apps.example.com", "cfapps.io", "eu.apps.acme.net", "apps.internal", "run.skiff.dev", "prod.shop.example.org",
    "staging.shop.example.org", "apps.bank.co.uk", "api.corp.local", "apps.lab.io", "emea.apps.big.example", "skiff.localhost",
];
const WORDS: [&str; 12] = ["orders", "billing", "web", "api", "catalog", "search", "auth", "images", "cart", "reports", "admin", "status"];
const TARGETS: [&str; 6] = ["/", "/index.html", "/static/js/app.3f2a1.js", "/api/v1/users/42?expand=orders", "/health", "/assets/logo.svg?v=3"];
const LOOKUPS: usize = 200_000;
const HOT: usize = 1_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn base36(mut n: usize) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[n % 36]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

enum Kind {
    Exact,
    Path,
    Wildcard,
}

struct Route {
    kind: Kind,
    host: String,
    path: String,
}

fn make_routes(n: usize, rng: &mut Rng) -> Vec<Route> {
    (0..n)
        .map(|i| {
            let domain = DOMAINS[rng.below(12)];
            let word = WORDS[rng.below(12)];
            let tag = base36(i);
            match rng.below(10) {
                0 => Route { kind: Kind::Path, host: format!("{}-{}.{}", word, tag, domain), path: if rng.below(2) == 0 { format!("/api/v{}", 1 + i % 3) } else { format!("/{}", WORDS[i % 12]) } },
                1 => Route { kind: Kind::Wildcard, host: format!("*.t-{}.{}", tag, domain), path: String::new() },
                _ => Route { kind: Kind::Exact, host: format!("{}-{}.{}", word, tag, domain), path: String::new() },
            }
        })
        .collect()
}

/// Requests laid out back to back in lookup order.
struct Requests {
    bytes: Vec<u8>,
    /// (host start, host len, target start, target len)
    spans: Vec<(usize, usize, usize, usize)>,
}

impl Requests {
    fn new(pairs: impl Iterator<Item = (String, String)>) -> Self {
        let mut r = Requests { bytes: Vec::new(), spans: Vec::new() };
        for (host, target) in pairs {
            let h = r.bytes.len();
            r.bytes.extend_from_slice(host.as_bytes());
            let t = r.bytes.len();
            r.bytes.extend_from_slice(target.as_bytes());
            r.spans.push((h, host.len(), t, target.len()));
        }
        r
    }
}

/// ns per lookup (median of 5 passes) and the hits of one pass.
fn time(m: &mut Matcher, requests: &Requests) -> (f64, usize) {
    let mut host = vec![0u8; 1024];
    let mut target = vec![0u8; 8192];
    let mut pass = |m: &mut Matcher| {
        let mut hits = 0;
        for &(h, hl, t, tl) in &requests.spans {
            host[..hl].copy_from_slice(&requests.bytes[h..h + hl]);
            // The target is copied only when the host leaves the answer to it, as JS does.
            let mut id = m.lookup_host(&mut host[..hl]);
            if id == skiff_matcher::matcher::NEEDS_PATH {
                target[..tl].copy_from_slice(&requests.bytes[t..t + tl]);
                id = m.lookup_path(&mut target[..tl]);
            }
            if id >= 0 {
                hits += 1;
            }
        }
        hits
    };
    let hits = pass(m);
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            pass(m);
            t.elapsed().as_nanos() as f64 / requests.spans.len() as f64
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times[2], hits)
}

fn main() {
    for &n in &[100_000usize, 1_000_000] {
        let mut rng = Rng(88172645463325252);
        let routes = make_routes(n, &mut rng);
        let uris: Vec<Vec<u8>> = routes.iter().map(|r| format!("{}{}", r.host, r.path).into_bytes()).collect();
        let mut m = Matcher::new(1);
        let t = Instant::now();
        for (i, uri) in uris.iter().enumerate() {
            let mut scratch = uri.clone();
            m.insert(&mut scratch, true, i as i32);
        }
        let insert_ns = t.elapsed().as_nanos() as f64 / n as f64;
        let of = |kind: fn(&Kind) -> bool| routes.iter().filter(|r| kind(&r.kind)).collect::<Vec<_>>();
        let exact = of(|k| matches!(k, Kind::Exact));
        let path = of(|k| matches!(k, Kind::Path));
        let wildcard = of(|k| matches!(k, Kind::Wildcard));
        let target = |rng: &mut Rng| TARGETS[rng.below(TARGETS.len())].to_string();
        let exact_set: Vec<(String, String)> = (0..LOOKUPS).map(|_| (exact[rng.below(exact.len())].host.clone(), target(&mut rng))).collect();
        let sets = [
            ("hot exact", Requests::new((0..LOOKUPS).map(|i| exact_set[i % HOT].clone())), LOOKUPS),
            ("exact", Requests::new(exact_set.iter().cloned()), LOOKUPS),
            ("path", Requests::new((0..LOOKUPS).map(|_| {
                let r = path[rng.below(path.len())];
                (r.host.clone(), format!("{}/items/{}?page=2", r.path, rng.below(1000)))
            })), LOOKUPS),
            ("wildcard", Requests::new((0..LOOKUPS).map(|_| {
                let r = wildcard[rng.below(wildcard.len())];
                (format!("shop{}{}", rng.below(100), &r.host[1..]), target(&mut rng))
            })), LOOKUPS),
            ("miss", Requests::new((0..LOOKUPS).map(|i| (format!("nope-{}.{}", base36(i), DOMAINS[rng.below(12)]), target(&mut rng)))), 0),
        ];
        let mut line = format!("{:>9} routes: insert {:.0} ns;", n, insert_ns);
        for (name, requests, expected_hits) in &sets {
            let (ns, hits) = time(&mut m, requests);
            assert_eq!(hits, *expected_hits, "{} hits", name);
            line += &format!(" {} {:.0},", name, ns);
        }
        println!(
            "{} ns per lookup; table {} bytes/route, mean probe displacement {:.2}",
            line.trim_end_matches(','),
            m.memory_bytes() / n,
            m.mean_probe_displacement()
        );
    }
}
