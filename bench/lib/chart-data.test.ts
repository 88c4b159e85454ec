import { expect, test } from "bun:test";
import { chartData, medianP99Chart, tableCharts } from "./chart-data.ts";
import type { Table } from "./report.ts";

const router: Table = {
  title: "0-byte responses (req/s)",
  columns: ["target", "conns", "req/s", "p50 ms", "p99 ms", "proxy CPU µs/req"],
  rows: [
    ["direct", "64", 70_000, 0.6, 0.9, NaN],
    ["skiff", "64", 50_000, 1.1, 2.0, 18],
    ["nginx", "64", 60_000, 0.8, 1.5, 15],
    ["direct", "256", 69_000, 2.4, 3.0, NaN],
    ["skiff", "256", 48_000, 4.1, 8.0, 19],
    ["nginx", "256", 57_000, 3.8, 7.5, 16],
  ],
};

test("seriesBy pivots rows into one group per connection count with one bar per target (issue 9)", () => {
  const d = chartData(router, { values: ["req/s"], groupBy: ["conns"], seriesBy: "target", axis: "req/s" })!;
  expect(d.series).toEqual(["direct", "skiff", "nginx"]);
  expect(d.groupAxis).toBe("conns");
  expect(d.groups).toEqual([
    { label: "64 conns", values: [70_000, 50_000, 60_000] },
    { label: "256 conns", values: [69_000, 48_000, 57_000] },
  ]);
});

test("several value columns are the bars of each group; a column the table lacks is skipped", () => {
  const d = chartData(router, { values: ["p50 ms", "p99 ms", "p99.9 ms"], groupBy: ["conns", "target"], axis: "ms" })!;
  expect(d.series).toEqual(["p50 ms", "p99 ms"]);
  expect(d.groups.map((g) => g.label)).toEqual(["64 conns · direct", "64 conns · skiff", "64 conns · nginx", "256 conns · direct", "256 conns · skiff", "256 conns · nginx"]);
  expect(d.groups[1]!.values).toEqual([1.1, 2.0]);
});

test("a series never measured is left out, and the others keep their colours", () => {
  // NaN arrives as null from JSON; both mean "not measured"
  const fromJson = JSON.parse(JSON.stringify(router)) as Table;
  const d = chartData(fromJson, { values: ["proxy CPU µs/req"], groupBy: ["conns"], seriesBy: "target", axis: "µs" })!;
  expect(d.series).toEqual(["skiff", "nginx"]);
  expect(d.colors).toEqual([1, 2]);
  expect(d.groups[0]!.values).toEqual([18, 15]);
});

test("nothing to draw: no value column, or an unknown seriesBy column", () => {
  expect(chartData(router, { values: ["nope"], groupBy: ["conns"], axis: "x" })).toBeUndefined();
  expect(chartData(router, { values: ["req/s"], groupBy: ["conns"], seriesBy: "nope", axis: "x" })).toBeUndefined();
});

test("tableCharts: declared charts, `[]` for none, else the first numeric column by the text columns before it", () => {
  expect(tableCharts({ ...router, charts: [] })).toEqual([]);
  expect(tableCharts({ ...router, charts: [medianP99Chart("target"), { values: ["req/s"], groupBy: ["conns"], seriesBy: "target", axis: "r" }] })).toHaveLength(1);
  const [fallback] = tableCharts(router);
  expect(fallback!.series).toEqual(["req/s"]);
  expect(fallback!.groups[3]).toEqual({ label: "direct · 256 conns", values: [69_000] });
  expect(tableCharts({ title: "f", columns: ["figure", "value"], rows: [["a", 1], ["b", 2]] })).toEqual([]);
});
