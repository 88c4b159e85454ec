// Where the cluster suites write their figures (issue 10): a plain test run must leave the git tree
// clean, so by default into a git-ignored file; the committed last-run.md only when asked.

import { expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { committedLastRun, lastRunPath, localLastRun, writeSection } from "./results.ts";

test("figures go to a git-ignored file unless SKIFF_WRITE_LAST_RUN=1 (issue 10)", () => {
  expect(lastRunPath({})).toBe(localLastRun);
  expect(lastRunPath({ SKIFF_WRITE_LAST_RUN: "0" })).toBe(localLastRun);
  expect(lastRunPath({ SKIFF_WRITE_LAST_RUN: "1" })).toBe(committedLastRun);
  const ignored = (p: string) => spawnSync("git", ["check-ignore", "-q", p], { cwd: import.meta.dir }).status === 0;
  expect(ignored(localLastRun)).toBe(true);
  expect(ignored(committedLastRun)).toBe(false);
});

test("a section is replaced in place, the other suite's section kept", () => {
  const dir = mkdtempSync(join(tmpdir(), "skiff-results-"));
  try {
    const f = join(dir, "r.md");
    writeSection("scenarios", "A1", f);
    writeSection("simulation", "B1", f);
    writeSection("scenarios", "A2", f);
    const text = readFileSync(f, "utf8");
    expect(text).toContain("<!-- scenarios -->\nA2\n<!-- /scenarios -->");
    expect(text).toContain("<!-- simulation -->\nB1\n<!-- /simulation -->");
    expect(text).not.toContain("A1");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
