import { describe, expect, test } from "bun:test";
import { MemoryTrim } from "./memory-trim.ts";

function fake(heap: number) {
  const state = { heap, now: 10_000, collections: 0 };
  const trim = new MemoryTrim(
    { intervalMs: 1000, thresholdBytes: 12, quietMs: 1500 },
    { heapUsed: () => state.heap, collect: () => void (state.collections++, (state.heap = 2)), now: () => state.now },
  );
  return { state, trim };
}

describe("MemoryTrim", () => {
  test("trims a heap over the threshold once the agent has been quiet", () => {
    const { state, trim } = fake(40);
    trim.touch();
    state.now += 1000;
    expect(trim.check()).toBe(false); // a start just happened: never in its way
    state.now += 600;
    expect(trim.check()).toBe(true);
    expect(state.collections).toBe(1);
    expect(trim.check()).toBe(false); // back under the threshold, nothing happened since: nothing to do
    expect(state.collections).toBe(1);
  });

  test("a burst of activity is trimmed once after it, whatever the heap's size (issue 6)", () => {
    const { state, trim } = fake(3); // under the threshold: most of a burst's leftovers are not JS heap
    trim.touch();
    state.now += 1600;
    expect(trim.check()).toBe(true);
    state.now += 60_000;
    expect(trim.check()).toBe(false); // once per burst
    expect(state.collections).toBe(1);
  });

  test("a small heap is left alone however quiet it is", () => {
    const { state, trim } = fake(12);
    state.now += 60_000;
    expect(trim.check()).toBe(false);
    expect(state.collections).toBe(0);
  });

  test("activity keeps pushing the trim back", () => {
    const { state, trim } = fake(100);
    for (let i = 0; i < 5; i++) {
      trim.touch();
      state.now += 1000;
      expect(trim.check()).toBe(false);
    }
    state.now += 1000;
    expect(trim.check()).toBe(true);
  });
});
