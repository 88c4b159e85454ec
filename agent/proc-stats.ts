// Reads /proc once per sample for every instance: resident memory and CPU time of each process
// session (an instance and everything it started share the session its leader created).

import { readdirSync, readFileSync } from "node:fs";

export interface SessionUsage {
  rssBytes: number;
  /** user+system CPU seconds of the live processes */
  cpuSeconds: number;
  pids: number[];
}

const PAGE = 4096;
const HZ = 100;

/** Usage of each session id in `sessions`, from one pass over /proc. */
export function sampleSessions(sessions: ReadonlySet<number>): Map<number, SessionUsage> {
  const out = new Map<number, SessionUsage>();
  if (sessions.size === 0) return out;
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return out;
  }
  for (const name of entries) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, "latin1");
    } catch {
      continue; // gone meanwhile
    }
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const sid = Number(f[3]);
    if (!sessions.has(sid)) continue;
    let u = out.get(sid);
    if (!u) out.set(sid, (u = { rssBytes: 0, cpuSeconds: 0, pids: [] }));
    u.rssBytes += Number(f[21]) * PAGE;
    u.cpuSeconds += (Number(f[11]) + Number(f[12])) / HZ;
    u.pids.push(Number(name));
  }
  return out;
}

/** Every pid in a session (to signal the stragglers that left the process group). */
export function sessionPids(sid: number): number[] {
  return sampleSessions(new Set([sid])).get(sid)?.pids ?? [];
}

/** Signals a whole session: the process group first, then any process that made its own group. */
export function signalSession(sid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-sid, signal);
  } catch {}
  for (const pid of sessionPids(sid))
    try {
      process.kill(pid, signal);
    } catch {}
}

export function isAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The process's start time in clock ticks since boot, to tell a recorded pid from a reused one. */
export function processStartTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  } catch {
    return undefined;
  }
}
