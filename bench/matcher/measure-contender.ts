// Measures one contender at one table size in the current process: build and remove rates, lookup ns
// (including, for wasm, the JS -> wasm crossing), heap and linear-memory bytes, and GC pauses.

import { PerformanceObserver } from "node:perf_hooks";
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
  gc_during_lookups: { count: number; total_ms: number; max_ms: number } | null;
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

export async function measure(options: MeasureOptions): Promise<Measurement> {
  const { size, quick } = options;
  const lookupCount = quick ? 2_000 : 100_000;
  const rounds = quick ? 3 : 7;
  const minMs = quick ? 20 : 300;
  const allRoutes = makeRoutes(size);
  const sets = makeLookupSets(allRoutes, lookupCount);
  const gcExposed = forceGc();
  const result: Measurement = {
    runtime: runtimeName(),
    contender: options.contender,
    size,
    routes: 0,
    insert_per_s: null,
    bulk_insert_per_s: null,
    remove_per_s: null,
    lookup_ns: { hot: null, exact: null, path: null, wildcard: null, miss: null },
    lookup_spread: { hot: null, exact: null, path: null, wildcard: null, miss: null },
    answers_ok: true,
    heap_used_mib: 0,
    heap_bytes_per_route: null,
    table_bytes_per_route: null,
    linear_memory_bytes_per_route: null,
    full_gc_ms: null,
    gc_during_lookups: null,
  };
  // The contender (for wasm: the compiled module and instance) exists before the heap baseline.
  const contender: Contender | null = options.contender === "none" ? null : makeContender(options.contender);
  const routes = contender === null ? [] : allRoutes.filter((r) => (r.kind !== "path" || contender.expresses.path) && (r.kind !== "wildcard" || contender.expresses.wildcard));
  forceGc();
  const heapBefore = heapUsed();
  if (contender !== null) {
    const c = contender;
    result.routes = routes.length;
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
    const pauses = [0, 1, 2].map(() => {
      const t = performance.now();
      forceGc();
      return performance.now() - t;
    });
    result.full_gc_ms = median(pauses);
  }
  if (contender !== null) {
    const c = contender;
    const gcEntries: number[] = [];
    let observer: PerformanceObserver | null = null;
    if ((PerformanceObserver as unknown as { supportedEntryTypes?: string[] }).supportedEntryTypes?.includes("gc")) {
      observer = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) gcEntries.push(e.duration);
      });
      observer.observe({ entryTypes: ["gc"] });
    }
    const usable: [LookupSetName, LookupSet][] = [["hot", sets.hot], ["exact", sets.exact], ["miss", sets.miss]];
    if (c.expresses.path) usable.push(["path", sets.path]);
    if (c.expresses.wildcard) usable.push(["wildcard", sets.wildcard]);
    for (const [name, set] of usable) {
      if (set.hosts.length === 0) continue;
      const hits = c.lookupAll(set); // warm-up, and a check that the contender answers right
      if (hits !== set.expectedHits) {
        result.answers_ok = false;
        console.error(`${c.name} ${name}: ${hits} hits, expected ${set.expectedHits}`);
      }
      const times: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const t = performance.now();
        c.lookupAll(set);
        times.push(((performance.now() - t) * 1e6) / set.hosts.length);
      }
      const sum = summarize(times);
      result.lookup_ns[name] = sum.median;
      result.lookup_spread[name] = sum.spread;
    }
    if (observer) {
      // Entries are delivered asynchronously, after the synchronous loops above.
      await new Promise((resolve) => setTimeout(resolve, 20));
      observer.disconnect();
      result.gc_during_lookups = {
        count: gcEntries.length,
        total_ms: gcEntries.reduce((a, b) => a + b, 0),
        max_ms: gcEntries.length ? Math.max(...gcEntries) : 0,
      };
    }
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
