// Reaps the sandboxes' init processes. bwrap's outer process exits as soon as the init it made (PID 1 of
// the sandbox's PID namespace) reports the app's status, before that init has been reaped: the init is
// orphaned, and on a host whose PID 1 reaps slowly it lingers as a zombie long after its instance
// stopped (measured here: every sandbox left one; a stopped cluster was not gone). The agent makes itself
// a child subreaper, so those inits come to it, and reaps them itself. A zombie child of the agent that
// is PID 1 of another namespace is never one Bun spawned (Bun spawns the outer bwrap, which lives in the
// agent's namespace), so waiting for it takes no exit status Bun is waiting for.

import { dlopen, FFIType } from "bun:ffi";
import { readdirSync, readFileSync } from "node:fs";

const PR_SET_CHILD_SUBREAPER = 36;
const WNOHANG = 1;

let libc: ReturnType<typeof open> | undefined;
function open() {
  return dlopen("libc.so.6", {
    prctl: { args: [FFIType.i32, FFIType.u64, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
    waitpid: { args: [FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  });
}

/** Orphans below the agent come to it instead of to the host's PID 1. False where the call fails. */
export function becomeSubreaper(): boolean {
  try {
    libc ??= open();
    return libc.symbols.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) === 0;
  } catch {
    return false;
  }
}

/** The agent's children that are a sandbox's init, with whether each has exited (a zombie). */
export function sandboxInits(self = process.pid): { pid: number; zombie: boolean }[] {
  const out: { pid: number; zombie: boolean }[] = [];
  for (const name of readdirSync("/proc")) {
    if (name.charCodeAt(0) > 57) continue; // not a pid
    let status: string;
    try {
      status = readFileSync(`/proc/${name}/status`, "latin1");
    } catch {
      continue;
    }
    if (/^PPid:\s+(\d+)/m.exec(status)?.[1] !== String(self)) continue;
    const nspid = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/) ?? [];
    if (nspid.length < 2 || nspid.at(-1) !== "1") continue;
    out.push({ pid: Number(name), zombie: /^State:\s+Z/m.test(status) });
  }
  return out;
}

/** Reaps every exited sandbox init; returns how many are still running. */
export function reapSandboxInits(): number {
  if (!libc) return 0; // not a subreaper: they were never ours
  let running = 0;
  for (const init of sandboxInits()) {
    if (init.zombie) libc.symbols.waitpid(init.pid, null, WNOHANG);
    else running++;
  }
  return running;
}

/** Reaps until no sandbox init is left, for at most `ms` (an agent about to exit). */
export async function reapAllSandboxInits(ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (reapSandboxInits() > 0 && Date.now() < until) await Bun.sleep(20);
  reapSandboxInits();
}
