import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acquireClusterLock, ClusterAlreadyRunning } from "./cluster-lock.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function lockPath(): string {
  const d = mkdtempSync(join(tmpdir(), "skiff-lock-"));
  dirs.push(d);
  return join(d, "cluster.lock");
}

describe("one npm start per data folder (issue 23)", () => {
  test("a second taker is refused with the holder's pid and URLs; after release the lock is free", () => {
    const path = lockPath();
    const lock = acquireClusterLock(path);
    lock.update("up", { router: "http://127.0.0.1:8080/" });
    let refused: unknown;
    try {
      acquireClusterLock(path);
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(ClusterAlreadyRunning);
    expect((refused as Error).message).toContain(`already running, pid ${process.pid}`);
    expect((refused as Error).message).toContain("http://127.0.0.1:8080/");
    lock.release();
    expect(existsSync(path)).toBe(false);
    acquireClusterLock(path).release();
  });

  test("a lock left by a process that is gone (SIGKILL, reboot) is taken over", () => {
    const path = lockPath();
    const dead = Bun.spawnSync(["true"]).pid;
    writeFileSync(path, JSON.stringify({ pid: dead, startTime: "1", state: "up" }));
    const lock = acquireClusterLock(path);
    expect(JSON.parse(readFileSync(path, "utf8")).pid).toBe(process.pid);
    lock.release();
  });

  test("a lock whose pid was reused by another process (another start time) is stale too", () => {
    const path = lockPath();
    writeFileSync(path, JSON.stringify({ pid: process.pid, startTime: "0", state: "up" }));
    acquireClusterLock(path).release();
  });
});
