import { describe, expect, test } from "bun:test";
import { ReferenceMatcher } from "../matcher/reference-matcher.ts";
import { MAX_STRING_BYTES } from "../route/byte-arena.ts";
import { RouteRegistry } from "./route-registry.ts";
import { normaliseRouteKey } from "./route-key.ts";
import type { RouterRegister } from "../../../bus/index.ts";

const reg = (over: Partial<RouterRegister> = {}): RouterRegister => ({
  host: "10.0.0.1",
  port: 61001,
  uris: ["app.example.com"],
  app: "app-guid",
  private_instance_id: "inst-1",
  private_instance_index: "0",
  ...over,
});

describe("route keys", () => {
  test("normalise host case, trailing slash, query", () => {
    expect(normaliseRouteKey("App.Example.COM/API/?x=1")).toBe("app.example.com/api");
    expect(normaliseRouteKey("app.example.com/")).toBe("app.example.com");
    expect(normaliseRouteKey("")).toBeUndefined();
  });
});

describe("RouteRegistry", () => {
  test("register makes a route that lookup finds by Host and path", () => {
    const r = new RouteRegistry(new ReferenceMatcher());
    r.register(reg({ uris: ["app.example.com", "app.example.com/api"] }), 0);
    expect(r.lookup("APP.example.com:8080", "/")?.key).toBe("app.example.com");
    expect(r.lookup("app.example.com", "/api/v1?q")?.key).toBe("app.example.com/api");
    expect(r.lookup("other.example.com", "/")).toBeUndefined();
    expect(r.stats()).toEqual({ routes: 2, endpoints: 1 });
  });

  test("the same host:port registered again updates in place", () => {
    const r = new RouteRegistry(new ReferenceMatcher());
    r.register(reg(), 0);
    const e = r.lookup("app.example.com", "/")!.endpoints[0]!;
    r.register(reg({ app: "new-guid", private_instance_id: "inst-2" }), 1000);
    const pool = r.lookup("app.example.com", "/")!;
    expect(pool.size).toBe(1);
    expect(pool.endpoints[0]).toBe(e);
    expect(e.appId).toBe("new-guid");
    expect(e.headerBytes).toContain("X-CF-InstanceID: inst-2\r\n");
  });

  test("unregister matches host+port and uris; an emptied route disappears", () => {
    const removed: string[] = [];
    const r = new RouteRegistry(new ReferenceMatcher(), { onEndpointRemoved: (e) => removed.push(e.key) });
    r.register(reg({ uris: ["a.com", "b.com"] }), 0);
    r.register(reg({ port: 61002, uris: ["a.com"] }), 0);
    r.register(reg({ port: 61003, uris: ["c.com"] }), 0);
    r.lookup("b.com", "/")!.pick({ now: 0 }); // the proxy used 61001 (it may hold upstream sockets to it)
    r.unregister(reg({ port: 61003, uris: ["c.com"] }));
    expect(removed).toEqual([]); // never used: nothing for the proxy to close
    expect(r.stats()).toEqual({ routes: 2, endpoints: 2 });
    r.unregister(reg({ port: 9999, uris: ["a.com"] }));
    expect(r.lookup("a.com", "/")!.size).toBe(2);
    r.unregister(reg({ uris: ["a.com"] }));
    expect(r.lookup("a.com", "/")!.size).toBe(1);
    expect(r.lookup("b.com", "/")!.size).toBe(1);
    expect(removed).toEqual([]);
    r.unregister(reg({ uris: ["b.com"] }));
    expect(r.lookup("b.com", "/")).toBeUndefined();
    expect(removed).toEqual(["10.0.0.1:61001"]);
  });

  test("pruneStale honours each endpoint's threshold", () => {
    const r = new RouteRegistry(new ReferenceMatcher(), { defaultStaleThresholdMs: 120_000 });
    r.register(reg(), 0);
    r.register(reg({ port: 2, stale_threshold_in_seconds: 10 }), 0);
    expect(r.pruneStale(11_000)).toBe(1);
    expect(r.lookup("app.example.com", "/")!.size).toBe(1);
    expect(r.pruneStale(119_000)).toBe(0);
    expect(r.pruneStale(121_000)).toBe(1);
    expect(r.lookup("app.example.com", "/")).toBeUndefined();
    expect(r.stats()).toEqual({ routes: 0, endpoints: 0 });
  });

  test("re-registering refreshes the stale clock", () => {
    const r = new RouteRegistry(new ReferenceMatcher());
    r.register(reg({ stale_threshold_in_seconds: 10 }), 0);
    r.register(reg({ stale_threshold_in_seconds: 10 }), 8_000);
    expect(r.pruneStale(15_000)).toBe(0);
    expect(r.pruneStale(18_001)).toBe(1);
  });

  test("pruning is suspended while the bus is disconnected, and resumes with fresh clocks", () => {
    const r = new RouteRegistry(new ReferenceMatcher());
    r.register(reg({ stale_threshold_in_seconds: 10 }), 0);
    r.suspendPruning();
    expect(r.pruneStale(60_000)).toBe(0);
    r.resumePruning(60_000);
    expect(r.pruneStale(65_000)).toBe(0);
    expect(r.pruneStale(71_000)).toBe(1);
  });

  test("pool ids are reused after routes go away", () => {
    const r = new RouteRegistry(new ReferenceMatcher());
    r.register(reg({ uris: ["a.com"] }), 0);
    const id = r.lookup("a.com", "/")!.id;
    r.unregister(reg({ uris: ["a.com"] }));
    r.register(reg({ uris: ["c.com"] }), 0);
    expect(r.lookup("c.com", "/")!.id).toBe(id);
    expect(r.lookup("a.com", "/")).toBeUndefined();
  });

  test("header values with CR/LF from the bus are not compiled into request heads", () => {
    const r = new RouteRegistry(new ReferenceMatcher());
    r.register(reg({ app: "x\r\nEvil: 1" }), 0);
    expect(r.lookup("app.example.com", "/")!.endpoints[0]!.headerBytes).not.toContain("Evil");
  });

  test("a registration with strings too long for the table is refused with an error and changes nothing", () => {
    const r = new RouteRegistry(new ReferenceMatcher());
    r.register(reg({ tags: { component: "a" } }), 0);
    const huge = { blob: "x".repeat(MAX_STRING_BYTES) };
    expect(() => r.register(reg({ tags: huge }), 1000)).toThrow(/too long for the route table/);
    expect(() => r.register(reg({ port: 2, uris: ["new.com"], tags: huge }), 1000)).toThrow(/too long for the route table/);
    r.register(reg({ port: 3, uris: [`${"a".repeat(MAX_STRING_BYTES)}.com`] }), 1000); // a key the matcher refuses: skipped
    expect(r.stats()).toEqual({ routes: 1, endpoints: 1 });
    expect(r.snapshot()["app.example.com"]![0]!.tags).toEqual({ component: "a" });
    expect(r.lookup("new.com", "/")).toBeUndefined();
    r.register(reg({ port: 4, uris: ["after.com"] }), 1000); // and the table still takes registrations
    expect(r.lookup("after.com", "/")!.pick({ now: 0 })!.port).toBe(4);
  });

  test("loadbalancing option sets the pool's algorithm", () => {
    const r = new RouteRegistry(new ReferenceMatcher());
    r.register(reg({ options: { loadbalancing: "least-connection" } }), 0);
    expect(r.lookup("app.example.com", "/")!.loadBalancing).toBe("least-connection");
  });

  test("pruneStaleSlice prunes a big table over several slices", () => {
    const r = new RouteRegistry(new ReferenceMatcher());
    for (let i = 0; i < 50; i++) r.register(reg({ uris: [`a${i}.com`], stale_threshold_in_seconds: 1 }), 0);
    r.register(reg({ port: 2, uris: ["fresh.com"] }), 0);
    let slices = 0;
    let result = { done: false, pruned: 0 };
    while (!result.done && slices < 100) {
      result = r.pruneStaleSlice(2_000, 10);
      slices++;
    }
    expect(slices).toBeGreaterThan(5);
    expect(result.pruned).toBe(50);
    expect(r.stats()).toEqual({ routes: 1, endpoints: 1 });
  });

  test("the same endpoint on two routes keeps each registration's threshold", () => {
    const r = new RouteRegistry(new ReferenceMatcher());
    r.register(reg({ uris: ["short.com"], stale_threshold_in_seconds: 1 }), 0);
    r.register(reg({ uris: ["long.com"] }), 0);
    expect(r.pruneStale(2_000)).toBe(1);
    expect(r.lookup("short.com", "/")).toBeUndefined();
    expect(r.lookup("long.com", "/")).toBeDefined();
  });

  test("a route that loses its last endpoint, by unregister or pruning, is reported removed once (issue 5)", () => {
    const gone: string[] = [];
    const r = new RouteRegistry(new ReferenceMatcher(), { onRouteRemoved: (key) => gone.push(key) });
    r.register(reg({ uris: ["a.com", "b.com/api"] }), 0);
    r.register(reg({ port: 61002, uris: ["a.com"], stale_threshold_in_seconds: 1 }), 0);
    const pool = r.lookup("a.com", "/")!;
    r.unregister(reg({ uris: ["a.com", "b.com/api"] }));
    expect(gone).toEqual(["b.com/api"]);
    expect(pool.inTable).toBe(true);
    expect(r.pruneStale(5_000)).toBe(1);
    expect(gone).toEqual(["b.com/api", "a.com"]);
    expect(pool.inTable).toBe(false);
  });
});

describe("RouteRegistry at scale (issue 5: a million routes must not live in the JS heap)", () => {
  test("100,000 routes, each with its own endpoint, leave almost no objects on the heap", async () => {
    const { heapStats } = await import("bun:jsc");
    const r = new RouteRegistry(new ReferenceMatcher());
    const n = 100_000;
    const msg = (i: number) => reg({ host: `10.1.${i >> 8}.${i & 255}`, uris: [`app-${i}.example.com`], app: `guid-${i}`, private_instance_id: `inst-${i}` });
    r.register(msg(0), 0); // the first of each kind of object is made before the baseline
    Bun.gc(true);
    const before = heapStats().objectCount;
    for (let i = 1; i < n; i++) r.register(msg(i), 0);
    const messages = Array.from({ length: 8 }, (_, i) => msg(i)); // keep the engine honest: some garbage, some live
    Bun.gc(true);
    const perRoute = (heapStats().objectCount - before) / n;
    expect(r.stats()).toEqual({ routes: n, endpoints: n });
    expect(r.lookup("app-99999.example.com", "/")!.pick({ now: 0 })!.instanceId).toBe("inst-99999");
    expect(messages.length).toBe(8);
    // The reference matcher keeps its own Map of keys (2 objects per route); the table itself must
    // add none. Before the table was rows of typed arrays, every route made a pool, an endpoint, 2 arrays and
    // 6 strings: 15 objects per route, measured.
    expect(perRoute).toBeLessThan(4);
  });
});
