// Issue 9: every benchmark still works. Each runs in --quick mode (a second or two of load) as its own
// process; its figures are not judged here, only that it runs to the end and writes its results.
// The multi-router scenario also exits non-zero on any failed request, so that promise is checked.

import { describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { BENCHES } from "../bench/benches.ts";

const repo = resolve(import.meta.dir, "..");

describe("bench --quick (issue 9)", () => {
  test.each(BENCHES.map((b) => [b.name, b.script] as const))("%s runs and writes its results", async (name, script) => {
    const started = Date.now();
    const proc = Bun.spawn([process.execPath, join(repo, "bench", script), "--quick"], { cwd: repo, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect(code, `${name} failed:\n${out.slice(-3000)}\n${err.slice(-3000)}`).toBe(0);
    const result = join(repo, "bench/results", `${name}.quick.json`);
    expect(existsSync(result), `${result} written`).toBe(true);
    expect(statSync(result).mtimeMs).toBeGreaterThanOrEqual(started - 1000);
  }, 240_000);
});
