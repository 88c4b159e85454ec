// The route table (typed-array rows, arena, key indexes, views) against a plain model made of Maps,
// over random registrations, unregistrations, re-registrations with new details and pruning: after
// every step both hold the same routes, each with the same endpoints and details.

import { describe, expect, test } from "bun:test";
import type { RouterRegister } from "../../../bus/index.ts";
import { ReferenceMatcher } from "../matcher/reference-matcher.ts";
import { RouteRegistry } from "./route-registry.ts";

type ModelEndpoint = { app: string; instance: string; thresholdMs: number };
/** route key → endpoint key → when that endpoint last registered the route, and its threshold */
type Model = Map<string, Map<string, { at: number; thresholdMs: number }>>;

function run(seed: number, steps: number) {
  let s = seed;
  const rand = (n: number) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % n);
  const registry = new RouteRegistry(new ReferenceMatcher(), { defaultStaleThresholdMs: 50_000 });
  const routes: Model = new Map();
  const endpoints = new Map<string, ModelEndpoint>();
  const uris = Array.from({ length: 40 }, (_, i) => (i % 5 === 4 ? `app${i % 20}.example.com/p${i}` : `app${i % 20}.example.com`));
  let now = 0;
  const msg = (host: string, port: number, uriList: string[], over: Partial<RouterRegister> = {}): RouterRegister => ({
    host, port, uris: uriList, app: `app-${rand(3)}`, private_instance_id: `inst-${rand(4)}`, private_instance_index: "0", ...over,
  });
  const dropOrphans = () => {
    for (const key of [...endpoints.keys()]) if (![...routes.values()].some((m) => m.has(key))) endpoints.delete(key);
  };

  for (let step = 0; step < steps; step++) {
    now += rand(5_000);
    const host = `10.0.0.${rand(6)}`;
    const port = 61_000 + rand(3);
    const key = `${host}:${port}`;
    const some = Array.from({ length: 1 + rand(3) }, () => uris[rand(uris.length)]!);
    const op = rand(10);
    if (op < 6) {
      const threshold = rand(3) === 0 ? 10 + rand(40) : undefined;
      const m = msg(host, port, some, threshold === undefined ? {} : { stale_threshold_in_seconds: threshold });
      registry.register(m, now);
      const thresholdMs = threshold === undefined ? 50_000 : threshold * 1000;
      endpoints.set(key, { app: m.app!, instance: m.private_instance_id!, thresholdMs });
      for (const u of some) {
        const r = routes.get(u) ?? new Map();
        r.set(key, { at: now, thresholdMs });
        routes.set(u, r);
      }
    } else if (op < 9) {
      registry.unregister(msg(host, port, some));
      if (endpoints.has(key))
        for (const u of some) {
          routes.get(u)?.delete(key);
          if (routes.get(u)?.size === 0) routes.delete(u);
        }
      dropOrphans();
    } else {
      registry.pruneStale(now);
      for (const [u, m] of routes) {
        for (const [k, seen] of m) if (now - seen.at > seen.thresholdMs) m.delete(k);
        if (m.size === 0) routes.delete(u);
      }
      dropOrphans();
    }

    expect(registry.stats(), `step ${step}`).toEqual({ routes: routes.size, endpoints: endpoints.size });
    const snapshot = registry.snapshot();
    expect(Object.keys(snapshot).sort()).toEqual([...routes.keys()].sort());
    for (const [u, m] of routes) {
      const got = snapshot[u]!.map((e) => [e.address, e.app_id, e.private_instance_id]).sort();
      const want = [...m.keys()].map((k) => [k, endpoints.get(k)!.app, endpoints.get(k)!.instance]).sort();
      expect(got, `step ${step}: ${u}`).toEqual(want);
      const [host0, path0] = u.includes("/") ? [u.slice(0, u.indexOf("/")), u.slice(u.indexOf("/"))] : [u, "/"];
      const pool = registry.lookup(host0, path0)!;
      expect(pool.key).toBe(u);
      const picked = pool.pick({ now })!;
      expect(m.has(picked.key), `step ${step}: picked ${picked.key} for ${u}`).toBe(true);
      expect([picked.appId, picked.instanceId]).toEqual([endpoints.get(picked.key)!.app, endpoints.get(picked.key)!.instance]);
    }
  }
}

describe("RouteRegistry against a model of Maps (issue 5)", () => {
  for (const seed of [1, 2, 3]) test(`random registrations, unregistrations and pruning agree (seed ${seed})`, () => run(seed, 3_000));
});
