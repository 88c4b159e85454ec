import { describe, expect, test } from "bun:test";
import { categorize, summarizeProfile, type CpuProfile } from "./profile-summary.ts";

const frame = (functionName: string, url = "") => ({ functionName, url, lineNumber: 9 });
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame("(idle)") },
    { id: 2, callFrame: frame("writeUtf8String") },
    { id: 3, callFrame: frame("onUpstreamData", "file:///x/router/dist/router.mjs") },
    { id: 4, callFrame: frame("lookup", "file:///x/router/dist/router.mjs") },
    { id: 5, callFrame: frame("onStreamRead", "node:internal/stream_base_commons") },
    { id: 6, callFrame: frame("(garbage collector)") },
  ],
  startTime: 1_000,
  endTime: 2_000,
  // samples at t = 1100, 1200, ..., 2000 (each 100 µs after the last)
  samples: [1, 2, 2, 3, 4, 5, 6, 2, 3, 1],
  timeDeltas: Array(10).fill(100),
};

describe("router profile summary", () => {
  test("counts only the samples inside the window, by function", () => {
    const s = summarizeProfile(profile, 1_150, 1_850); // t = 1200 .. 1800: samples 2..8
    expect(s.samples).toBe(7);
    expect(s.byFunction[0]).toMatchObject({ name: "writeUtf8String", share: 3 / 7 });
    expect(s.byFunction.find((f) => f.name.startsWith("lookup"))!.name).toBe("lookup router.mjs:10");
  });

  test("groups functions into kinds that add up to every sample", () => {
    const kinds = categorize(summarizeProfile(profile, 0, 10_000).byFunction);
    const share = (key: string) => kinds.find((k) => k.key === key)!.share;
    expect(share("upstream_write")).toBeCloseTo(0.3);
    expect(share("relay_response")).toBeCloseTo(0.2);
    expect(share("event_loop")).toBeCloseTo(0.2);
    expect(share("skiff_js")).toBeCloseTo(0.1);
    expect(share("node_internals")).toBeCloseTo(0.1);
    expect(share("gc")).toBeCloseTo(0.1);
    expect(kinds.reduce((a, k) => a + k.share, 0)).toBeCloseTo(1);
  });
});
