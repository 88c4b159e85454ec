//! A rough native timing of lookups at 100k and 1M routes: a measurement, not a test, so it is an
//! example (`cargo run --release --example lookup_speed`). The real benchmark is
//! bench/matcher/matcher-bench.ts; this one separates the Rust cost from the JS -> wasm crossing.

use skiff_matcher::matcher::Matcher;
use std::time::Instant;

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn main() {
    for &n in &[100_000usize, 1_000_000] {
        let mut m = Matcher::new(1);
        let domains = ["apps.example.com", "cfapps.io", "eu.apps.acme.net", "apps.internal"];
        let hosts: Vec<String> = (0..n).map(|i| format!("orders-{:x}.{}", i * 2654435761 % 1_000_000_007, domains[i % 4])).collect();
        let t = Instant::now();
        for (i, h) in hosts.iter().enumerate() {
            m.insert(&mut h.as_bytes().to_vec(), true, i as i32);
        }
        let insert_ns = t.elapsed().as_nanos() as f64 / n as f64;
        let mut state = 88172645463325252u64;
        let order: Vec<usize> = (0..200_000).map(|_| (xorshift(&mut state) % n as u64) as usize).collect();
        let mut host_buf = vec![0u8; 1024];
        let mut path_buf = b"/index.html".to_vec();
        let t = Instant::now();
        let mut hits = 0;
        for &i in &order {
            let h = hosts[i].as_bytes();
            host_buf[..h.len()].copy_from_slice(h);
            if m.lookup(&mut host_buf[..h.len()], &mut path_buf) >= 0 {
                hits += 1;
            }
        }
        let lookup_ns = t.elapsed().as_nanos() as f64 / order.len() as f64;
        assert_eq!(hits, order.len());
        // The same 1,000 hosts over and over: the CPU cost with warm caches.
        let t = Instant::now();
        for k in 0..order.len() {
            let h = hosts[order[k % 1000]].as_bytes();
            host_buf[..h.len()].copy_from_slice(h);
            if m.lookup(&mut host_buf[..h.len()], &mut path_buf) >= 0 {
                hits += 1;
            }
        }
        let hot_ns = t.elapsed().as_nanos() as f64 / order.len() as f64;
        println!(
            "{} routes: insert {:.0} ns, random lookup {:.0} ns, hot lookup {:.0} ns, table {} bytes/route, mean probe displacement {:.2}",
            n,
            insert_ns,
            lookup_ns,
            hot_ns,
            m.memory_bytes() / n,
            m.mean_probe_displacement()
        );
    }
}
