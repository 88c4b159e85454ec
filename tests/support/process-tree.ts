// The processes below a given pid, read from /proc, for tests that must prove nothing they started is
// left running. A process is identified by pid and start time, so a pid reused later is not mistaken
// for the one seen before.

import { readdirSync, readFileSync } from "node:fs";

export interface Proc {
  pid: number;
  ppid: number;
  /** clock ticks after boot: tells a pid apart from a later process that reused it */
  startTime: string;
  state: string;
  cmdline: string;
}

export function readProc(pid: number): Proc | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // the command name is in parentheses and may hold spaces: the fields after it are fixed
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
    return { pid, ppid: Number(rest[1]), state: rest[0]!, startTime: rest[19]!, cmdline };
  } catch {
    return undefined; // gone
  }
}

/** Every live descendant of `root` (not root itself). */
export function descendants(root: number): Proc[] {
  const all = readdirSync("/proc").filter((n) => /^\d+$/.test(n)).map((n) => readProc(Number(n))).filter((p): p is Proc => !!p);
  const byParent = new Map<number, Proc[]>();
  for (const p of all) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p]);
  const out: Proc[] = [];
  const walk = (pid: number) => {
    for (const c of byParent.get(pid) ?? []) {
      out.push(c);
      walk(c.pid);
    }
  };
  walk(root);
  return out;
}

/** Still running: the same process (pid and start time), not a zombie. */
export const alive = (p: Proc): boolean => {
  const now = readProc(p.pid);
  return !!now && now.startTime === p.startTime && now.state !== "Z";
};

/**
 * Not gone yet: the same process is still in the process table, running or a zombie nobody has reaped.
 * What a runner that stops its children in order (stop-child.ts) leaves none of when it exits.
 */
export const notReaped = (p: Proc): boolean => readProc(p.pid)?.startTime === p.startTime;

/** How a process left over is shown in a failed assertion. */
export const describeProc = (p: Proc): string => `${p.pid} ${readProc(p.pid)?.state ?? "?"} ${p.cmdline}`;

/** Adds to `seen` each descendant of `roots` not in it yet (by pid and start time). */
export function collectDescendants(seen: Proc[], ...roots: number[]): Proc[] {
  for (const root of roots)
    for (const p of descendants(root)) if (!seen.some((q) => q.pid === p.pid && q.startTime === p.startTime)) seen.push(p);
  return seen;
}
