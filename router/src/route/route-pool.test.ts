import { describe, expect, test } from "bun:test";
import { ByteArena } from "./byte-arena.ts";
import { NO_TAGS, type EndpointInfo } from "./endpoint.ts";
import { EndpointStore } from "./endpoint-store.ts";
import { PoolStore } from "./pool-store.ts";
import type { RoutePool } from "./route-pool.ts";

const info = (port: number, over: Partial<EndpointInfo> = {}): EndpointInfo => ({
  host: "10.0.0.1",
  port,
  appId: "a",
  instanceId: `i${port}`,
  instanceIndex: "0",
  tags: NO_TAGS,
  staleThresholdMs: 120_000,
  loadBalancing: "round-robin",
  ...over,
});

function table(cap = 0) {
  const endpoints = new EndpointStore(new ByteArena(64));
  const pools = new PoolStore(new ByteArena(64), endpoints, cap);
  return { endpoints, pools };
}

/** a route a.com with n endpoints on ports 1..n, all registered at 0 */
function poolOf(n: number, cap = 0): { pool: RoutePool; pools: PoolStore; endpoints: EndpointStore } {
  const t = table(cap);
  const id = t.pools.create("a.com");
  for (let i = 1; i <= n; i++) t.pools.upsert(id, t.endpoints.add(info(i)), 0, 120_000);
  return { ...t, pool: t.pools.view(id) };
}

describe("RoutePool", () => {
  test("round-robin cycles through endpoints", () => {
    const { pool } = poolOf(3);
    const picks = Array.from({ length: 6 }, () => pool.pick({ now: 0 })!.port);
    expect(picks).toEqual([1, 2, 3, 1, 2, 3]);
  });

  test("a failed endpoint is skipped for 30 s", () => {
    const { pool } = poolOf(2);
    pool.markFailed(pool.endpoints[0]!, 0);
    expect([pool.pick({ now: 1 })!.port, pool.pick({ now: 1 })!.port]).toEqual([2, 2]);
    expect(new Set([pool.pick({ now: 30_001 })!.port, pool.pick({ now: 30_001 })!.port])).toEqual(new Set([1, 2]));
  });

  test("when every endpoint has failed, one is tried anyway", () => {
    const { pool } = poolOf(1);
    pool.markFailed(pool.endpoints[0]!, 0);
    expect(pool.pick({ now: 1 })!.port).toBe(1);
  });

  test("exclude skips endpoints already tried", () => {
    const { pool } = poolOf(2);
    const first = pool.pick({ now: 0 })!;
    expect(pool.pick({ now: 0, exclude: [first] })).not.toBe(first);
    expect(pool.pick({ now: 0, exclude: pool.endpoints })).toBeUndefined();
  });

  test("least-connection picks the endpoint with fewest requests in flight", () => {
    const { pool } = poolOf(3);
    pool.loadBalancing = "least-connection";
    pool.endpoints[0]!.inFlight = 5;
    pool.endpoints[1]!.inFlight = 1;
    pool.endpoints[2]!.inFlight = 3;
    expect(pool.pick({ now: 0 })!.port).toBe(2);
  });

  test("per-endpoint connection cap", () => {
    const { pool } = poolOf(2, 1);
    pool.endpoints[0]!.inFlight = 1;
    expect(pool.pick({ now: 0 })!.port).toBe(2);
    pool.endpoints[1]!.inFlight = 1;
    expect(pool.pick({ now: 0 })).toBeUndefined();
  });

  test("sticky __VCAP_ID__ picks that instance while it is here", () => {
    const { pool } = poolOf(3);
    expect(pool.pick({ now: 0, stickyInstanceId: "i3" })!.port).toBe(3);
    expect(pool.pick({ now: 0, stickyInstanceId: "i3" })!.port).toBe(3);
    expect(pool.pick({ now: 0, stickyInstanceId: "gone" })).toBeDefined();
  });

  test("the same row always gives the same view, and views see the row's counts", () => {
    const { pool, endpoints } = poolOf(2);
    const e = pool.pick({ now: 0 })!;
    expect(pool.endpoints[e.port - 1]).toBe(e);
    e.inFlight++;
    expect(endpoints.inFlight[e.id]).toBe(1);
  });

  test("a route's view stops picking once the route left the table", () => {
    const { pool, pools } = poolOf(1);
    pools.remove(pool.id, pool.endpoints[0]!.id);
    pools.destroy(pool.id);
    expect(pool.inTable).toBe(false);
    expect(pool.pick({ now: 0 })).toBeUndefined();
    const id = pools.create("b.com"); // the id is reused by another route
    expect(id).toBe(pool.id);
    expect(pools.view(id)).not.toBe(pool);
  });
});

describe("PoolStore registrations", () => {
  test("stale endpoints by their own threshold", () => {
    const { pools, endpoints } = table();
    const id = pools.create("a.com");
    const [a, b] = [endpoints.add(info(1)), endpoints.add(info(2))];
    pools.upsert(id, a, 0, 120_000);
    pools.upsert(id, b, 0, 5_000);
    expect(pools.staleRows(id, 6_000)).toEqual([b]);
    pools.remove(id, b);
    expect(pools.sizeOf(id)).toBe(1);
    expect(pools.staleRows(id, 6_000)).toEqual([]);
    expect(pools.staleRows(id, 120_001)).toEqual([a]);
  });

  test("registration times stay with their endpoint through removals and re-registrations", () => {
    const { pools, endpoints } = table();
    const id = pools.create("a.com");
    const [a, b, c] = [endpoints.add(info(1)), endpoints.add(info(2)), endpoints.add(info(3))];
    pools.upsert(id, a, 0, 5_000);
    pools.upsert(id, b, 0, 5_000);
    pools.upsert(id, c, 0, 60_000);
    expect(pools.remove(id, b)).toBe(true);
    expect(pools.remove(id, b)).toBe(false);
    expect(pools.upsert(id, a, 4_000, 5_000)).toBe(false); // heard again: refreshed, not added
    expect(pools.sizeOf(id)).toBe(2);
    expect(pools.staleRows(id, 6_000)).toEqual([]);
    expect(pools.staleRows(id, 9_500)).toEqual([a]);
    pools.remove(id, a); // back to a one-endpoint route: c keeps its own time and threshold
    expect(pools.rowsOf(id)).toEqual([c]);
    expect(pools.staleRows(id, 60_000)).toEqual([]);
    expect(pools.staleRows(id, 60_001)).toEqual([c]);
    pools.touchAll(70_000);
    expect(pools.staleRows(id, 130_000)).toEqual([]);
    expect(pools.staleRows(id, 130_001)).toEqual([c]);
  });

  test("routes are found by key until destroyed, and their keys come back as stored", () => {
    const { pools } = table();
    const ids = ["a.com", "b.com/api", "ünïcode.example/ß"].map((k) => pools.create(k));
    expect(ids.map((id) => pools.keyOf(id))).toEqual(["a.com", "b.com/api", "ünïcode.example/ß"]);
    expect(pools.find("b.com/api")).toBe(ids[1]!);
    pools.destroy(ids[1]!);
    expect(pools.find("b.com/api")).toBe(-1);
    expect(pools.find("a.com")).toBe(ids[0]!);
    expect(pools.size).toBe(2);
  });
});

describe("EndpointStore", () => {
  test("finds host:port, updates in place, and a used endpoint's view follows a re-registration", () => {
    const { endpoints } = table();
    const row = endpoints.add(info(61001, { tags: { component: "x" } }));
    expect(endpoints.find("10.0.0.1", 61001)).toBe(row);
    expect(endpoints.find("10.0.0.1", 61002)).toBe(-1);
    const view = endpoints.view(row);
    expect([view.host, view.port, view.key, view.appId, view.instanceId]).toEqual(["10.0.0.1", 61001, "10.0.0.1:61001", "a", "i61001"]);
    expect(view.headerBytes).toContain("X-CF-InstanceID: i61001\r\n");
    endpoints.update(row, info(61001, { instanceId: "i-new", staleThresholdMs: 5_000 }));
    expect(view.instanceId).toBe("i-new");
    expect(view.headerBytes).toContain("X-CF-InstanceID: i-new\r\n");
    expect(view.staleThresholdMs).toBe(5_000);
    expect(endpoints.details(row).tags).toEqual(NO_TAGS);
  });

  test("a registration's strings come back exactly, whatever they hold", () => {
    const { endpoints } = table();
    const odd = { appId: "a,b;c", instanceId: "ünï,;0", instanceIndex: "", tags: { "k,;": "v\u0000", component: "route-emitter" } };
    const row = endpoints.add(info(1, odd));
    expect(endpoints.details(row)).toEqual(odd);
    const plain = endpoints.add(info(2, { appId: "", instanceId: "", instanceIndex: "7", tags: {} }));
    expect(endpoints.details(plain)).toEqual({ appId: "", instanceId: "", instanceIndex: "7", tags: NO_TAGS });
  });

  test("a removed endpoint's view keeps its own counts, and its row can hold another endpoint", () => {
    const { endpoints } = table();
    const row = endpoints.add(info(1));
    const view = endpoints.view(row);
    view.inFlight = 2;
    expect(endpoints.remove(row)).toBe(view);
    expect(view.id).toBe(-1);
    const other = endpoints.add(info(2));
    expect(other).toBe(row);
    view.inFlight--; // a request that was in flight on the removed endpoint finishes
    expect(view.inFlight).toBe(1);
    expect(endpoints.inFlight[other]).toBe(0);
    expect(endpoints.view(other)).not.toBe(view);
    expect(endpoints.find("10.0.0.1", 1)).toBe(-1);
  });
});
