// Issue 4's targets for the route matcher, judged from a bench run: one table that says, per target,
// what was measured and by how much it is met or missed. The bench writes it into
// bench/results/matcher.md and into wasm/README.md (between the markers below), so the README's
// figures always come from a run and never go stale by hand.

import { readFileSync, writeFileSync } from "node:fs";
import type { Measurement } from "./measure-contender.ts";
import type { LookupSetName } from "./route-fixtures.ts";

export const TARGET_COLUMNS = ["target", "runtime", "measured", "factor (≥ 1: met)", "met"];

const LOOKUP_TARGET_NS = 150;
const REFERENCE_FACTOR = 2;
const INSERTS_PER_S = 1_000_000;
const BYTES_PER_ROUTE = 100;
/** "The JS heap does not grow with the table": at most this much heap per route (1 MB at 1M). */
const HEAP_BYTES_PER_ROUTE = 1;

const SETS: [LookupSetName, string][] = [
  ["hot", "hot exact (JS answer cache)"],
  ["warm", "warm exact, uncached"],
  ["exact", "exact host, uniform"],
  ["path", "context path, uniform"],
  ["wildcard", "wildcard, uniform"],
  ["miss", "miss"],
];

function num(v: number, digits = 0): string {
  return v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function factor(v: number): string {
  return `${v.toFixed(2)}×`;
}

/** The table's rows for the largest table size the run measured with wasm (1M in a full run). */
export function judgeTargets(results: readonly Measurement[]): { size: number; rows: string[][] } {
  const wasmRows = results.filter((m) => m.contender === "wasm");
  const size = Math.max(0, ...wasmRows.map((m) => m.size));
  const rows: string[][] = [];
  for (const wasm of wasmRows.filter((m) => m.size === size)) {
    const runtime = wasm.runtime;
    const reference = results.find((m) => m.contender === "reference" && m.size === size && m.runtime === runtime);
    for (const [set, label] of SETS) {
      const ns = wasm.lookup_ns[set];
      if (ns === null) continue;
      const f = LOOKUP_TARGET_NS / ns;
      rows.push([`≤ ${LOOKUP_TARGET_NS} ns per lookup, crossing included: ${label}`, runtime, `${num(ns)} ns`, factor(f), f >= 1 ? "yes" : "no"]);
    }
    if (reference) {
      for (const [set, label] of SETS) {
        const ns = wasm.lookup_ns[set];
        const ref = reference.lookup_ns[set];
        if (ns === null || ref === null) continue;
        const speedup = ref / ns;
        rows.push([`≥ ${REFERENCE_FACTOR}× the TypeScript reference: ${label}`, runtime, `${num(ref)} / ${num(ns)} ns = ${speedup.toFixed(2)}×`, factor(speedup / REFERENCE_FACTOR), speedup >= REFERENCE_FACTOR ? "yes" : "no"]);
      }
    }
    for (const [rate, label] of [[wasm.insert_per_s, "insert"], [wasm.bulk_insert_per_s, "insertMany"]] as const) {
      if (rate === null) continue;
      rows.push([`≥ 1M inserts/s: ${label}`, runtime, `${num(rate)}/s`, factor(rate / INSERTS_PER_S), rate >= INSERTS_PER_S ? "yes" : "no"]);
    }
    const key = wasm.key_bytes_per_route;
    if (key !== null) {
      for (const [bytes, label] of [[wasm.table_bytes_per_route, "the table's vectors"], [wasm.linear_memory_bytes_per_route, "all of linear memory"]] as const) {
        if (bytes === null) continue;
        const beyond = bytes - key;
        rows.push([`≤ ${BYTES_PER_ROUTE} B/route beyond the key's ${num(key, 1)} B: ${label}`, runtime, `${num(bytes, 1)} − ${num(key, 1)} = ${num(beyond, 1)} B`, factor(BYTES_PER_ROUTE / beyond), beyond <= BYTES_PER_ROUTE ? "yes" : "no"]);
      }
    }
    if (wasm.heap_bytes_per_route !== null) {
      const heap = wasm.heap_bytes_per_route;
      const ref = reference?.heap_bytes_per_route;
      // Bun's heapUsed counts wasm linear memory (twice): its figure is not JS heap.
      const bun = runtime.startsWith("bun");
      rows.push([
        `JS heap does not grow with the table (≤ ${HEAP_BYTES_PER_ROUTE} B/route)`,
        runtime,
        `${num(heap, 2)} B/route${ref !== undefined && ref !== null ? ` (reference ${num(ref)})` : ""}${bun ? "; Bun counts linear memory as heap" : ""}`,
        "—",
        bun ? "n/a" : heap <= HEAP_BYTES_PER_ROUTE ? "yes" : "no",
      ]);
    }
  }
  return { size, rows };
}

export const README_START = "<!-- matcher-bench:targets:start -->";
export const README_END = "<!-- matcher-bench:targets:end -->";

/** Replaces the text between the markers in `path` (a README) with `body`; false if no markers. */
export function writeBetweenMarkers(path: string, body: string): boolean {
  const text = readFileSync(path, "utf8");
  const start = text.indexOf(README_START);
  const end = text.indexOf(README_END);
  if (start < 0 || end < start) return false;
  writeFileSync(path, `${text.slice(0, start + README_START.length)}\n${body.trim()}\n${text.slice(end)}`);
  return true;
}
