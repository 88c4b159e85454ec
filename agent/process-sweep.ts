// Signals and kills everything an instance (or a staging build) started, so that no process outlives
// it: not only its session and process group (which `setsid` leaves), but also what its memory cgroup
// holds, what runs as its own uid, and its descendants and tagged daemons found in /proc.

import type { InstanceCgroup } from "./instance-cgroup.ts";
import { hasEnv, instanceMembers, isGone, processesOfUid, readProcTable } from "./process-tree.ts";

export interface ProcessScope {
  /** the first process: its session and process-group id (0 when it is unknown or gone for good) */
  leader: number;
  /** an environment entry every process of the scope inherited (CF_INSTANCE_GUID=<id>) */
  tag?: { key: string; value: string };
  /** the instance's cgroup: everything it forks stays in it */
  cgroup?: Pick<InstanceCgroup, "pids" | "killAll">;
  /** a uid that only this scope runs as: every process running as it is the scope's */
  exclusiveUser?: { uid: number; gid: number };
  /**
   * The sandbox's outer process (bwrap, the leader): it exits by itself, with the app's status, once
   * the app inside has; a SIGTERM would end it at once, and the agent would take that for the
   * instance's end and SIGKILL the app in the middle of its graceful stop. Only SIGKILL reaches it.
   */
  monitor?: number;
}

/** Every live process of the scope now (never the agent itself). */
export function scopeMembers(scope: ProcessScope): Set<number> {
  const out = new Set<number>();
  for (const pid of scope.cgroup?.pids() ?? []) out.add(pid);
  if (scope.exclusiveUser) for (const pid of processesOfUid(scope.exclusiveUser.uid)) out.add(pid);
  // The parent walk is cheap and always done. The environment scan reads every process's environ,
  // so it runs only when neither a cgroup nor an own uid already holds every process of the scope.
  const { tag } = scope;
  const byTag = tag && !scope.cgroup && !scope.exclusiveUser ? (pid: number) => hasEnv(pid, tag.key, tag.value) : () => false;
  const leader = scope.leader > 0 ? scope.leader : -1; // sid/pgrp 0 is the kernel's threads
  for (const pid of instanceMembers(readProcTable(), leader, byTag)) out.add(pid);
  out.delete(process.pid);
  for (const pid of out) if (pid <= 1 || isGone(pid)) out.delete(pid);
  return out;
}

const signal = (pid: number, sig: NodeJS.Signals) => {
  try {
    process.kill(pid, sig);
  } catch {}
};

/** Sends `sig` to every process of the scope (SIGTERM at stop: each gets its chance to finish). */
export function signalScope(scope: ProcessScope, sig: NodeJS.Signals): void {
  const spare = sig === "SIGKILL" ? undefined : scope.monitor;
  if (scope.leader > 0 && spare === undefined) signal(-scope.leader, sig);
  for (const pid of scopeMembers(scope)) if (pid !== spare) signal(pid, sig);
}

/**
 * SIGKILLs every process of the scope until none is left or `timeoutMs` passed; returns the pids
 * still alive then (empty: clean). With an own uid, a helper running as that uid first sends
 * kill(-1): the kernel delivers it to every process of the uid at once, so a forking loop cannot
 * outrun it; a v2 cgroup gets cgroup.kill, which is as atomic. Then /proc is swept until empty.
 */
export async function killScope(scope: ProcessScope, timeoutMs = 3000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  if (scope.leader > 0) signal(-scope.leader, "SIGKILL");
  if (scope.exclusiveUser) await killAllOfUid(scope.exclusiveUser);
  scope.cgroup?.killAll();
  for (;;) {
    const left = scopeMembers(scope);
    if (left.size === 0) return [];
    for (const pid of left) signal(pid, "SIGKILL");
    if (Date.now() > deadline) return [...left];
    await Bun.sleep(20);
  }
}

async function killAllOfUid(user: { uid: number; gid: number }): Promise<void> {
  if (processesOfUid(user.uid).length === 0) return;
  try {
    // kill(-1) from the uid itself reaches exactly that uid's processes (and never the caller)
    const helper = Bun.spawn(["/bin/sh", "-c", "kill -KILL -1"], { uid: user.uid, gid: user.gid, stdio: ["ignore", "ignore", "ignore"] });
    await helper.exited;
  } catch {
    // the sweep below still kills them one by one
  }
}
