import { describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { groupExists, stopChild } from "./stop-child.ts";

const gone = (pid: number) => !existsSync(`/proc/${pid}`); // not even a zombie

describe("stopChild (issue 20)", () => {
  test("resolves once the child has exited and been reaped", async () => {
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    await stopChild(child);
    expect(child.signalCode).toBe("SIGTERM");
    expect(gone(child.pid!)).toBe(true);
  });

  test("a child that ignores the first signal gets SIGKILL after the grace, and is waited for again", async () => {
    const child = spawn("sh", ["-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"], { stdio: ["ignore", "pipe", "ignore"] });
    await new Promise((r) => child.stdout!.once("data", r));
    const t0 = performance.now();
    await stopChild(child, { graceMs: 300 });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(280);
    expect(child.signalCode).toBe("SIGKILL");
    expect(gone(child.pid!)).toBe(true);
  });

  test("with `group`, what the leader left in its group is stopped and gone too", async () => {
    // the leader exits on SIGTERM at once; its background child ignores SIGTERM and is orphaned
    const child = spawn("sh", ["-c", "sh -c \"trap '' TERM; while :; do sleep 0.05; done\" & echo $!; trap 'exit 0' TERM; while :; do sleep 0.05; done"], {
      stdio: ["ignore", "pipe", "ignore"],
      detached: true,
    });
    const helper = Number(await new Promise<string>((r) => child.stdout!.once("data", (d) => r(String(d)))));
    await stopChild(child, { group: true, graceMs: 2_000 });
    expect(groupExists(child.pid!)).toBe(false);
    expect(gone(helper)).toBe(true);
  });

  test("a child already gone, or never started, is a no-op", async () => {
    const child = spawn("true", [], { stdio: "ignore" });
    await new Promise((r) => child.once("exit", r));
    await stopChild(child);
    const never = spawn("/nonexistent/command", [], { stdio: "ignore" });
    never.on("error", () => {});
    await stopChild(never);
  });
});
