// Memory limits through the kernel: a cgroup per instance under the agent's own cgroup (v1
// memory controller or v2 unified). Where neither is writable the agent falls back to sampling RSS.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface MemoryCgroup {
  /**
   * Moves a process in. Asynchronous (the thread pool): the kernel makes a migration wait for an RCU
   * grace period when none happened lately, 6-15 ms measured here, which must not hold the event loop.
   */
  addProcess(pid: number): Promise<void>;
  /** every process in the cgroup: everything the instance started stays in it, whatever it did with sessions */
  pids(): number[];
  /** v2: kills every process in it at once (cgroup.kill); false where the kernel has no cgroup.kill */
  killAll(): boolean;
  /** true when the kernel OOM killer killed something in this cgroup */
  oomKilled(): boolean;
  remove(): void;
}

export interface MemoryCgroups {
  version: 1 | 2;
  root: string;
  create(name: string, limitBytes: number): MemoryCgroup;
  /** Removes the agent's cgroup and any empty instance cgroups left in it (at shutdown and start). */
  sweep(removeRoot: boolean): boolean;
}

function ownPath(controllerMatch: (line: string) => boolean): string | undefined {
  try {
    const line = readFileSync("/proc/self/cgroup", "utf8").split("\n").find(controllerMatch);
    return line?.slice(line.indexOf(":", line.indexOf(":") + 1) + 1);
  } catch {
    return undefined;
  }
}

const counter = (file: string, key: string): number => {
  try {
    const m = new RegExp(`^${key} (\\d+)`, "m").exec(readFileSync(file, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
};

const tryWrite = (file: string, value: string): boolean => {
  try {
    writeFileSync(file, value);
    return true;
  } catch {
    return false;
  }
};

/** The cgroup hierarchy this agent may use, or undefined when none is writable. */
export function openMemoryCgroups(agentId: string, mount = "/sys/fs/cgroup"): MemoryCgroups | undefined {
  return openV1(agentId, mount) ?? openV2(agentId, mount);
}

function openV1(agentId: string, mount: string): MemoryCgroups | undefined {
  const base = join(mount, "memory");
  if (!existsSync(join(base, "memory.limit_in_bytes"))) return undefined;
  const own = ownPath((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l)) ?? "/";
  const root = join(base, own, `skiff-${agentId}`);
  try {
    mkdirSync(root, { recursive: true });
  } catch {
    return undefined;
  }
  return {
    version: 1,
    root,
    sweep: (removeRoot) => sweep(root, removeRoot),
    create(name, limitBytes) {
      const dir = join(root, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "memory.limit_in_bytes"), String(limitBytes));
      tryWrite(join(dir, "memory.memsw.limit_in_bytes"), String(limitBytes)); // no swap beyond the limit
      const before = counter(join(dir, "memory.oom_control"), "oom_kill");
      return {
        addProcess: (pid) => writeFile(join(dir, "cgroup.procs"), String(pid)),
        pids: () => readPids(dir),
        killAll: () => false,
        oomKilled: () =>
          counter(join(dir, "memory.oom_control"), "oom_kill") > before || counter(join(dir, "memory.oom_control"), "under_oom") > 0,
        remove: () => removeDir(dir),
      };
    },
  };
}

function openV2(agentId: string, mount: string): MemoryCgroups | undefined {
  if (!existsSync(join(mount, "cgroup.controllers"))) return undefined;
  const own = ownPath((l) => l.startsWith("0::")) ?? "/";
  const parent = join(mount, own);
  const root = join(parent, `skiff-${agentId}`);
  try {
    if (!readFileSync(join(parent, "cgroup.controllers"), "utf8").includes("memory")) return undefined;
    tryWrite(join(parent, "cgroup.subtree_control"), "+memory");
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, "cgroup.subtree_control"), "+memory");
  } catch {
    return undefined;
  }
  return {
    version: 2,
    root,
    sweep: (removeRoot) => sweep(root, removeRoot),
    create(name, limitBytes) {
      const dir = join(root, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "memory.max"), String(limitBytes));
      tryWrite(join(dir, "memory.swap.max"), "0");
      return {
        addProcess: (pid) => writeFile(join(dir, "cgroup.procs"), String(pid)),
        pids: () => readPids(dir),
        killAll: () => existsSync(join(dir, "cgroup.kill")) && tryWrite(join(dir, "cgroup.kill"), "1"),
        oomKilled: () => counter(join(dir, "memory.events"), "oom_kill") > 0,
        remove: () => removeDir(dir),
      };
    },
  };
}

function readPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Removes empty instance cgroups (and the root); true when nothing is left to remove. */
function sweep(root: string, removeRoot: boolean): boolean {
  try {
    for (const e of readdirSync(root, { withFileTypes: true })) if (e.isDirectory()) removeDir(join(root, e.name));
  } catch {}
  if (removeRoot) removeDir(root);
  return removeRoot ? !existsSync(root) : true;
}

function removeDir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // still has processes for a moment after the kill; the next agent start sweeps leftovers
  }
}
