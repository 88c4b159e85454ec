// The process table as /proc shows it, for the benches that measure what a process tree costs (the
// agent's sandboxes, the sandbox tools): who belongs to whom, each process's name, its memory.

import { readdirSync, readFileSync } from "node:fs";

/** The fields of every process's /proc/<pid>/stat after its name (state, ppid, pgrp, session, …); a process gone meanwhile is left out. */
function statFields(): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const n of readdirSync("/proc")) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const stat = readFileSync(`/proc/${n}/stat`, "latin1");
      // the name is in parentheses and may hold spaces: the fields after it are fixed
      out.set(Number(n), stat.slice(stat.lastIndexOf(")") + 2).split(" "));
    } catch {}
  }
  return out;
}

/** The processes of each session id (an instance's processes share the session its first one made). */
export function processesBySession(): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const [pid, fields] of statFields()) {
    const sid = Number(fields[3]);
    let list = out.get(sid);
    if (!list) out.set(sid, (list = []));
    list.push(pid);
  }
  return out;
}

/** The processes below `root` (by parent pid), `root` included. */
export function processTree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const [pid, fields] of statFields()) parent.set(pid, Number(fields[1]));
  const out = [root];
  for (let k = 0; k < out.length; k++) for (const [pid, pp] of parent) if (pp === out[k]) out.push(pid);
  return out;
}

/** A process's name (/proc/<pid>/comm), "" once it is gone. */
export const comm = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
};

/** RSS and proportional set size (its private pages plus its share of the shared ones), KiB; 0 once it is gone. */
export function memoryKiB(pid: number): { rss: number; pss: number } {
  try {
    const t = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    return { rss: Number(/^Rss:\s+(\d+)/m.exec(t)?.[1] ?? 0), pss: Number(/^Pss:\s+(\d+)/m.exec(t)?.[1] ?? 0) };
  } catch {
    return { rss: 0, pss: 0 };
  }
}
