// Differential tests: the WASM matcher must agree with ReferenceMatcher on every operation.
// They build nothing: wasm/dist/matcher.wasm comes from `bash wasm/build.sh` (run by the set-up).

import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ReferenceMatcher } from "./reference-matcher.ts";
import { findMatcherWasm, loadWasmMatcher, loadWasmMatcherSync, MatcherWasmMissingError, type WasmMatcher } from "./wasm-matcher.ts";

let wasmPath: string | Error;
try {
  wasmPath = findMatcherWasm();
} catch (error) {
  wasmPath = error as Error;
}

function load(): WasmMatcher {
  if (wasmPath instanceof Error) throw wasmPath; // says to run `bash wasm/build.sh`
  return loadWasmMatcherSync(wasmPath);
}

/** mulberry32: a small seeded PRNG, so a failure names a reproducible seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DOMAINS = ["example.com", "apps.example.com", "b.c", "x.io", "io", "Sub.Example.COM"];
const SEGMENTS = ["api", "v1", "v2", "API", "x", "", "..", ".", "%2F", "%2f", "caf\u00e9", "a b", "Users"];
const BAD_KEYS = ["", ".", "a..b", "*.", "*", "a*.com", "a.*.com", "bad host.com", "a.com:x", `${"a".repeat(254)}`, "[::1", "x.com\u00e9"];

function makeRandom(seed: number) {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const int = (n: number) => Math.floor(random() * n);
  const label = () => pick(["app", "web", "api", "App", "x", "www"]) + (random() < 0.8 ? String(int(40)) : "");
  const host = () => {
    const base = `${label()}.${random() < 0.3 ? `${label()}.` : ""}${pick(DOMAINS)}`;
    return random() < 0.1 ? pick(DOMAINS) : base;
  };
  const path = (maxSegments: number) => {
    let p = "";
    const n = int(maxSegments + 1);
    for (let i = 0; i < n; i++) p += `/${pick(SEGMENTS)}`;
    return p;
  };
  const routeKey = () => {
    const r = random();
    if (r < 0.02) return pick(BAD_KEYS);
    const h = r < 0.12 ? `*.${random() < 0.5 ? pick(DOMAINS) : `${label()}.${pick(DOMAINS)}`}` : host();
    const p = random() < 0.35 ? path(3) : random() < 0.05 ? "/" : "";
    return h + p + (random() < 0.05 ? "?q=1/x" : "") + (random() < 0.03 ? "/" : "");
  };
  const requestHost = () => {
    const r = random();
    let h = r < 0.05 ? pick(BAD_KEYS) : r < 0.1 ? `*.${pick(DOMAINS)}` : host();
    if (random() < 0.1) h = h.toUpperCase();
    if (random() < 0.1) h += ".";
    if (random() < 0.1) h += `:${int(70000)}`;
    return h;
  };
  const requestPath = () => {
    const r = random();
    if (r < 0.03) return pick(["", "*", "http://a.com/api", "api"]);
    return path(5) + (random() < 0.1 ? `?${path(2)}` : "") + (random() < 0.05 ? `#${path(2)}` : "") + (random() < 0.1 ? "/" : "");
  };
  return { random, int, routeKey, requestHost, requestPath };
}

describe("WasmMatcher", () => {
  test("matcher.wasm is built (run `bash wasm/build.sh` if this fails)", () => {
    if (wasmPath instanceof Error) throw wasmPath;
    expect(wasmPath).toEndWith(join("wasm", "dist", "matcher.wasm"));
  });

  for (const seed of [1, 2, 3]) {
    test(`agrees with the reference on 60,000 random operations (seed ${seed})`, () => {
      const wasm = load();
      const reference = new ReferenceMatcher();
      const r = makeRandom(seed);
      const registered: string[] = [];
      let lookups = 0;
      let hits = 0;
      for (let op = 0; op < 60_000; op++) {
        const kind = r.random();
        const where = `seed ${seed} op ${op}`;
        if (kind < 0.35) {
          const key = r.routeKey();
          const id = r.random() < 0.01 ? -1 : r.int(1_000_000);
          const expected = reference.insert(key, id);
          if (wasm.insert(key, id) !== expected) throw new Error(`${where}: insert(${JSON.stringify(key)}, ${id}) should be ${expected}`);
          if (expected) registered.push(key);
        } else if (kind < 0.5) {
          const key = registered.length > 0 && r.random() < 0.8 ? registered[r.int(registered.length)]! : r.routeKey();
          const expected = reference.remove(key);
          if (wasm.remove(key) !== expected) throw new Error(`${where}: remove(${JSON.stringify(key)}) should be ${expected}`);
        } else if (kind < 0.9999) {
          const host = r.requestHost();
          const path = r.requestPath();
          const expected = reference.lookup(host, path);
          const actual = wasm.lookup(host, path);
          lookups++;
          if (actual !== expected) throw new Error(`${where}: lookup(${JSON.stringify(host)}, ${JSON.stringify(path)}) = ${actual}, expected ${expected}`);
          if (expected >= 0) {
            hits++;
            // Both count bytes of the UTF-8 target, so every target compares, non-ASCII ones too.
            if (wasm.lastMatchedLength !== reference.lastMatchedLength) {
              throw new Error(`${where}: matched length of ${JSON.stringify(path)} is ${wasm.lastMatchedLength}, expected ${reference.lastMatchedLength}`);
            }
          }
          // The same lookup past the answer cache.
          const uncached = wasm.lookupUncached(host, path);
          if (uncached !== expected) throw new Error(`${where}: lookupUncached(${JSON.stringify(host)}, ${JSON.stringify(path)}) = ${uncached}, expected ${expected}`);
          if (expected >= 0 && wasm.lastMatchedLength !== reference.lastMatchedLength) {
            throw new Error(`${where}: matched length of ${JSON.stringify(path)} after lookupUncached is ${wasm.lastMatchedLength}, expected ${reference.lastMatchedLength}`);
          }
        } else {
          wasm.clear();
          reference.clear();
          registered.length = 0;
        }
        if (op % 1000 === 0 && wasm.size !== reference.size) throw new Error(`${where}: size ${wasm.size}, expected ${reference.size}`);
      }
      expect(wasm.size).toBe(reference.size);
      // The generator must exercise both outcomes, or the comparison proves little.
      expect(hits).toBeGreaterThan(lookups / 10);
      expect(lookups - hits).toBeGreaterThan(lookups / 10);
    });
  }

  test("edge cases agree with the reference", () => {
    const wasm = load();
    const reference = new ReferenceMatcher();
    const long = "x".repeat(4095);
    const keys: [string, number][] = [
      ["app.com", 1],
      ["app.com/api", 2],
      ["app.com/api/v1", 3],
      ["*.app.com", 4],
      ["*.com/deep", 5],
      [`long.com/${long}`, 6],
      [`long.com/${long}x`, 7], // refused: 4097 bytes of path
      ["caf\u00e9.com", 8], // refused: hosts are ASCII
      ["uni.com/caf\u00e9/\u{1f600}", 9],
      ["q.com?x=/a", 10],
      ["port.com:8080/p", 11],
      ["[::1]:80/v6", 12],
      ["dots.com./a//b/", 13],
    ];
    for (const [key, id] of keys) expect(wasm.insert(key, id)).toBe(reference.insert(key, id));
    const requests: [string, string][] = [
      ["app.com", "/api"],
      ["APP.COM:443", "/API/V1/more?x#y"],
      ["app.com.", "/apix"],
      ["a.app.com", "/api"],
      ["a.b.app.com", "/"],
      ["zzz.com", "/deep/er"],
      ["zzz.com", "/deeper"],
      ["app.com", "/api%2Fv1"],
      ["long.com", `/${long}`],
      ["long.com", `/${long}/${"y".repeat(20_000)}`],
      ["long.com", `/${long}${"y".repeat(20_000)}`],
      ["uni.com", "/caf\u00e9/\u{1f600}/x"],
      ["uni.com", "/CAF\u00c9"],
      ["q.com", "/a"],
      ["port.com", "/p/q"],
      ["[::1]", "/v6"],
      ["dots.com", "/a//b/c"],
      ["dots.com", "/a/b"],
      ["", "/"],
      ["app.com\u00e9", "/"],
      ["x".repeat(2000), "/"],
      ["app.com", "\u00e9".repeat(200)],
    ];
    for (const [host, path] of requests) {
      expect({ host, path, id: wasm.lookup(host, path) }).toEqual({ host, path, id: reference.lookup(host, path) });
    }
    expect(wasm.size).toBe(reference.size);
    for (const [key] of keys) expect(wasm.remove(key)).toBe(reference.remove(key));
    expect(wasm.size).toBe(0);
  });

  test("bad keys and ids are refused", () => {
    const wasm = load();
    for (const key of BAD_KEYS) expect(wasm.insert(key, 1)).toBe(false);
    for (const id of [-1, 1.5, 2 ** 31, Number.NaN]) expect(wasm.insert("a.com", id)).toBe(false);
    expect(wasm.insert("a.com", 2 ** 31 - 1)).toBe(true);
    expect(wasm.lookup("a.com", "/")).toBe(2 ** 31 - 1);
    expect(wasm.lookup("a..com", "/")).toBe(-1);
    expect(wasm.remove("a..com")).toBe(false);
    expect(wasm.size).toBe(1);
  });

  test("cached answers never go stale: every change to the table voids them", () => {
    const wasm = load();
    const host = (s: string) => JSON.parse(JSON.stringify(s)) as string; // a fresh string each time
    expect(wasm.insert("*.example.com", 1)).toBe(true);
    for (let i = 0; i < 3; i++) expect(wasm.lookup(host("app.example.com"), "/")).toBe(1);
    expect(wasm.insert("app.example.com", 2)).toBe(true);
    expect(wasm.lookup(host("app.example.com"), "/")).toBe(2);
    expect(wasm.insert("app.example.com", 3)).toBe(true); // replaced
    expect(wasm.lookup(host("app.example.com"), "/")).toBe(3);
    expect(wasm.insert("app.example.com/api", 4)).toBe(true); // now the target decides
    expect(wasm.lookup(host("app.example.com"), "/api/x")).toBe(4);
    expect(wasm.lastMatchedLength).toBe(4);
    expect(wasm.lookup(host("app.example.com"), "/web")).toBe(3);
    expect(wasm.remove("app.example.com/api")).toBe(true);
    expect(wasm.lookup(host("app.example.com"), "/api/x")).toBe(3);
    expect(wasm.lastMatchedLength).toBe(0);
    expect(wasm.lookup(host("APP.example.com:80"), "/")).toBe(3);
    expect(wasm.lookup(host("APP.example.com:80"), "/")).toBe(3);
    expect(wasm.remove("app.example.com")).toBe(true);
    expect(wasm.lookup(host("APP.example.com:80"), "/")).toBe(1);
    expect(wasm.lookup(host("nope.org"), "/")).toBe(-1); // a cached miss
    expect(wasm.insertMany([["nope.org", 5]])).toBe(1);
    expect(wasm.lookup(host("nope.org"), "/")).toBe(5);
    wasm.clear();
    expect(wasm.lookup(host("nope.org"), "/")).toBe(-1);
    expect(wasm.lookup(host("app.example.com"), "/")).toBe(-1);
    // A failed insert or remove changes nothing (and may keep the cache).
    expect(wasm.insert("x.com", 6)).toBe(true);
    expect(wasm.lookup(host("x.com"), "/")).toBe(6);
    expect(wasm.remove("y.com")).toBe(false);
    expect(wasm.insert("bad..key", 7)).toBe(false);
    expect(wasm.lookup(host("x.com"), "/")).toBe(6);
    // Hosts that fill the same cache slot still get their own answers.
    for (let i = 0; i < 20_000; i++) wasm.insert(`h${i}.com`, 100 + i);
    for (let round = 0; round < 2; round++) for (let i = 0; i < 20_000; i += 7) expect(wasm.lookup(host(`h${i}.com`), "/")).toBe(100 + i);
  });

  test("lastMatchedLength reads 0 after a cache hit that follows a path match (issue 4)", () => {
    const wasm = load();
    const host = (s: string) => JSON.parse(JSON.stringify(s)) as string;
    expect(wasm.insert("plain.com", 1)).toBe(true);
    expect(wasm.insert("paths.com/api/v1", 2)).toBe(true);
    expect(wasm.lookup(host("plain.com"), "/")).toBe(1); // now cached
    expect(wasm.lookup(host("paths.com"), "/api/v1/users")).toBe(2);
    expect(wasm.lastMatchedLength).toBe(7);
    // Answered from the cache without crossing: wasm still holds 7 from the path match.
    expect(wasm.lookup(host("plain.com"), "/api/v1/users")).toBe(1);
    expect(wasm.lastMatchedLength).toBe(0);
    // A cached miss leaves the last successful lookup's length alone.
    expect(wasm.lookup(host("paths.com"), "/api/v1")).toBe(2);
    expect(wasm.lookup(host("nope.com"), "/")).toBe(-1);
    expect(wasm.lookup(host("nope.com"), "/")).toBe(-1);
    expect(wasm.lastMatchedLength).toBe(7);
  });

  test("matched lengths are bytes of the UTF-8 target in both matchers (issue 4)", () => {
    const wasm = load();
    const reference = new ReferenceMatcher();
    for (const m of [wasm, reference]) {
      expect(m.insert("uni.com/caf\u00e9", 1)).toBe(true);
      expect(m.insert("uni.com/\u{1f600}/x", 2)).toBe(true);
    }
    for (const [path, id, bytes] of [
      ["/caf\u00e9/menu", 1, 6], // é is 2 bytes, 1 UTF-16 unit
      ["/\u{1f600}/x?q", 2, 7], // 😀 is 4 bytes, 2 units
    ] as const) {
      for (const m of [wasm, reference]) {
        expect(m.lookup("uni.com", path)).toBe(id);
        expect(m.lastMatchedLength).toBe(bytes);
      }
    }
  });

  test("a Host with DEL or a character beyond ASCII is refused, cached or not", () => {
    const wasm = load();
    expect(wasm.insert("app.com", 1)).toBe(true);
    // "app.co\u016d" is "app.com" if its last character were cut to a byte.
    for (const bad of ["app.com\u007f", "app.co\u016d", "\u0161pp.com", "app.com\u00ff"]) {
      for (let i = 0; i < 2; i++) expect(wasm.lookup(bad, "/")).toBe(-1);
      expect(wasm.lookupUncached(bad, "/")).toBe(-1);
    }
    expect(wasm.lookup("app.com", "/")).toBe(1);
  });

  test("memory grows past the first pages and lookups still see the new buffer", () => {
    const wasm = load();
    const before = wasm.linearMemoryBytes;
    for (let i = 0; i < 200_000; i++) expect(wasm.insert(`app-${i}.apps.example.com`, i)).toBe(true);
    expect(wasm.linearMemoryBytes).toBeGreaterThan(before);
    expect(wasm.size).toBe(200_000);
    for (let i = 0; i < 200_000; i += 997) expect(wasm.lookup(`APP-${i}.apps.example.com:80`, "/x")).toBe(i);
    for (let i = 0; i < 200_000; i += 2) expect(wasm.remove(`app-${i}.apps.example.com`)).toBe(true);
    expect(wasm.size).toBe(100_000);
    for (let i = 0; i < 2000; i++) expect(wasm.lookup(`app-${i}.apps.example.com`, "/")).toBe(i % 2 === 0 ? -1 : i);
    expect(wasm.tableBytes).toBeGreaterThan(0);
    wasm.clear();
    expect(wasm.size).toBe(0);
    expect(wasm.lookup("app-1.apps.example.com", "/")).toBe(-1);
  });

  test("heavy churn (which compacts the wasm arena) keeps agreeing with the reference", () => {
    const wasm = load();
    const reference = new ReferenceMatcher();
    const r = makeRandom(11);
    for (let cycle = 0; cycle < 3; cycle++) {
      const keys: string[] = [];
      for (let i = 0; i < 30_000; i++) {
        const key = `${r.routeKey()}/c${cycle}-${i}`;
        const id = r.int(1_000_000);
        expect(wasm.insert(key, id)).toBe(reference.insert(key, id));
        keys.push(key);
      }
      // Removing nine in ten leaves the arena mostly garbage, past the compaction threshold.
      const bytesBefore = wasm.tableBytes;
      for (let i = 0; i < keys.length; i++) if (i % 10 !== 0) expect(wasm.remove(keys[i]!)).toBe(reference.remove(keys[i]!));
      expect(wasm.size).toBe(reference.size);
      expect(wasm.tableBytes).toBeLessThan(bytesBefore); // compaction gave the garbage back
      for (let i = 0; i < keys.length; i += 7) {
        const key = keys[i]!;
        const slash = key.indexOf("/");
        const [host, path] = slash < 0 ? [key, "/"] : [key.slice(0, slash), key.slice(slash)];
        if (wasm.lookup(host, path) !== reference.lookup(host, path)) throw new Error(`cycle ${cycle}: lookup(${host}, ${path}) differs`);
      }
      for (let i = 0; i < 10_000; i++) {
        const host = r.requestHost();
        const path = r.requestPath();
        if (wasm.lookup(host, path) !== reference.lookup(host, path)) throw new Error(`cycle ${cycle}: lookup(${host}, ${path}) differs`);
      }
    }
  });

  test("insertMany loads what insert would, in batches", async () => {
    const wasm = await loadWasmMatcher(wasmPath instanceof Error ? "/nonexistent" : wasmPath);
    const reference = new ReferenceMatcher();
    const r = makeRandom(9);
    const entries: [string, number][] = [];
    for (let i = 0; i < 50_000; i++) entries.push([i === 7 ? `big.com/${"p".repeat(600_000)}` : r.routeKey(), r.int(1000)]);
    let accepted = 0;
    for (const [key, id] of entries) if (reference.insert(key, id)) accepted++;
    expect(wasm.insertMany(entries)).toBe(accepted);
    expect(wasm.size).toBe(reference.size);
    for (let i = 0; i < 20_000; i++) {
      const host = r.requestHost();
      const path = r.requestPath();
      if (wasm.lookup(host, path) !== reference.lookup(host, path)) throw new Error(`lookup(${host}, ${path}) differs after insertMany`);
    }
  });

  test("a missing matcher.wasm fails with how to build it", () => {
    const dir = mkdtempSync(join(tmpdir(), "skiff-matcher-"));
    const saved = process.env.SKIFF_MATCHER_WASM;
    delete process.env.SKIFF_MATCHER_WASM;
    try {
      expect(() => findMatcherWasm(dir)).toThrow(MatcherWasmMissingError);
      expect(() => findMatcherWasm(dir)).toThrow("bash wasm/build.sh");
      expect(() => loadWasmMatcherSync(join(dir, "matcher.wasm"))).toThrow("bash wasm/build.sh");
    } finally {
      if (saved !== undefined) process.env.SKIFF_MATCHER_WASM = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
