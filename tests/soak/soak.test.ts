// The soak's short form in the suite (issue 19): the same run as `npm run soak`, for 2 minutes, judged
// by the same rules (tests/soak/soak.ts RULES); its report goes to a temp dir, not bench/results.

import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSoak } from "./soak.ts";

test("issue 19: two minutes under churn — only inherent failures, desired state after every fault, no growth", async () => {
  const out = mkdtempSync(join(tmpdir(), "skiff-soak-report-"));
  try {
    const r = await runSoak({ minutes: 2, rate: 100, outDir: out, log: () => {} });
    expect(r.faults.map((f) => f.kind)).toEqual(["sigkill-instance", "nats-restart", "sigkill-instance"]);
    expect(r.served).toBeGreaterThan(10_000);
    expect(r.verdict.problems).toEqual([]);
    expect(readFileSync(join(out, "soak.svg"), "utf8")).toStartWith("<svg");
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}, 240_000);
