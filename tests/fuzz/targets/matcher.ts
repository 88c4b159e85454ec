// The route matcher differential: the WASM matcher (router/src/matcher/wasm-matcher.ts: the writer, and a
// reader attached to its shared memory, as the router's workers use it) against the TypeScript reference
// (reference-matcher.ts) on random tables and requests. Keys and hosts are drawn from few labels and
// segments so that routes collide, plus the edges: case, ports, trailing dots, wildcards, percent signs,
// non-ASCII, DEL, over-long hosts and paths. Property: every insert, remove and lookup answers the same,
// matched lengths and sizes agree; any difference is a failure.

import * as fc from "fast-check";
import { ReferenceMatcher } from "../../../router/src/matcher/reference-matcher.ts";
import { loadWasmMatcherSync, WasmMatcherReader, type WasmMatcher } from "../../../router/src/matcher/wasm-matcher.ts";
import { jsonFile, readJson, violated, type FuzzTarget } from "../lib/fuzz-target.ts";

export type MatcherOp =
  | { op: "insert"; uri: string; id: number }
  | { op: "remove"; uri: string }
  | { op: "lookup"; host: string; path: string }
  | { op: "insertMany"; entries: [string, number][] }
  | { op: "clear" };

const label = fc.constantFrom("a", "b", "api", "app", "A", "B", "xn--bcher-kva", "1", "-", "a-b", "é", "x".repeat(63), "x".repeat(64), "");
const host = fc.array(label, { minLength: 1, maxLength: 4 }).map((ls) => ls.join("."));
const wild = fc.oneof(host, host.map((h) => `*.${h}`), fc.constantFrom("*", "*.com", "a.*.b", "**.a", "*a.b"));
const decoration = fc.constantFrom("", "", "", ".", ":8080", ":x", ":", "..", " ", "\u007f", ":65536");
const segment = fc.constantFrom("", "x", "X", "api", "v1", "..", ".", "%2F", "%41", "é", "a b", "a?b", "a#b", "*", "~", "x".repeat(100));
const path = fc.array(segment, { maxLength: 5 }).map((s) => (s.length ? "/" + s.join("/") : ""));
const goodLabel = fc.constantFrom("a", "b", "api", "App", "x1");
const goodHost = fc.array(goodLabel, { minLength: 1, maxLength: 3 }).map((ls) => ls.join("."));
const goodSegment = fc.constantFrom("x", "api", "V1", "%2F", "é", "..");
const goodPath = fc.array(goodSegment, { maxLength: 3 }).map((s) => (s.length ? "/" + s.join("/") : ""));
const routeUri = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.oneof(goodHost, goodHost.map((h) => `*.${h}`)), fc.constantFrom("", "", ".", ":8080"), goodPath, fc.constantFrom("", "", "/", "?q=1")).map(([h, d, p, t]) => `${h}${d}${p}${t}`) },
  fc.tuple(wild, decoration, path, fc.constantFrom("", "", "/", "?q=1", "#f")).map(([h, d, p, t]) => `${h}${d}${p}${t}`),
  fc.constantFrom("x".repeat(254), `a.com/${"p".repeat(4097)}`, `a.com/${"p".repeat(4095)}`, "", "/", "a.com//", "A.COM/API/", "[::1]:80/x"),
  fc.string({ maxLength: 20 }),
);
const requestHost = fc.oneof(
  fc.tuple(host, decoration).map(([h, d]) => h + d),
  fc.constantFrom("[::1]:8080", "[::1]", "", "*.a", "A.B.", "a.b:", "x".repeat(1025), "a..b", "\u00e9.a"),
  fc.string({ maxLength: 12 }),
);
const requestPath = fc.oneof(
  fc.tuple(path, fc.constantFrom("", "/", "?x=/a", "#/a", "//", "/?")).map(([p, t]) => (p || "/") + t),
  fc.constantFrom("*", "http://a/x", "", "x", "/".repeat(9000), "/" + "p".repeat(9000), "/é/" + "é".repeat(5000)),
  fc.string({ maxLength: 20 }),
);
const id = fc.oneof(fc.nat({ max: 50 }), fc.constantFrom(-1, 0x7fffffff, 0x80000000, 1.5));

/** A request aimed at a route key: its host (decorated: case, port, dot) and its path with a tail. */
function requestFor(uri: string, decoration: string, upper: boolean, tail: string): { host: string; path: string } {
  const slash = uri.indexOf("/");
  let host = slash < 0 ? uri : uri.slice(0, slash);
  if (host.startsWith("*.")) host = "sub" + host.slice(1);
  host = (upper ? host.toUpperCase() : host) + decoration;
  return { host, path: (slash < 0 ? "/" : uri.slice(slash)) + tail };
}

/** Ops over a small set of keys, so that lookups hit and inserts replace and removes find. */
export const matcherInput: fc.Arbitrary<MatcherOp[]> = fc.array(routeUri, { minLength: 1, maxLength: 8 }).chain((keys) => {
  const key = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...keys) }, { weight: 1, arbitrary: routeUri });
  const aimed = fc.tuple(fc.constantFrom(...keys), fc.oneof({ weight: 4, arbitrary: fc.constantFrom("", ".", ":8080") }, decoration), fc.boolean(), fc.constantFrom("", "", "/", "/x", "/X/y", "x", "?q=1", "#f", "//", "/..")).map(([k, d, u, t]) => ({ op: "lookup" as const, ...requestFor(k, d, u, t) }));
  const op: fc.Arbitrary<MatcherOp> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant("insert" as const), uri: key, id }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("remove" as const), uri: key }) },
    { weight: 12, arbitrary: aimed },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("lookup" as const), host: requestHost, path: requestPath }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("insertMany" as const), entries: fc.array(fc.tuple(key, id), { maxLength: 6 }) }) },
    { weight: 1, arbitrary: fc.constant({ op: "clear" as const }) },
  );
  return fc.array(op, { minLength: 1, maxLength: 60 });
});

let wasm: WasmMatcher | undefined;
/** One reader for the run: each shareWithReader() takes a reader region of the writer's memory for good. */
let reader: WasmMatcherReader | undefined;

/** Runs the ops on a fresh reference and on the (cleared, reused) WASM writer and a reader of it. */
export function checkMatcher(ops: MatcherOp[]): void {
  wasm ??= loadWasmMatcherSync();
  reader ??= WasmMatcherReader.attach(wasm.shareWithReader());
  wasm.clear();
  const ref = new ReferenceMatcher();
  ops.forEach((o, n) => {
    const at = `op ${n} ${JSON.stringify(o).slice(0, 300)}`;
    switch (o.op) {
      case "insert": {
        const want = ref.insert(o.uri, o.id);
        const got = wasm!.insert(o.uri, o.id);
        if (got !== want) violated(`${at}: wasm insert answered ${got}, the reference ${want}`);
        break;
      }
      case "remove": {
        const want = ref.remove(o.uri);
        const got = wasm!.remove(o.uri);
        if (got !== want) violated(`${at}: wasm remove answered ${got}, the reference ${want}`);
        break;
      }
      case "lookup": {
        const want = ref.lookup(o.host, o.path);
        for (const [who, m] of [["writer", wasm!], ["reader", reader!]] as const) {
          for (const uncached of [false, true]) {
            const got = uncached ? m.lookupUncached(o.host, o.path) : m.lookup(o.host, o.path);
            if (got !== want) violated(`${at}: wasm ${who}${uncached ? " (uncached)" : ""} found ${got}, the reference ${want}`);
            if (want >= 0 && m.lastMatchedLength !== ref.lastMatchedLength) violated(`${at}: wasm ${who} matched ${m.lastMatchedLength} bytes, the reference ${ref.lastMatchedLength}`);
          }
        }
        break;
      }
      case "insertMany": {
        let want = 0;
        for (const [uri, i] of o.entries) if (ref.insert(uri, i)) want++;
        const got = wasm!.insertMany(o.entries);
        if (got !== want) violated(`${at}: wasm insertMany accepted ${got}, the reference ${want}`);
        break;
      }
      case "clear":
        ref.clear();
        wasm!.clear();
        break;
    }
    if (wasm!.size !== ref.size) violated(`${at}: wasm holds ${wasm!.size} routes, the reference ${ref.size}`);
  });
}

export const matcherTarget: FuzzTarget<MatcherOp[]> = {
  name: "matcher",
  describe: "WASM matcher (writer and shared-memory reader) against the TypeScript reference on random tables and requests",
  arbitrary: matcherInput,
  check: checkMatcher,
  save: (ops) => jsonFile(ops),
  load: (_n, bytes) => readJson<MatcherOp[]>(bytes),
};
