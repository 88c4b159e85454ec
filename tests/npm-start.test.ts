// Issue 3, `npm start`: `bun scripts/cluster.ts` (what npm start runs once set up) brings the one-machine
// cluster up within 30 s and serves examples/hello through the router; Ctrl-C (SIGINT to the launcher's
// process group, as a terminal sends it) stops every process it started, whether the cluster is up or
// still starting, its service servers included.
// Issue 23: the real `npm start`, stopped by a signal to npm's pid alone (SIGTERM, SIGINT, SIGHUP) or by
// npm's SIGKILL, stops every process the cluster started, in order, within a bounded time; a second
// `npm start` in the same folder is refused, naming the first, which keeps serving.

import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startProcess, stopAllProcesses, type TestProcess } from "./support/processes.ts";
import { eventually } from "./support/ports.ts";
import { helloHostPid } from "./support/instance-pid.ts";
import { stopThroughNpm } from "./support/npm-run.ts";
import { collectDescendants, describeProc, descendants, notReaped, type Proc } from "./support/process-tree.ts";

const repo = resolve(import.meta.dir, "..");
const bun = process.execPath;
const dataDirs: string[] = [];

afterEach(async () => {
  await stopAllProcesses();
  for (const d of dataDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** `bun scripts/cluster.ts`, or with `npm` the real `npm start` (setup first, then the same script). */
function startCluster(env: Record<string, string> = {}, opts: { npm?: boolean; dataDir?: string } = {}): { proc: TestProcess; startedAt: number; dataDir: string } {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), "skiff-npm-start-"));
  if (!opts.dataDir) dataDirs.push(dataDir);
  const startedAt = performance.now();
  const [command, args] = opts.npm ? ["npm", ["start"]] : [bun, ["scripts/cluster.ts"]];
  const proc = startProcess("npm-start", command, args, {
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
  return { proc, startedAt, dataDir };
}

/** Resolves once the launcher printed that the cluster is up; throws with its output if it exited first. */
async function untilUp(proc: TestProcess): Promise<void> {
  await Promise.race([
    proc.waitForLine(/the cluster is up/, 60_000),
    proc.exited.then((code) => {
      throw new Error(`the launcher exited (${code}) before the cluster was up:\n${proc.output().slice(-4000)}`);
    }),
  ]);
}

/** GET through the router as the printed curl line does: status and body. */
async function throughRouter(proc: TestProcess): Promise<{ status: string; body: string }> {
  const curlLine = await proc.waitForLine(/^\s+curl -H 'Host: /);
  const [, host, url] = /curl -H 'Host: ([^']+)' (\S+)/.exec(curlLine)!;
  const curl = Bun.spawnSync(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-H", `Host: ${host}`, url!]);
  const out = curl.stdout.toString();
  return { body: out.slice(0, out.lastIndexOf("\n")), status: out.slice(out.lastIndexOf("\n") + 1) };
}

/**
 * Ctrl-C as a terminal sends it (to the launcher's process group). Adds to `tree` every descendant seen
 * until the launcher exits (one started during the stop must be gone too); resolves with the exit code,
 * how long the stop took, and what of the tree was not gone when the launcher's exit was seen: the
 * launcher waits for each process it stops, so nothing, not even a zombie (issue 20).
 */
async function interrupt(proc: TestProcess, tree: Proc[]): Promise<{ code: number | null; ms: number; left: string[] }> {
  const t0 = performance.now();
  process.kill(-proc.pid, "SIGINT");
  let code: number | null | undefined;
  void proc.exited.then((c) => (code = c));
  while (code === undefined) {
    if (performance.now() - t0 > 60_000) throw new Error(`the launcher did not exit within 60 s of SIGINT:\n${proc.output().slice(-4000)}`);
    collectDescendants(tree, proc.pid);
    await Bun.sleep(20);
  }
  return { code, ms: performance.now() - t0, left: tree.filter(notReaped).map(describeProc) };
}

const has = (tree: Proc[], pattern: RegExp) => tree.some((p) => pattern.test(p.cmdline));

describe("npm start (issue 3)", () => {
  test("the cluster is up within 30 s, serves hello through the router, and Ctrl-C stops every process", async () => {
    const { proc, startedAt } = startCluster();
    await untilUp(proc);
    const upMs = performance.now() - startedAt;
    console.log(`npm start: the cluster is up after ${(upMs / 1000).toFixed(1)} s`);
    expect(upMs).toBeLessThan(30_000);

    // The printed curl line, run as printed.
    const { status, body } = await throughRouter(proc);
    expect(status, body).toBe("200");
    expect(body).toContain("hello from skiff");

    const tree = descendants(proc.pid);
    for (const component of [/nats-server/, /controller\/main\.ts/, /health-main\.ts/, /router\.mjs/, /agent\/main\.ts/])
      expect(has(tree, component), `${component} among ${tree.map((p) => p.cmdline).join("; ")}`).toBe(true);
    const servedBy = helloHostPid(body) ?? -1; // -1: the body named no pid, and no process has it
    expect(tree.map((p) => p.pid), "the app instance that answered is in the launcher's tree").toContain(servedBy);

    const { code, ms, left } = await interrupt(proc, tree);
    console.log(`npm start: stopped ${tree.length} processes in ${(ms / 1000).toFixed(1)} s after SIGINT`);
    expect(code).toBe(0);
    expect(left).toEqual([]);
    // The router stopped on its own (drain 0 in a one-machine cluster), not by SIGKILL after its grace.
    expect(proc.output()).toMatch(/router\s+\|.*\bstopped\b/);
  }, 120_000);

  test("Ctrl-C in the middle of start-up stops what was started (issue 3)", async () => {
    const { proc } = startCluster();
    // The controller is up, the health manager or router is starting: a partly started cluster.
    await proc.waitForLine(/^controller\s+\|.*\bready\b/, 60_000);
    const tree = descendants(proc.pid);
    expect(has(tree, /nats-server/) && has(tree, /controller\/main\.ts/), tree.map((p) => p.cmdline).join("; ")).toBe(true);
    const { code, left } = await interrupt(proc, tree);
    expect(proc.output()).not.toContain("the cluster is up");
    expect(code).toBe(0);
    expect(left).toEqual([]);
  }, 120_000);

  test("Ctrl-C while the service servers start stops them too (issue 3)", async () => {
    const { proc } = startCluster({ SKIFF_SERVICES: "redis" });
    // SIGINT as soon as redis-server runs: its starter may still be polling it, or the broker starting.
    const tree = await eventually(() => {
      const t = descendants(proc.pid);
      return has(t, /redis-server/) ? t : undefined;
    }, 60_000, "redis-server in the launcher's process tree");
    const { code, left } = await interrupt(proc, tree);
    expect(proc.output()).not.toContain("the cluster is up");
    expect(code).toBe(0);
    expect(left).toEqual([]);
  }, 120_000);
});

describe("npm start stopped through npm (issue 23)", () => {
  // Services off: the signal path is the same with them (the service servers stop last, through the
  // same stop), and each start here costs a few seconds instead of fifteen.
  const quick = { SKIFF_SERVICES: "none" };

  test("SIGTERM to npm stops the cluster in order; before that, a second npm start in the same folder is refused and the first keeps serving", async () => {
    const { proc: npm, dataDir } = startCluster(quick, { npm: true });
    await untilUp(npm);
    expect((await throughRouter(npm)).status).toBe("200");
    const runner = descendants(npm.pid).find((p) => p.ppid === npm.pid)!;
    expect(runner.cmdline, "npm runs the runner with no shell between").toContain("scripts/cluster.ts");

    const second = startCluster(quick, { npm: true, dataDir });
    const secondCode = await Promise.race([second.proc.exited, Bun.sleep(30_000).then(() => "still running")]);
    expect(secondCode, second.proc.output()).toBe(1);
    expect(second.proc.output()).toContain(`already running, pid ${runner.pid}`);
    const routerUrl = /^\s+curl -H '[^']+' (\S+)/m.exec(npm.output())![1]!;
    expect(second.proc.output()).toContain(routerUrl);
    expect(second.proc.output()).not.toMatch(/^nats\s+\|/m); // it started nothing
    expect((await throughRouter(npm)).status, "the first cluster still serves").toBe("200");

    const tree: Proc[] = [];
    const { left, ms } = await stopThroughNpm(npm, "SIGTERM", tree, "scripts/cluster.ts");
    console.log(`npm start: ${tree.length} processes stopped ${(ms / 1000).toFixed(1)} s after SIGTERM to npm`);
    expect(tree.some((p) => /agent\/main\.ts/.test(p.cmdline)) && tree.some((p) => /nats-server/.test(p.cmdline))).toBe(true);
    expect(left).toEqual([]);
    // npm waited for its child and exited with the signal; by then its child is reaped too
    await npm.exited;
    expect(tree.filter(notReaped).map(describeProc)).toEqual([]);
    const out = npm.output();
    expect(out).toContain("skiff: terminated (SIGTERM); stopping every process of the cluster");
    // the agent first (it stops its instances), then the rest
    expect(out.search(/^agent\s+\|.*\bstopped\b/m)).toBeGreaterThan(-1);
    expect(out.search(/^agent\s+\|.*\bstopped\b/m)).toBeLessThan(out.search(/^router\s+\|.*\bstopp/m));
  }, 120_000);

  test.each(["SIGINT", "SIGHUP", "SIGKILL"] as const)("%s to npm alone stops every process the cluster started, in order", async (signal) => {
    const { proc: npm } = startCluster(quick, { npm: true });
    await untilUp(npm);
    const { body } = await throughRouter(npm);
    const tree = collectDescendants([], npm.pid);
    expect(tree.map((p) => p.pid), "the app instance that answered is in the tree").toContain(helloHostPid(body) ?? -1);
    const { runner, left, ms } = await stopThroughNpm(npm, signal, tree, "scripts/cluster.ts");
    console.log(`npm start: ${tree.length} processes stopped ${(ms / 1000).toFixed(1)} s after ${signal} to npm`);
    expect(left).toEqual([]);
    // SIGINT: npm forwards it and waits; SIGHUP and SIGKILL end npm at once, and the runner, now an
    // orphan, saw its parent gone (within half a second) and stopped the same way
    const out = npm.output();
    if (signal === "SIGINT") expect(out).toContain("skiff: interrupted (SIGINT)");
    else expect(out).toContain(`skiff: the process that started it (pid ${npm.pid}) is gone`);
    expect(out.search(/^agent\s+\|.*\bstopped\b/m)).toBeLessThan(out.search(/^router\s+\|.*\bstopp/m));
    // the orphaned runner itself is reaped by init within a few seconds
    await eventually(() => (notReaped(runner) ? undefined : true), 10_000, "the runner reaped");
  }, 120_000);
});
