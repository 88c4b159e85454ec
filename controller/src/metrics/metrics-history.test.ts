import { describe, expect, test } from "bun:test";
import { MetricsHistory, SeriesRing } from "./metrics-history.ts";

describe("the console's metrics history", () => {
  test("a ring keeps the newest points, oldest first, null for no value", () => {
    const r = new SeriesRing(3, ["a", "b"]);
    for (let t = 1; t <= 5; t++) r.push(t * 1000, [t, t === 4 ? undefined : t * 10]);
    expect(r.toColumns()).toEqual({ t: [3, 4, 5], a: [3, 4, 5], b: [30, null, 50] });
    expect(r.toColumns(4000).t).toEqual([4, 5]);
  });

  test("series are capped: the one heard from longest ago goes first, so memory is bounded", () => {
    const h = new MetricsHistory({ points: 4, maxApps: 2, maxInstances: 2 });
    h.recordApp("a", 1000, { rps: 1, errors_per_second: 0 });
    h.recordApp("b", 2000, { rps: 2, errors_per_second: 0 });
    h.recordApp("a", 3000, { rps: 3, errors_per_second: 0 });
    h.recordApp("c", 4000, { rps: 4, errors_per_second: 0 });
    expect(h.appSeries("b")).toBeUndefined();
    expect(h.appSeries("a")!.rps).toEqual([1, 3]);
    for (let i = 0; i < 5; i++) h.recordInstance("app", `i${i}`, i, (10 + i) * 1000, 5, 1024);
    expect(h.counts()).toEqual({ apps: 2, instances: 2 });
    expect(h.instanceSeries("app").map((s) => s.index)).toEqual([3, 4]);
    h.forgetOlderThan(14_000);
    expect(h.instanceSeries("app").map((s) => s.index)).toEqual([4]);
    // 720 points (an hour at 5 s), 1,000 apps and 2,000 instances: under 32 MB whatever happens
    expect(MetricsHistory.memoryBound({ points: 720, maxApps: 1000, maxInstances: 2000 })).toBeLessThan(32 * 1024 * 1024);
  });
});
