import { describe, expect, test } from "bun:test";
import { Endpoint } from "./endpoint.ts";
import { RoutePool } from "./route-pool.ts";

const ep = (port: number, instanceId = `i${port}`) =>
  new Endpoint({ host: "10.0.0.1", port, appId: "a", instanceId, instanceIndex: "0", tags: {}, staleThresholdMs: 120_000, loadBalancing: "round-robin" });

function poolOf(n: number, cap = 0): RoutePool {
  const p = new RoutePool("a.com", 0, cap);
  for (let i = 1; i <= n; i++) p.upsert(ep(i), 0);
  return p;
}

describe("RoutePool", () => {
  test("round-robin cycles through endpoints", () => {
    const p = poolOf(3);
    const picks = Array.from({ length: 6 }, () => p.pick({ now: 0 })!.port);
    expect(picks).toEqual([1, 2, 3, 1, 2, 3]);
  });

  test("a failed endpoint is skipped for 30 s", () => {
    const p = poolOf(2);
    p.markFailed(p.endpoints[0]!, 0);
    expect([p.pick({ now: 1 })!.port, p.pick({ now: 1 })!.port]).toEqual([2, 2]);
    expect(new Set([p.pick({ now: 30_001 })!.port, p.pick({ now: 30_001 })!.port])).toEqual(new Set([1, 2]));
  });

  test("when every endpoint has failed, one is tried anyway", () => {
    const p = poolOf(1);
    p.markFailed(p.endpoints[0]!, 0);
    expect(p.pick({ now: 1 })!.port).toBe(1);
  });

  test("exclude skips endpoints already tried", () => {
    const p = poolOf(2);
    const first = p.pick({ now: 0 })!;
    expect(p.pick({ now: 0, exclude: [first] })).not.toBe(first);
    expect(p.pick({ now: 0, exclude: p.endpoints })).toBeUndefined();
  });

  test("least-connection picks the endpoint with fewest requests in flight", () => {
    const p = poolOf(3);
    p.loadBalancing = "least-connection";
    p.endpoints[0]!.inFlight = 5;
    p.endpoints[1]!.inFlight = 1;
    p.endpoints[2]!.inFlight = 3;
    expect(p.pick({ now: 0 })!.port).toBe(2);
  });

  test("per-endpoint connection cap", () => {
    const p = poolOf(2, 1);
    p.endpoints[0]!.inFlight = 1;
    expect(p.pick({ now: 0 })!.port).toBe(2);
    p.endpoints[1]!.inFlight = 1;
    expect(p.pick({ now: 0 })).toBeUndefined();
  });

  test("sticky __VCAP_ID__ picks that instance while it is here", () => {
    const p = poolOf(3);
    expect(p.pick({ now: 0, stickyInstanceId: "i3" })!.port).toBe(3);
    expect(p.pick({ now: 0, stickyInstanceId: "i3" })!.port).toBe(3);
    expect(p.pick({ now: 0, stickyInstanceId: "gone" })).toBeDefined();
  });

  test("stale endpoints by their own threshold", () => {
    const p = new RoutePool("a.com", 0);
    const a = ep(1);
    const b = ep(2);
    b.staleThresholdMs = 5_000;
    p.upsert(a, 0);
    p.upsert(b, 0);
    expect(p.staleEndpoints(6_000)).toEqual([b]);
    p.remove(b);
    expect(p.size).toBe(1);
  });

  test("registration times stay with their endpoint through removals and re-registrations", () => {
    const p = new RoutePool("a.com", 0);
    const [a, b, c] = [ep(1), ep(2), ep(3)];
    p.upsert(a, 0, 5_000);
    p.upsert(b, 0, 5_000);
    p.upsert(c, 0, 60_000);
    expect(p.remove(b)).toBe(true);
    expect(p.remove(b)).toBe(false);
    expect(p.upsert(a, 4_000, 5_000)).toBe(false); // heard again: refreshed, not added
    expect(p.size).toBe(2);
    expect(p.staleEndpoints(6_000)).toEqual([]);
    expect(p.staleEndpoints(9_500)).toEqual([a]);
    p.touchAll(70_000);
    expect(p.staleEndpoints(74_000)).toEqual([]);
    expect(p.staleEndpoints(75_500)).toEqual([a]);
    expect(p.has(c) && !p.has(b)).toBe(true);
  });
});
