// Issue 3, `npm start`: `bun scripts/cluster.ts` (what npm start runs once set up) brings the one-machine
// cluster up within 30 s and serves examples/hello through the router; Ctrl-C (SIGINT to the launcher's
// process group, as a terminal sends it) stops every process it started, whether the cluster is up or
// still starting, its service servers included.

import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startProcess, stopAllProcesses, type TestProcess } from "./support/processes.ts";
import { eventually } from "./support/ports.ts";
import { alive, descendants, type Proc } from "./support/process-tree.ts";

const repo = resolve(import.meta.dir, "..");
const bun = process.execPath;
const dataDirs: string[] = [];

afterEach(async () => {
  await stopAllProcesses();
  for (const d of dataDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function startCluster(env: Record<string, string> = {}): { proc: TestProcess; startedAt: number } {
  const dataDir = mkdtempSync(join(tmpdir(), "skiff-npm-start-"));
  dataDirs.push(dataDir);
  const startedAt = performance.now();
  const proc = startProcess("npm-start", bun, ["scripts/cluster.ts"], {
    cwd: repo,
    env: {
      SKIFF_DATA_DIR: dataDir,
      SKIFF_SERVICES: "none",
      // 0: ports the OS assigns, so the test never meets another cluster's
      SKIFF_NATS_PORT: "0",
      SKIFF_CONTROLLER_PORT: "0",
      SKIFF_ROUTER_PORT: "0",
      SKIFF_ROUTER_STATUS_PORT: "0",
      ...env,
    },
  });
  return { proc, startedAt };
}

/**
 * Ctrl-C as a terminal sends it (to the launcher's process group). Adds to `tree` every descendant seen
 * until the launcher exits (one started during the stop must be gone too); resolves with the exit code
 * and how long the stop took.
 */
async function interrupt(proc: TestProcess, tree: Proc[]): Promise<{ code: number | null; ms: number }> {
  const t0 = performance.now();
  process.kill(-proc.pid, "SIGINT");
  let code: number | null | undefined;
  void proc.exited.then((c) => (code = c));
  while (code === undefined) {
    if (performance.now() - t0 > 60_000) throw new Error(`the launcher did not exit within 60 s of SIGINT:\n${proc.output().slice(-4000)}`);
    for (const p of descendants(proc.pid)) if (!tree.some((q) => q.pid === p.pid && q.startTime === p.startTime)) tree.push(p);
    await Bun.sleep(50);
  }
  return { code, ms: performance.now() - t0 };
}

/** Waits a little for the tree to be gone (reparented orphans would stay forever), then lists the survivors. */
async function survivors(tree: Proc[]): Promise<string[]> {
  const deadline = Date.now() + 2000;
  while (Date.now() < deadline && tree.some(alive)) await Bun.sleep(50);
  return tree.filter(alive).map((p) => `${p.pid} ${p.cmdline}`);
}

const has = (tree: Proc[], pattern: RegExp) => tree.some((p) => pattern.test(p.cmdline));

describe("npm start (issue 3)", () => {
  test("the cluster is up within 30 s, serves hello through the router, and Ctrl-C stops every process", async () => {
    const { proc, startedAt } = startCluster();
    // the launcher exits at once if start-up fails (a push that failed, say): say so rather than wait
    await Promise.race([
      proc.waitForLine(/the cluster is up/, 60_000),
      proc.exited.then((code) => {
        throw new Error(`the launcher exited (${code}) before the cluster was up:\n${proc.output().slice(-4000)}`);
      }),
    ]);
    const upMs = performance.now() - startedAt;
    console.log(`npm start: the cluster is up after ${(upMs / 1000).toFixed(1)} s`);
    expect(upMs).toBeLessThan(30_000);

    // The printed curl line, run as printed.
    const curlLine = await proc.waitForLine(/^\s+curl -H 'Host: /);
    const [, host, url] = /curl -H 'Host: ([^']+)' (\S+)/.exec(curlLine)!;
    const curl = Bun.spawnSync(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-H", `Host: ${host}`, url!]);
    const out = curl.stdout.toString();
    const body = out.slice(0, out.lastIndexOf("\n"));
    const status = out.slice(out.lastIndexOf("\n") + 1);
    expect(status, `curl ${url}: ${curl.stdout}${curl.stderr}`).toBe("200");
    expect(body).toContain("hello from skiff");

    const tree = descendants(proc.pid);
    for (const component of [/nats-server/, /controller\/main\.ts/, /health-main\.ts/, /router\.mjs/, /agent\/main\.ts/])
      expect(has(tree, component), `${component} among ${tree.map((p) => p.cmdline).join("; ")}`).toBe(true);
    const servedBy = Number(/pid (\d+)/.exec(body)?.[1]);
    expect(tree.map((p) => p.pid), "the app instance that answered is in the launcher's tree").toContain(servedBy);

    const { code, ms } = await interrupt(proc, tree);
    console.log(`npm start: stopped ${tree.length} processes in ${(ms / 1000).toFixed(1)} s after SIGINT`);
    expect(code).toBe(0);
    expect(await survivors(tree)).toEqual([]);
    // The router stopped on its own (drain 0 in a one-machine cluster), not by SIGKILL after its grace.
    expect(proc.output()).toMatch(/router\s+\|.*\bstopped\b/);
  }, 120_000);

  test("Ctrl-C in the middle of start-up stops what was started (issue 3)", async () => {
    const { proc } = startCluster();
    // The controller is up, the health manager or router is starting: a partly started cluster.
    await proc.waitForLine(/^controller\s+\|.*\bready\b/, 60_000);
    const tree = descendants(proc.pid);
    expect(has(tree, /nats-server/) && has(tree, /controller\/main\.ts/), tree.map((p) => p.cmdline).join("; ")).toBe(true);
    const { code } = await interrupt(proc, tree);
    expect(proc.output()).not.toContain("the cluster is up");
    expect(code).toBe(0);
    expect(await survivors(tree)).toEqual([]);
  }, 120_000);

  test("Ctrl-C while the service servers start stops them too (issue 3)", async () => {
    const { proc } = startCluster({ SKIFF_SERVICES: "redis" });
    // SIGINT as soon as redis-server runs: its starter may still be polling it, or the broker starting.
    const tree = await eventually(() => {
      const t = descendants(proc.pid);
      return has(t, /redis-server/) ? t : undefined;
    }, 60_000, "redis-server in the launcher's process tree");
    const { code } = await interrupt(proc, tree);
    expect(proc.output()).not.toContain("the cluster is up");
    expect(code).toBe(0);
    expect(await survivors(tree)).toEqual([]);
  }, 120_000);
});
