// Measures one contender at one table size in the current process: build and remove rates, lookup ns
// (including, for wasm, the JS -> wasm crossing), heap and linear-memory bytes, and GC pauses.

import { constants as perfConstants, PerformanceObserver } from "node:perf_hooks";
import { makeContender, type Contender, type ContenderName } from "./contenders.ts";
import { summarize } from "../lib/stats.ts";
import { makeLookupSets, makeRoutes, type LookupSet, type LookupSetName } from "./route-fixtures.ts";

export interface Measurement {
  runtime: string;
  contender: ContenderName | "none";
  size: number;
  /** Routes it held (the ones it can express). */
  routes: number;
  insert_per_s: number | null;
  bulk_insert_per_s: number | null;
  remove_per_s: number | null;
  lookup_ns: Record<LookupSetName, number | null>;
  /** Spread of the lookup passes behind each median: (max - min) / median, as a fraction. */
  lookup_spread: Record<LookupSetName, number | null>;
  /** false if some lookup found a route where none was expected, or missed one that was. */
  answers_ok: boolean;
  heap_used_mib: number;
  heap_bytes_per_route: number | null;
  table_bytes_per_route: number | null;
  linear_memory_bytes_per_route: number | null;
  /** Median of 3 forced full collections with the table live (null if gc() is not exposed). */
  full_gc_ms: number | null;
  /** GC entries observed while the lookups ran (null where the runtime has no 'gc' entries). */
  gc_during_lookups: Pauses | null;
  /**
   * The same fixed load of short-lived allocations run with the table live (and, for `none`, with
   * only the fixtures): how long it took and the collections it caused, by kind (null where the
   * runtime has no 'gc' entries).
   */
  alloc_load: { ms: number; scavenges: Pauses; mark_compacts: Pauses } | null;
  /** Mean bytes of a route's key (its uri, ASCII), to read bytes per route "beyond the key". */
  key_bytes_per_route: number | null;
}

export interface Pauses {
  count: number;
  total_ms: number;
  max_ms: number;
}

function pauses(durations: number[]): Pauses {
  return { count: durations.length, total_ms: durations.reduce((a, b) => a + b, 0), max_ms: durations.length ? Math.max(...durations) : 0 };
}

const gcEntriesSupported = () => (PerformanceObserver as unknown as { supportedEntryTypes?: string[] }).supportedEntryTypes?.includes("gc") ?? false;

/**
 * Collects 'gc' performance entries (Node) while `body` runs: durations by kind (minor =
 * scavenge, major = mark-compact). Entries arrive asynchronously, after synchronous work.
 */
async function observeGc(body: () => void): Promise<{ minor: number[]; major: number[]; all: number[] }> {
  const seen = { minor: [] as number[], major: [] as number[], all: [] as number[] };
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as { detail?: { kind?: number } }).detail?.kind ?? (e as unknown as { kind?: number }).kind;
      seen.all.push(e.duration);
      if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) seen.minor.push(e.duration);
      else if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) seen.major.push(e.duration);
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  body();
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  return seen;
}

/**
 * A fixed load of short-lived allocations, as a router makes per request (headers, buffers,
 * closures): 1,000 rounds of 2,000 small objects (about 200 KB a round), each round dropped before
 * the next, so almost nothing survives a scavenge. What the collections cost depends on the heap
 * they run beside: that is the figure.
 */
function allocationLoad(): number {
  let kept = 0;
  for (let round = 0; round < 1000; round++) {
    const batch: { id: number; name: string; tags: number[] }[] = [];
    for (let i = 0; i < 2000; i++) batch.push({ id: i, name: `req-${round}-${i}`, tags: [i, round] });
    kept += batch[round % 2000]!.tags[0]!;
  }
  return kept;
}

export interface MeasureOptions {
  contender: ContenderName | "none";
  size: number;
  quick: boolean;
}

function forceGc(): boolean {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    return true;
  }
  if (typeof Bun !== "undefined") {
    Bun.gc(true);
    return true;
  }
  return false;
}

const heapUsed = () => process.memoryUsage().heapUsed;
const runtimeName = () => (typeof Bun !== "undefined" ? `bun ${Bun.version}` : `node ${process.version}`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/** Runs `body` repeatedly (at least once) until `minMs` have passed; returns calls per second of `unitsPerRun`. */
function rate(minMs: number, unitsPerRun: number, body: () => number): number {
  let timed = 0;
  let runs = 0;
  do {
    timed += body();
    runs++;
  } while (timed < minMs);
  return (runs * unitsPerRun) / (timed / 1000);
}

/** A measurement with nothing measured yet: every figure null, answers assumed right. */
export function emptyMeasurement(runtime: string, contender: Measurement["contender"], size: number): Measurement {
  const none = () => ({ hot: null, warm: null, exact: null, path: null, wildcard: null, miss: null });
  return {
    runtime,
    contender,
    size,
    routes: 0,
    insert_per_s: null,
    bulk_insert_per_s: null,
    remove_per_s: null,
    lookup_ns: none(),
    lookup_spread: none(),
    answers_ok: true,
    heap_used_mib: 0,
    heap_bytes_per_route: null,
    table_bytes_per_route: null,
    linear_memory_bytes_per_route: null,
    full_gc_ms: null,
    gc_during_lookups: null,
    alloc_load: null,
    key_bytes_per_route: null,
  };
}

export async function measure(options: MeasureOptions): Promise<Measurement> {
  const { size, quick } = options;
  const lookupCount = quick ? 2_000 : 100_000;
  const rounds = quick ? 3 : 7;
  const minMs = quick ? 20 : 300;
  const allRoutes = makeRoutes(size);
  const sets = makeLookupSets(allRoutes, lookupCount);
  const gcExposed = forceGc();
  const result = emptyMeasurement(runtimeName(), options.contender, size);
  // The contender (for wasm: the compiled module and instance) exists before the heap baseline.
  const contender: Contender | null = options.contender === "none" ? null : makeContender(options.contender);
  const routes = contender === null ? [] : allRoutes.filter((r) => (r.kind !== "path" || contender.expresses.path) && (r.kind !== "wildcard" || contender.expresses.wildcard));
  forceGc();
  const heapBefore = heapUsed();
  if (contender !== null) {
    const c = contender;
    result.routes = routes.length;
    result.key_bytes_per_route = routes.reduce((sum, r) => sum + r.uri.length, 0) / Math.max(1, routes.length);
    result.insert_per_s = rate(minMs, routes.length, () => {
      const t = performance.now();
      c.build(routes);
      return performance.now() - t;
    });
    forceGc();
    forceGc();
    result.heap_bytes_per_route = (heapUsed() - heapBefore) / routes.length;
    const offHeap = c.offHeap?.();
    if (offHeap) {
      result.table_bytes_per_route = offHeap.tableBytes / routes.length;
      result.linear_memory_bytes_per_route = offHeap.linearMemoryBytes / routes.length;
    }
  }
  result.heap_used_mib = heapUsed() / 2 ** 20;
  if (gcExposed) {
    const fullGcTimes = [0, 1, 2].map(() => {
      const t = performance.now();
      forceGc();
      return performance.now() - t;
    });
    result.full_gc_ms = median(fullGcTimes);
  }
  if (gcEntriesSupported()) {
    let t = 0;
    const seen = await observeGc(() => {
      const start = performance.now();
      allocationLoad();
      t = performance.now() - start;
    });
    result.alloc_load = { ms: t, scavenges: pauses(seen.minor), mark_compacts: pauses(seen.major) };
  }
  if (contender !== null) {
    const c = contender;
    const usable: [LookupSetName, LookupSet, (set: LookupSet) => number][] = [
      ["hot", sets.hot, (set) => c.lookupAll(set)],
      // Past the answer cache where there is one; the same loop as `hot` for the others.
      ["warm", sets.warm, (set) => (c.lookupAllUncached ? c.lookupAllUncached(set) : c.lookupAll(set))],
      ["exact", sets.exact, (set) => c.lookupAll(set)],
      ["miss", sets.miss, (set) => c.lookupAll(set)],
    ];
    if (c.expresses.path) usable.push(["path", sets.path, (set) => c.lookupAll(set)]);
    if (c.expresses.wildcard) usable.push(["wildcard", sets.wildcard, (set) => c.lookupAll(set)]);
    const lookups = () => {
      for (const [name, set, lookupAll] of usable) {
        if (set.hosts.length === 0) continue;
        const hits = lookupAll(set); // warm-up, and a check that the contender answers right
        if (hits !== set.expectedHits) {
          result.answers_ok = false;
          console.error(`${c.name} ${name}: ${hits} hits, expected ${set.expectedHits}`);
        }
        const times: number[] = [];
        for (let i = 0; i < rounds; i++) {
          const t = performance.now();
          lookupAll(set);
          times.push(((performance.now() - t) * 1e6) / set.hosts.length);
        }
        const sum = summarize(times);
        result.lookup_ns[name] = sum.median;
        result.lookup_spread[name] = sum.spread;
      }
    };
    if (gcEntriesSupported()) result.gc_during_lookups = pauses((await observeGc(lookups)).all);
    else lookups();
    if (c.buildBulk) {
      result.bulk_insert_per_s = rate(minMs, routes.length, () => {
        const t = performance.now();
        c.buildBulk!(routes);
        return performance.now() - t;
      });
    }
    if (c.expresses.remove) {
      result.remove_per_s = rate(minMs, routes.length, () => {
        c.build(routes);
        const t = performance.now();
        c.removeAll(routes);
        return performance.now() - t;
      });
    }
  }
  return result;
}
