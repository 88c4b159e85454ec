// The cluster harness leaves nothing behind (issue 10): namespaces, veths and the processes in them
// go away after a teardown, after a run that throws, and (swept by the next run) after a run that was
// SIGKILLed. Needs root, like the scenarios.

import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { isRunning, leftoversOf, sweepAbandonedRuns, Topology } from "./topology.ts";
import { repoRoot } from "./cluster.ts";

const alive = isRunning;

async function crash(mode: "throw" | "sigkill"): Promise<{ id: string; pids: number[]; code: number; stderr: string }> {
  const p = Bun.spawn([process.execPath, "tests/cluster/topology-crash.ts", mode], { cwd: repoRoot, stdout: "pipe", stderr: "pipe" });
  const [out, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const line = out.split("\n").find((l) => l.startsWith("{"));
  if (!line) throw new Error(`topology-crash.ts printed no topology (exit ${code}):\n${stderr}`);
  return { ...(JSON.parse(line) as { id: string; pids: number[] }), code, stderr };
}

async function gone(pids: number[]): Promise<boolean> {
  for (let i = 0; i < 50 && pids.some(alive); i++) await Bun.sleep(20);
  return !pids.some(alive);
}

describe("topology teardown (issue 10)", () => {
  test("a test that throws still tears down: namespaces, links and processes gone", async () => {
    const t = Topology.create();
    let pids: number[] = [];
    try {
      await expect(
        (async () => {
          const a = t.addHost("a");
          t.addHost("b");
          a.spawn("sleeper", "sleep", ["300"], {});
          for (let i = 0; i < 100 && a.pids().length === 0; i++) await Bun.sleep(20);
          pids = a.pids();
          expect(leftoversOf(t.id).length).toBeGreaterThanOrEqual(4); // 3 namespaces + the root veth
          throw new Error("on purpose");
        })(),
      ).rejects.toThrow("on purpose");
    } finally {
      await t.teardown();
    }
    expect(pids.length).toBeGreaterThan(0);
    expect(leftoversOf(t.id)).toEqual([]);
    // teardown waits for what it killed: gone as it returns, not even a zombie left (issue 20)
    expect(pids.filter((pid) => existsSync(`/proc/${pid}`))).toEqual([]);
  }, 30_000);

  test("a run that dies of an uncaught error tears down in its exit handler", async () => {
    const r = await crash("throw");
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toContain("thrown on purpose");
    expect(r.pids.length).toBeGreaterThan(0);
    expect(leftoversOf(r.id)).toEqual([]);
    expect(await gone(r.pids)).toBe(true);
  }, 30_000);

  test("a SIGKILLed run leaves its hosts behind; the next run sweeps them", async () => {
    const r = await crash("sigkill");
    expect(r.code).not.toBe(0);
    expect(leftoversOf(r.id).length).toBeGreaterThanOrEqual(4);
    expect(r.pids.some(alive)).toBe(true);
    sweepAbandonedRuns();
    expect(leftoversOf(r.id)).toEqual([]);
    expect(await gone(r.pids)).toBe(true);
  }, 30_000);
});
