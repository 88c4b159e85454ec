// Which host process answered: inside its sandbox an instance is pid 2 of its own PID namespace (issue
// 25), so the pid an app prints is found again in /proc by its uid (one per instance) and the last field
// of NSpid. Without a sandbox the printed pid is the host's already.

import { readdirSync, readFileSync } from "node:fs";

/** The host pid of the process an instance knows as `nsPid`, running as `uid`. */
export function hostPidOf(nsPid: number, uid: number): number {
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let status = "";
    try {
      status = readFileSync(`/proc/${name}/status`, "latin1");
    } catch {
      continue;
    }
    const nspid = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/) ?? [];
    if (nspid.length > 1 && nspid.at(-1) === String(nsPid) && /^Uid:\s+(\d+)/m.exec(status)?.[1] === String(uid)) return Number(name);
  }
  return nsPid;
}

/** The host pid behind examples/hello's answer ("… pid N, uid U)"), or undefined when it names none. */
export function helloHostPid(body: string): number | undefined {
  const m = /pid (\d+), uid (\d+)/.exec(body);
  return m ? hostPidOf(Number(m[1]), Number(m[2])) : undefined;
}
