// Limits through the kernel: a cgroup per instance (and per staging task) under the agent's own cgroup,
// with a memory limit (killed at it, no swap beyond it), a cap on processes and threads, and CPU
// shares proportional to its memory (as Cloud Foundry gives them). cgroup v1 (one directory per
// controller hierarchy) or v2 (one directory). Where none is writable the agent samples RSS instead
// and says at start what is not enforced.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";

export type Controller = "memory" | "pids" | "cpu";
const CONTROLLERS: readonly Controller[] = ["memory", "pids", "cpu"];

export interface CgroupLimits {
  /** killed by the kernel beyond it; undefined: not limited */
  memoryBytes?: number;
  /** processes plus threads; a fork past it fails with EAGAIN */
  pids?: number;
  /** v1 cpu.shares units: 1024 is what every other process on the host weighs (v2: cpu.weight 100) */
  cpuShares?: number;
}

export interface InstanceCgroup {
  /** the controllers that hold a limit for this one */
  readonly controllers: readonly Controller[];
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
  /** how many forks the pids cap refused so far (pids.events `max`) */
  pidsRefused(): number;
  remove(): void;
}

export interface InstanceCgroups {
  version: 1 | 2;
  /** the controllers the agent can use: a limit of a missing one is not enforced */
  controllers: readonly Controller[];
  /** the agent's own cgroup directories (one per v1 hierarchy) */
  roots: string[];
  create(name: string, limits: CgroupLimits): InstanceCgroup;
  /** Removes the agent's cgroup and any empty instance cgroups left in it (at shutdown and start). */
  sweep(removeRoot: boolean): boolean;
}

/** CPU shares proportional to memory: 1 share per MB, so a 1 GiB instance weighs what any other process does. */
export function cpuSharesFor(memoryMb: number): number {
  return Math.max(2, Math.min(262_144, Math.round(memoryMb)));
}

/** v1 shares → v2 cpu.weight, keeping 1024 ↔ 100 (the defaults) and the proportion. */
export function cpuWeightOf(shares: number): number {
  return Math.max(1, Math.min(10_000, Math.round((shares * 100) / 1024)));
}

export interface CgroupHost {
  /** where the hierarchies are mounted */
  mount: string;
  /** the agent's /proc/self/cgroup */
  selfCgroup: string;
}

const readSelf = (): string => {
  try {
    return readFileSync("/proc/self/cgroup", "utf8");
  } catch {
    return "";
  }
};

/** The path of this process's cgroup in the hierarchy whose line `match` accepts. */
function ownPath(selfCgroup: string, match: (line: string) => boolean): string | undefined {
  const line = selfCgroup.split("\n").find(match);
  return line?.slice(line.indexOf(":", line.indexOf(":") + 1) + 1);
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

/** The cgroups this agent may use (v1 where its controllers are mounted, else v2), or undefined when none is writable. */
export function openInstanceCgroups(agentId: string, host: CgroupHost = { mount: "/sys/fs/cgroup", selfCgroup: readSelf() }): InstanceCgroups | undefined {
  return openV1(agentId, host) ?? openV2(agentId, host);
}

/** The directory names each v1 controller's hierarchy may be mounted under. */
const V1_DIRS: Record<Controller, string[]> = {
  memory: ["memory"],
  pids: ["pids"],
  cpu: ["cpu", "cpu,cpuacct", "cpuacct,cpu"],
};

function openV1(agentId: string, host: CgroupHost): InstanceCgroups | undefined {
  const roots = new Map<Controller, string>();
  for (const c of CONTROLLERS) {
    // a hierarchy of this controller that this process is in (a root cgroup has no limit files to look for)
    const own = ownPath(host.selfCgroup, (l) => new RegExp(`^\\d+:([^:]*,)?${c}(,[^:]*)?:`).test(l));
    const dir = V1_DIRS[c].map((d) => join(host.mount, d)).find((d) => existsSync(join(d, "cgroup.procs")));
    if (!dir || own === undefined) continue;
    const root = join(dir, own, `skiff-${agentId}`);
    try {
      mkdirSync(root, { recursive: true });
      roots.set(c, root);
    } catch {
      // not writable here (a container without cgroup delegation): this limit is not enforced
    }
  }
  if (roots.size === 0) return undefined;
  const controllers = [...roots.keys()];
  return {
    version: 1,
    controllers,
    roots: [...roots.values()],
    sweep: (removeRoot) => [...roots.values()].map((r) => sweep(r, removeRoot)).every(Boolean),
    create(name, limits) {
      const dirs = new Map<Controller, string>();
      for (const [c, root] of roots) {
        const dir = join(root, name);
        mkdirSync(dir, { recursive: true });
        dirs.set(c, dir);
      }
      const mem = dirs.get("memory");
      const pids = dirs.get("pids");
      const cpu = dirs.get("cpu");
      const limited: Controller[] = [];
      if (mem && limits.memoryBytes) {
        writeFileSync(join(mem, "memory.limit_in_bytes"), String(limits.memoryBytes));
        tryWrite(join(mem, "memory.memsw.limit_in_bytes"), String(limits.memoryBytes)); // no swap beyond the limit
        limited.push("memory");
      }
      if (pids && limits.pids) {
        writeFileSync(join(pids, "pids.max"), String(limits.pids));
        limited.push("pids");
      }
      if (cpu && limits.cpuShares) {
        writeFileSync(join(cpu, "cpu.shares"), String(limits.cpuShares));
        limited.push("cpu");
      }
      const oomBefore = mem ? counter(join(mem, "memory.oom_control"), "oom_kill") : 0;
      const any = [...dirs.values()][0]!;
      return {
        controllers: limited,
        // each hierarchy in turn, all at once: each migration waits for its own grace period otherwise
        addProcess: async (pid) => void (await Promise.all([...dirs.values()].map((d) => writeFile(join(d, "cgroup.procs"), String(pid))))),
        pids: () => readPids(pids ?? mem ?? any),
        killAll: () => false,
        oomKilled: () =>
          mem !== undefined &&
          (counter(join(mem, "memory.oom_control"), "oom_kill") > oomBefore || counter(join(mem, "memory.oom_control"), "under_oom") > 0),
        pidsRefused: () => (pids ? counter(join(pids, "pids.events"), "max") : 0),
        remove: () => {
          for (const d of dirs.values()) removeDir(d);
        },
      };
    },
  };
}

function openV2(agentId: string, host: CgroupHost): InstanceCgroups | undefined {
  const mount = host.mount;
  if (!existsSync(join(mount, "cgroup.controllers"))) return undefined;
  const own = ownPath(host.selfCgroup, (l) => l.startsWith("0::")) ?? "/";
  const parent = join(mount, own);
  const root = join(parent, `skiff-${agentId}`);
  let controllers: Controller[];
  try {
    const offered = readFileSync(join(parent, "cgroup.controllers"), "utf8").split(/\s+/);
    const wanted = CONTROLLERS.filter((c) => offered.includes(c));
    if (wanted.length === 0) return undefined;
    for (const c of wanted) tryWrite(join(parent, "cgroup.subtree_control"), `+${c}`);
    mkdirSync(root, { recursive: true });
    controllers = wanted.filter((c) => tryWrite(join(root, "cgroup.subtree_control"), `+${c}`));
    if (controllers.length === 0) return undefined;
  } catch {
    return undefined;
  }
  return {
    version: 2,
    controllers,
    roots: [root],
    sweep: (removeRoot) => sweep(root, removeRoot),
    create(name, limits) {
      const dir = join(root, name);
      mkdirSync(dir, { recursive: true });
      const limited: Controller[] = [];
      if (controllers.includes("memory") && limits.memoryBytes) {
        writeFileSync(join(dir, "memory.max"), String(limits.memoryBytes));
        tryWrite(join(dir, "memory.swap.max"), "0");
        limited.push("memory");
      }
      if (controllers.includes("pids") && limits.pids) {
        writeFileSync(join(dir, "pids.max"), String(limits.pids));
        limited.push("pids");
      }
      if (controllers.includes("cpu") && limits.cpuShares) {
        writeFileSync(join(dir, "cpu.weight"), String(cpuWeightOf(limits.cpuShares)));
        limited.push("cpu");
      }
      return {
        controllers: limited,
        addProcess: (pid) => writeFile(join(dir, "cgroup.procs"), String(pid)),
        pids: () => readPids(dir),
        killAll: () => existsSync(join(dir, "cgroup.kill")) && tryWrite(join(dir, "cgroup.kill"), "1"),
        oomKilled: () => counter(join(dir, "memory.events"), "oom_kill") > 0,
        pidsRefused: () => counter(join(dir, "pids.events"), "max"),
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

/** What the agent says at start about the limits it can hold (and which it cannot). */
export function describeLimits(cgroups: InstanceCgroups | undefined): { summary: string; missing: string[] } {
  const has = (c: Controller) => cgroups?.controllers.includes(c) ?? false;
  const missing: string[] = [];
  if (!has("memory")) missing.push("memory (sampled RSS instead: a fast allocation can overshoot before the kill)");
  if (!has("pids")) missing.push("process cap (a fork bomb is stopped only by the host's limits)");
  if (!has("cpu")) missing.push("CPU shares (an instance may take any amount of CPU)");
  return { summary: cgroups ? `cgroup v${cgroups.version}: ${cgroups.controllers.join(", ")}` : "none (no writable cgroup v1 or v2)", missing };
}
