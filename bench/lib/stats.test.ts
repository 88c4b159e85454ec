import { expect, test } from "bun:test";
import { percentile, summarize } from "./stats.ts";

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
