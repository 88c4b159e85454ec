import { describe, expect, test } from "bun:test";
import { ByteArena } from "./byte-arena.ts";
import { NO_TAGS, type EndpointInfo } from "./endpoint.ts";
import { EndpointStore } from "./endpoint-store.ts";
import { PoolStore } from "./pool-store.ts";
import type { RoutePool } from "./route-pool.ts";
import { RouteTableReader } from "./table-reader.ts";
import { TableSeqlock } from "./table-seqlock.ts";

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
  const arena = new ByteArena(64);
  const endpoints = new EndpointStore(arena);
  const pools = new PoolStore(arena, endpoints);
  // no matcher: these tests reach routes by id
  const reader = new RouteTableReader({ control: TableSeqlock.newControl(), arena: arena.bytes, pools: pools.columns, endpoints: endpoints.columns, maxConnsPerEndpoint: cap }, { lookup: () => -1 }, 0);
  return { endpoints, pools, reader };
}

/** a route a.com with n endpoints on ports 1..n, all registered at 0 */
function poolOf(n: number, cap = 0): { pool: RoutePool; pools: PoolStore; endpoints: EndpointStore; reader: RouteTableReader } {
  const t = table(cap);
  const id = t.pools.create("a.com");
  for (let i = 1; i <= n; i++) t.pools.upsert(id, t.endpoints.add(info(i)), 0, 120_000);
  return { ...t, pool: t.reader.lookupId(id)! };
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
    expect(endpoints.inFlight[0]![e.id]).toBe(1);
    expect(endpoints.inFlightOf(e.id)).toBe(1);
  });

  test("a route's view stops picking once the route left the table", () => {
    const { pool, pools, reader } = poolOf(1);
    pools.remove(pool.id, pool.endpoints[0]!.id);
    pools.destroy(pool.id);
    expect(pool.inTable).toBe(false);
    expect(pool.pick({ now: 0 })).toBeUndefined();
    const id = pools.create("b.com"); // the id is reused by another route
    expect(id).toBe(pool.id);
    expect(reader.lookupId(id)).not.toBe(pool);
    expect(reader.lookupId(id)!.key).toBe("b.com");
  });

  test("least-connection and the cap count every worker's requests in flight (issue 16)", () => {
    const arena = new ByteArena(64);
    const endpoints = new EndpointStore(arena, 16, 2);
    const pools = new PoolStore(arena, endpoints);
    const share = { control: TableSeqlock.newControl(), arena: arena.bytes, pools: pools.columns, endpoints: endpoints.columns, maxConnsPerEndpoint: 2 };
    const [w0, w1] = [0, 1].map((slot) => new RouteTableReader(share, { lookup: () => -1 }, slot));
    const id = pools.create("a.com");
    for (let i = 1; i <= 2; i++) pools.upsert(id, endpoints.add(info(i)), 0, 120_000);
    pools.setLoadBalancing(id, "least-connection");
    const [p0, p1] = [w0!.lookupId(id)!, w1!.lookupId(id)!];
    p0.endpoints[0]!.inFlight = 1; // worker 0: one on port 1
    p1.endpoints[0]!.inFlight = 1; // worker 1: another
    expect(p0.pick({ now: 0 })!.port).toBe(2); // two on port 1 in all: at the cap, and more loaded
    p1.endpoints[1]!.inFlight = 2;
    expect(p0.pick({ now: 0 })).toBeUndefined();
    expect(p1.endpoints[0]!.inFlight).toBe(1); // each view counts its own thread's
    p0.markFailed(p0.endpoints[0]!, 0); // a failure mark is one for every worker
    expect(p1.endpoints[0]!.isFailed(1)).toBe(true);
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
    const { endpoints, pools, reader } = table();
    const row = endpoints.add(info(61001, { tags: { component: "x" } }));
    expect(endpoints.find("10.0.0.1", 61001)).toBe(row);
    expect(endpoints.find("10.0.0.1", 61002)).toBe(-1);
    const id = pools.create("a.com");
    pools.upsert(id, row, 0, 120_000);
    const view = reader.lookupId(id)!.endpoints[0]!;
    expect([view.host, view.port, view.key, view.appId, view.instanceId]).toEqual(["10.0.0.1", 61001, "10.0.0.1:61001", "a", "i61001"]);
    expect(view.headerBytes).toContain("X-CF-InstanceID: i61001\r\n");
    expect(endpoints.update(row, info(61001, { instanceId: "i-new", staleThresholdMs: 5_000 }))).toBe(true);
    expect(reader.lookupId(id)!.pick({ now: 0 })).toBe(view); // the view is refreshed where a request finds it
    expect(view.instanceId).toBe("i-new");
    expect(view.headerBytes).toContain("X-CF-InstanceID: i-new\r\n");
    expect(endpoints.staleMs[row]).toBe(5_000);
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

  test("a removed endpoint's row holds no other endpoint while a request is in flight on it (issue 16)", () => {
    const { endpoints, pools, reader } = table();
    const row = endpoints.add(info(1));
    const id = pools.create("a.com");
    pools.upsert(id, row, 0, 120_000);
    const view = reader.lookupId(id)!.pick({ now: 0 })!;
    view.inFlight = 2;
    pools.remove(id, row);
    pools.destroy(id);
    endpoints.remove(row);
    expect(view.inTable).toBe(false);
    const other = endpoints.add(info(2));
    expect(other).not.toBe(row); // two requests still count themselves off the old row
    view.inFlight -= 2; // they finish
    endpoints.remove(other);
    expect([endpoints.add(info(3)), endpoints.add(info(4))]).toContain(row); // free again
    expect(endpoints.find("10.0.0.1", 1)).toBe(-1);
  });
});
