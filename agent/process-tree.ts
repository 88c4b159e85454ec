// Finds every process that belongs to an instance, from /proc, so that none outlives it: the
// members of its session and process group, their descendants (by parent pid, walked before anything
// is signalled), and processes that carry its tag in their environment (a double-forked daemon is
// reparented to init at once, so no parent walk finds it, but it inherited CF_INSTANCE_GUID).

import { readdirSync, readFileSync } from "node:fs";

export interface ProcEntry {
  pid: number;
  ppid: number;
  pgrp: number;
  sid: number;
  /** one letter: R, S, D, Z (zombie: already dead, waiting for its parent), T, X… */
  state: string;
}

/** Parses /proc/<pid>/stat (the command name may hold spaces and parentheses). */
export function parseStat(pid: number, stat: string): ProcEntry {
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { pid, ppid: Number(f[1]), pgrp: Number(f[2]), sid: Number(f[3]), state: f[0] ?? "?" };
}

const numericNames = (): string[] => {
  try {
    return readdirSync("/proc").filter((n) => n.charCodeAt(0) >= 48 && n.charCodeAt(0) <= 57);
  } catch {
    return [];
  }
};

/** Every live (not zombie) process, from one pass over /proc. */
export function readProcTable(): ProcEntry[] {
  const out: ProcEntry[] = [];
  for (const name of numericNames()) {
    try {
      const e = parseStat(Number(name), readFileSync(`/proc/${name}/stat`, "latin1"));
      if (e.state !== "Z" && e.state !== "X") out.push(e);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * The instance's processes in `table`: members of session/group `leader`, processes tagged `tag`
 * (see `hasEnv`), and every descendant of those. Pure but for the `tagged` probe.
 */
export function instanceMembers(table: readonly ProcEntry[], leader: number, tagged: (pid: number) => boolean): Set<number> {
  const members = new Set<number>();
  const children = new Map<number, number[]>();
  for (const e of table) {
    let list = children.get(e.ppid);
    if (!list) children.set(e.ppid, (list = []));
    list.push(e.pid);
    if (e.pid === leader || e.sid === leader || e.pgrp === leader || tagged(e.pid)) members.add(e.pid);
  }
  const todo = [...members];
  while (todo.length > 0) {
    for (const child of children.get(todo.pop()!) ?? []) {
      if (members.has(child)) continue;
      members.add(child);
      todo.push(child);
    }
  }
  return members;
}

/** True when process `pid`'s initial environment holds `key=value` (false when unreadable). */
export function hasEnv(pid: number, key: string, value: string): boolean {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, "latin1");
    const entry = `${key}=${value}`;
    const at = env.indexOf(entry);
    return at >= 0 && (at === 0 || env.charCodeAt(at - 1) === 0) && (at + entry.length === env.length || env.charCodeAt(at + entry.length) === 0);
  } catch {
    return false;
  }
}

/** Live processes whose real, effective, saved or file-system uid is `uid`. */
export function processesOfUid(uid: number): number[] {
  const out: number[] = [];
  const want = String(uid);
  for (const name of numericNames()) {
    let status: string;
    try {
      status = readFileSync(`/proc/${name}/status`, "latin1");
    } catch {
      continue;
    }
    if (/^State:\s+[ZX]/m.test(status)) continue;
    const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(status);
    if (m && (m[1] === want || m[2] === want || m[3] === want || m[4] === want)) out.push(Number(name));
  }
  return out;
}

/** True when `pid` no longer runs (absent, or a zombie waiting to be reaped). */
export function isGone(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "latin1");
    const state = s.slice(s.lastIndexOf(")") + 2, s.lastIndexOf(")") + 3);
    return state === "Z" || state === "X";
  } catch {
    return true;
  }
}
