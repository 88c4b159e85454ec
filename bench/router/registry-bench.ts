// The route table on fixed fixtures: how long register, lookup, pruneStale and unregister take with
// 10,000 routes (2 endpoints each), with the WASM matcher and the reference matcher. Table changes
// must never stall the request path, so each operation's worst case is printed too, and the slowest
// single registration while a table grows to 1.1M routes.
//
//   ./node_modules/.bin/bun bench/router/registry-bench.ts

import { RouteRegistry } from "../../router/src/registry/route-registry.ts";
import { ReferenceMatcher } from "../../router/src/matcher/reference-matcher.ts";
import { loadWasmMatcher } from "../../router/src/matcher/wasm-matcher.ts";
import type { RouteMatcher } from "../../router/src/matcher/route-matcher.ts";

const ROUTES = 10_000;
const LOOKUPS = 1_000_000;

function fixtures() {
  const regs = [];
  for (let i = 0; i < ROUTES; i++) {
    const uris = [`app-${i}.apps.example.com`, `shared.example.com/svc-${i}`];
    regs.push({ host: "10.0.0.1", port: 20_000 + (i % 40_000), uris, app: `guid-${i}`, private_instance_id: `inst-${i}`, private_instance_index: "0" });
    regs.push({ host: "10.0.0.2", port: 20_000 + (i % 40_000), uris, app: `guid-${i}`, private_instance_id: `inst-${i}-b`, private_instance_index: "1" });
  }
  const requests: [string, string][] = [];
  for (let i = 0; i < 4096; i++) {
    const n = (i * 7919) % ROUTES;
    requests.push(i % 2 ? [`APP-${n}.apps.example.com:8080`, "/index.html?x=1"] : ["shared.example.com", `/svc-${n}/api/v1`]);
  }
  return { regs, requests };
}

function run(name: string, matcher: RouteMatcher) {
  const { regs, requests } = fixtures();
  const registry = new RouteRegistry(matcher);
  let worst = 0;
  let t = performance.now();
  let worstAt = 0;
  regs.forEach((r, i) => {
    const s = performance.now();
    registry.register(r, 0);
    const d = performance.now() - s;
    if (i >= 100 && d > worst) {
      worst = d;
      worstAt = i;
    }
  });
  const registerMs = performance.now() - t;
  t = performance.now();
  let hits = 0;
  for (let i = 0; i < LOOKUPS; i++) {
    const [h, p] = requests[i & 4095]!;
    if (registry.lookup(h, p)) hits++;
  }
  const lookupNs = ((performance.now() - t) * 1e6) / LOOKUPS;
  t = performance.now();
  registry.pruneStale(1); // nothing stale: the full scan
  const pruneScanMs = performance.now() - t;
  let worstSlice = 0;
  for (let done = false; !done; ) {
    const s = performance.now();
    done = registry.pruneStaleSlice(1, 1000).done;
    worstSlice = Math.max(worstSlice, performance.now() - s);
  }
  t = performance.now();
  for (const r of regs) registry.unregister(r);
  const unregisterMs = performance.now() - t;
  console.log(
    `${name.padEnd(10)} register ${((registerMs * 1000) / regs.length).toFixed(2)} µs/msg (worst after warm-up ${(worst * 1000).toFixed(0)} µs at #${worstAt})  ` +
      `lookup ${lookupNs.toFixed(0)} ns (${hits === LOOKUPS ? "all hit" : `${hits} hits`})  pruneStale scan ${pruneScanMs.toFixed(1)} ms (slices of 1000: worst ${worstSlice.toFixed(2)} ms)  ` +
      `unregister ${((unregisterMs * 1000) / regs.length).toFixed(2)} µs/msg  left ${registry.stats().routes}`,
  );
}

/**
 * The slowest single registration while a table grows to 1.1M routes (a distinct endpoint each), with
 * room reserved as the router reserves it: a registration is applied on the event loop, so its worst
 * case is a stall of every request in flight.
 */
function growth(matcher: RouteMatcher, routes: number) {
  const registry = new RouteRegistry(matcher, { reserveRoutes: 1 << 21 });
  const stalls: string[] = [];
  let worst = 0;
  const t = performance.now();
  for (let i = 0; i < routes; i++) {
    const msg = { host: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 61_000 + (i >> 24), uris: [`load-${i}.load.example.com`], app: `app-${i}`, private_instance_id: `inst-${i}`, private_instance_index: "0" };
    const s = performance.now();
    registry.register(msg, 0);
    const d = performance.now() - s;
    worst = Math.max(worst, d);
    if (d > 5) stalls.push(`#${i}: ${d.toFixed(1)} ms`);
  }
  console.log(
    `growing to ${(routes / 1e6).toFixed(1)}M routes (wasm): ${(((performance.now() - t) * 1000) / routes).toFixed(2)} µs/msg, slowest registration ${worst.toFixed(1)} ms; over 5 ms: ${stalls.join(", ") || "none"}`,
  );
}

run("wasm", await loadWasmMatcher());
run("reference", new ReferenceMatcher());
growth(await loadWasmMatcher(), 1_100_000);
