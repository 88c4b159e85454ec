import { expect, test } from "bun:test";
import { atWorkers, CHURN_T, ROUTES_T, routerFigures, routerTables, scalingFigures, scalingTables, summarizeRuns, tableTitle, type Run, type Scenario } from "./router-results.ts";
import { defaultProxyCpus, doublingsUpTo, parseCpuList, pinFor } from "./proxies.ts";

const run = (rps: number, p99ms: number, cpuUs: number): Run => ({ rps, p50ms: p99ms / 4, p99ms, p999ms: p99ms * 2, failures: 0, cpuUs, userUs: cpuUs / 3, sysUs: (cpuUs * 2) / 3 });
const get: Scenario = { sizes: [0], post: 0, routes: 0, churn: 0, targets: ["direct", "skiff", "nginx"] };

const results = [
  summarizeRuns("direct", 0, 64, [run(70_000, 0.9, NaN), run(72_000, 1.0, NaN), run(71_000, 0.8, NaN)], false, null),
  summarizeRuns("skiff", 0, 64, [run(50_000, 2.0, 18), run(54_000, 2.4, 19), run(52_000, 1.8, 20)], true, 70),
  summarizeRuns("nginx", 0, 64, [run(60_000, 1.5, 15), run(62_000, 1.4, 15), run(61_000, 1.6, 16)], true, 9),
];

test("a result is the median of its rounds, with the req/s and CPU spreads; the backend direct has no proxy CPU", () => {
  const skiff = results[1]!;
  expect(skiff).toMatchObject({ rps: 52_000, p99ms: 2.0, p999ms: 4.0, cpuUsPerReq: 19, rssMiB: 70, failures: 0 });
  expect(skiff.rpsSpread).toBeCloseTo(4_000 / 52_000);
  expect(skiff.cpuSpread).toBeCloseTo(2 / 19);
  expect(results[0]).toMatchObject({ cpuUsPerReq: null, cpuSpread: null, rssMiB: null });
});

test("every table has p99.9 and declares its throughput, latency and CPU charts (issue 9)", () => {
  const [t] = routerTables(results, get, "notes");
  expect(t!.columns).toContain("p99.9 ms");
  const skiffRow = t!.rows.find((r) => r[0] === "skiff")!;
  expect(skiffRow[t!.columns.indexOf("p99.9 ms")]).toBe(4.0);
  expect(skiffRow[t!.columns.indexOf("× nginx req/s")]).toBe(0.85);
  expect(t!.charts!.map((c) => c.values)).toEqual([["req/s"], ["p50 ms", "p99 ms", "p99.9 ms"], ["proxy CPU µs/req"]]);
  expect(t!.charts![0]).toMatchObject({ groupBy: ["conns"], seriesBy: "target" });
});

test("the figures carry medians, spreads, p50/p99/p99.9 and every round as data, not only in notes (issue 9)", () => {
  const f = routerFigures(results, get);
  expect(f).toMatchObject({
    "skiff.b0.c64.req_s": 52_000,
    "skiff.b0.c64.p50_ms": 0.5,
    "skiff.b0.c64.p99_ms": 2.0,
    "skiff.b0.c64.p999_ms": 4.0,
    "skiff.b0.c64.cpu_us_per_req": 19,
    "skiff.b0.c64.rounds": 3,
    "skiff.b0.c64.round2.req_s": 54_000,
    "skiff.b0.c64.round3.cpu_us_per_req": 20,
    "skiff.b0.c64.round1.p999_ms": 4.0,
  });
  expect(f["skiff.b0.c64.req_s_spread"]).toBeCloseTo(4_000 / 52_000);
  expect(f["skiff.b0.c64.cpu_spread"]).toBeCloseTo(2 / 19);
  // nothing for what was not measured
  expect("direct.b0.c64.cpu_us_per_req" in f).toBe(false);
  expect("direct.b0.c64.round1.cpu_us_per_req" in f).toBe(false);
});

test("POST, loaded-routes and churn scenarios are told apart in titles, labels and figure keys", () => {
  const post: Scenario = { ...get, post: 65536 };
  expect(tableTitle(post, 0)).toBe("POST 65,536-byte bodies, 0-byte responses (req/s)");
  expect(Object.keys(routerFigures(results, post))).toContain("post65536.skiff.b0.c64.req_s");

  const loaded: Scenario = { ...get, routes: 1_000_000, churn: 1000 };
  expect(tableTitle(loaded, 0)).toBe("0-byte responses: 10 routes vs +1,000,000 routes vs 1,000 routes/s churn (req/s)");
  const more = [...results, summarizeRuns(ROUTES_T, 0, 256, [run(40_000, 3, 20)], true, 1300), summarizeRuns(CHURN_T, 0, 256, [run(45_000, 3, 21)], true, 80)];
  const [t] = routerTables(more, loaded, "");
  expect(t!.rows.map((r) => r[0])).toEqual(["direct", "skiff (10 routes)", "nginx", "skiff +1,000,000 routes", "skiff, 1,000 reg+unreg/s"]);
  expect(t!.columns).toContain("× skiff req/s");
  expect(Object.keys(routerFigures(more, loaded))).toEqual(expect.arrayContaining(["skiff_routes1000000.b0.c256.req_s", "skiff_churn1000.b0.c256.round1.p999_ms"]));
});

test("the workers axis: each proxy's scaling efficiency against itself at one worker, ratios to nginx at the same count (issue 16)", () => {
  const r = [
    summarizeRuns(atWorkers("skiff", 1), 0, 64, [run(50_000, 2, 14)], true, 90),
    summarizeRuns(atWorkers("nginx", 1), 0, 64, [run(60_000, 1.5, 10)], true, 9),
    summarizeRuns(atWorkers("skiff", 2), 0, 128, [run(90_000, 2, 14.5)], true, 100),
    summarizeRuns(atWorkers("nginx", 2), 0, 128, [run(100_000, 1.5, 10)], true, 18),
  ];
  const [t] = scalingTables(r, [0], { 1: "1", 2: "1,0" }, "notes");
  const col = (name: string) => t!.columns.indexOf(name);
  const row = (target: string, w: string) => t!.rows.find((x) => x[0] === target && x[1] === w)!;
  expect(row("skiff", "2")[col("scaling efficiency")]).toBe(0.9);
  expect(row("nginx", "2")[col("scaling efficiency")]).toBe(0.83);
  expect(row("skiff", "1")[col("scaling efficiency")]).toBeNaN();
  expect(row("skiff", "2")[col("× nginx CPU")]).toBe(1.45);
  expect(row("skiff", "2")[col("CPUs")]).toBe("1,0");
  expect(t!.columns).toContain("p99.9 ms");
  const f = scalingFigures(r);
  expect(f["scaling.skiff.w2.b0.c128.efficiency"]).toBe(0.9);
  expect(f["scaling.nginx.w1.b0.c64.cpu_us_per_req"]).toBe(10);
});

test("proxies of W workers are pinned to the first W CPUs, the default list puts the load CPUs last (issue 16)", () => {
  expect(parseCpuList("0-3,6,2")).toEqual([0, 1, 2, 3, 6]);
  expect(() => parseCpuList("x")).toThrow("not a CPU list");
  expect(defaultProxyCpus(2, [0], 2)).toEqual([1, 0]);
  expect(defaultProxyCpus(32, [0, 1, 2, 3], 8)).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31]);
  expect(pinFor(1, [1, 0])).toBe("1");
  expect(pinFor(2, [1, 0])).toBe("1,0");
  expect(pinFor(4, [1, 0])).toBe("1,0");
  expect(doublingsUpTo(24)).toEqual([1, 2, 4, 8, 16, 24]);
  expect(doublingsUpTo(1)).toEqual([1]);
});

test("the workers axis compares like with like: the same connections per worker, nginx at the same connections (issue 16)", () => {
  const r = [
    summarizeRuns(atWorkers("skiff", 1), 0, 64, [run(50_000, 2, 14)], true, 90),
    summarizeRuns(atWorkers("skiff", 1), 0, 256, [run(40_000, 2, 16)], true, 90),
    summarizeRuns(atWorkers("nginx", 1), 0, 64, [run(60_000, 1.5, 10)], true, 9),
    summarizeRuns(atWorkers("nginx", 1), 0, 256, [run(30_000, 1.5, 12)], true, 9),
    summarizeRuns(atWorkers("skiff", 2), 0, 512, [run(60_000, 2, 14.5)], true, 100),
  ];
  const [t] = scalingTables(r, [0], { 1: "1", 2: "1,0" }, "notes");
  const col = (name: string) => t!.columns.indexOf(name);
  const row = (target: string, conns: string) => t!.rows.find((x) => x[0] === target && x[3] === conns)!;
  expect(row("skiff", "512")[col("scaling efficiency")]).toBe(0.75); // against 40,000 at 256, not 50,000 at 64
  expect(row("skiff", "256")[col("× nginx CPU")]).toBe(1.33); // against nginx at 256
  expect(scalingFigures(r)["scaling.skiff.w2.b0.c512.efficiency"]).toBe(0.75);
});
