import { expect, test } from "bun:test";
import { figureWriter, percentile, spreadCell, summarize, summaryFigures } from "./stats.ts";

test("summarize gives the median and the spread of repeated runs", () => {
  expect(summarize([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, spread: 1, runs: 3 });
  expect(summarize([4, 2]).median).toBe(3);
  expect(summarize([]).runs).toBe(0);
});

test("percentile is nearest-rank", () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  expect(percentile(xs, 50)).toBe(50);
  expect(percentile(xs, 99)).toBe(99);
  expect(percentile(xs, 100)).toBe(100);
  expect(percentile([5], 99)).toBe(5);
});

test("summaryFigures flattens a summary under a prefix", () => {
  const f = summaryFigures("x_ms", [4, 1, 3, 2, 100]);
  expect(f).toEqual({ "x_ms.median": 3, "x_ms.spread": 33, "x_ms.min": 1, "x_ms.max": 100, "x_ms.p99": 100, "x_ms.runs": 5 });
});

test("spreadCell shows ± half the range in percent, a dash where there is no spread", () => {
  expect(spreadCell(0.1)).toBe("±5%");
  expect([spreadCell(null), spreadCell(undefined), spreadCell(NaN)]).toEqual(["—", "—", "—"]);
});

test("figureWriter writes finite figures under a prefix and leaves out the rest", () => {
  const figures: Record<string, number> = {};
  const put = figureWriter(figures, "a.b");
  put("x", 1);
  put("nan", NaN);
  put("none", null);
  put("missing", undefined);
  figureWriter(figures)("top", 2);
  expect(figures).toEqual({ "a.b.x": 1, top: 2 });
});
