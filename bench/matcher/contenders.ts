// The structures the matcher bench compares, behind one small interface. Each contender runs alone in
// its own process, so every loop below is monomorphic and its heap holds only its own table.

import FindMyWay from "find-my-way";
import { Memoirist } from "memoirist";
import { ReferenceMatcher } from "../../router/src/matcher/reference-matcher.ts";
import { loadWasmMatcherSync, type WasmMatcher } from "../../router/src/matcher/wasm-matcher.ts";
import type { BenchRoute, LookupSet } from "./route-fixtures.ts";

export interface Contender {
  readonly name: string;
  /** Which routes it can express; the others are left out of its table and its lookups. */
  readonly expresses: { path: boolean; wildcard: boolean; remove: boolean };
  /** Empties the table, then inserts every route one call at a time. */
  build(routes: readonly BenchRoute[]): void;
  /** Looks every request of the set up; returns how many found a route. */
  lookupAll(set: LookupSet): number;
  /** `lookupAll` past the contender's answer cache, where it has one (wasm). */
  lookupAllUncached?(set: LookupSet): number;
  removeAll(routes: readonly BenchRoute[]): void;
  /** Bytes outside the JS heap that hold the table (wasm linear memory), if any. */
  offHeap?(): { tableBytes: number; linearMemoryBytes: number };
  /** The wasm matcher's bulk load, measured as its own figure. */
  buildBulk?(routes: readonly BenchRoute[]): void;
}

export const CONTENDER_NAMES = ["wasm", "reference", "map", "find-my-way", "memoirist"] as const;
export type ContenderName = (typeof CONTENDER_NAMES)[number];

/**
 * Largest table each contender is run at: all of them reach 1M. (find-my-way was once stopped at
 * 1,000 routes on the belief that `on` was slow; measured here, `on` registers 100k routes in 1.2 s
 * and 1M in 23 s (3.5 GB of heap). What is slow is `off`: 200 removals took 2.6 s from 1,000 routes
 * and 47 s from 10,000, so its remove is not measured: see FindMyWayContender.)
 */
export const MAX_ROUTES: Record<ContenderName, number> = {
  wasm: Infinity,
  reference: Infinity,
  map: Infinity,
  "find-my-way": 1_000_000,
  memoirist: Infinity,
};

class WasmContender implements Contender {
  readonly name = "wasm";
  readonly expresses = { path: true, wildcard: true, remove: true };
  private readonly m: WasmMatcher = loadWasmMatcherSync();
  build(routes: readonly BenchRoute[]): void {
    const m = this.m;
    m.clear();
    for (const r of routes) m.insert(r.uri, r.id);
  }
  buildBulk(routes: readonly BenchRoute[]): void {
    this.m.clear();
    this.m.insertMany(routes.map((r) => [r.uri, r.id] as const));
  }
  lookupAll(set: LookupSet): number {
    const m = this.m;
    const { hosts, targets } = set;
    let hits = 0;
    for (let i = 0; i < hosts.length; i++) if (m.lookup(hosts[i]!, targets[i]!) >= 0) hits++;
    return hits;
  }
  lookupAllUncached(set: LookupSet): number {
    const m = this.m;
    const { hosts, targets } = set;
    let hits = 0;
    for (let i = 0; i < hosts.length; i++) if (m.lookupUncached(hosts[i]!, targets[i]!) >= 0) hits++;
    return hits;
  }
  removeAll(routes: readonly BenchRoute[]): void {
    const m = this.m;
    for (const r of routes) m.remove(r.uri);
  }
  offHeap() {
    return { tableBytes: this.m.tableBytes, linearMemoryBytes: this.m.linearMemoryBytes };
  }
}

class ReferenceContender implements Contender {
  readonly name = "reference";
  readonly expresses = { path: true, wildcard: true, remove: true };
  private m = new ReferenceMatcher();
  build(routes: readonly BenchRoute[]): void {
    const m = (this.m = new ReferenceMatcher());
    for (const r of routes) m.insert(r.uri, r.id);
  }
  lookupAll(set: LookupSet): number {
    const m = this.m;
    const { hosts, targets } = set;
    let hits = 0;
    for (let i = 0; i < hosts.length; i++) if (m.lookup(hosts[i]!, targets[i]!) >= 0) hits++;
    return hits;
  }
  removeAll(routes: readonly BenchRoute[]): void {
    const m = this.m;
    for (const r of routes) m.remove(r.uri);
  }
}

/** A plain Map from host to id: exact hosts only, given already-normalised hosts (a lower bound). */
class MapContender implements Contender {
  readonly name = "map";
  readonly expresses = { path: false, wildcard: false, remove: true };
  private m = new Map<string, number>();
  build(routes: readonly BenchRoute[]): void {
    const m = (this.m = new Map());
    for (const r of routes) m.set(r.host, r.id);
  }
  lookupAll(set: LookupSet): number {
    const m = this.m;
    const hosts = set.hosts;
    let hits = 0;
    for (let i = 0; i < hosts.length; i++) if ((m.get(hosts[i]!) ?? -1) >= 0) hits++;
    return hits;
  }
  removeAll(routes: readonly BenchRoute[]): void {
    const m = this.m;
    for (const r of routes) m.delete(r.host);
  }
}

/**
 * find-my-way with the host as the first path segment: `/host/path` and `/host/path/*` per route.
 * Its `off` costs about 13 ms per call at 1,000 routes and 235 ms at 10,000 here (it rebuilds the
 * tree), so remove is left out, as for memoirist, which has none.
 */
class FindMyWayContender implements Contender {
  readonly name = "find-my-way";
  readonly expresses = { path: true, wildcard: false, remove: false };
  private router = FindMyWay();
  build(routes: readonly BenchRoute[]): void {
    const router = (this.router = FindMyWay());
    const handler = () => {};
    for (const r of routes) {
      router.on("GET", `/${r.host}${r.path}`, handler, r.id);
      router.on("GET", `/${r.host}${r.path}/*`, handler, r.id);
    }
  }
  lookupAll(set: LookupSet): number {
    const router = this.router;
    const joined = set.joined;
    let hits = 0;
    for (let i = 0; i < joined.length; i++) if (router.find("GET", joined[i]!) !== null) hits++;
    return hits;
  }
  removeAll(): void {
    throw new Error("find-my-way's remove is not measured (see the class comment)");
  }
}

/** memoirist (Elysia's router), same layout as find-my-way; it has no remove. */
class MemoiristContender implements Contender {
  readonly name = "memoirist";
  readonly expresses = { path: true, wildcard: false, remove: false };
  private router = new Memoirist<number>();
  build(routes: readonly BenchRoute[]): void {
    const router = (this.router = new Memoirist<number>());
    for (const r of routes) {
      router.add("GET", `/${r.host}${r.path}`, r.id);
      router.add("GET", `/${r.host}${r.path}/*`, r.id);
    }
  }
  lookupAll(set: LookupSet): number {
    const router = this.router;
    const joined = set.joined;
    let hits = 0;
    for (let i = 0; i < joined.length; i++) if (router.find("GET", joined[i]!) !== null) hits++;
    return hits;
  }
  removeAll(): void {
    throw new Error("memoirist has no remove");
  }
}

export function makeContender(name: ContenderName): Contender {
  switch (name) {
    case "wasm":
      return new WasmContender();
    case "reference":
      return new ReferenceContender();
    case "map":
      return new MapContender();
    case "find-my-way":
      return new FindMyWayContender();
    case "memoirist":
      return new MemoiristContender();
  }
}
