// Reaps the sandboxes' init processes. bwrap's outer process exits as soon as the init it made (PID 1 of
// the sandbox's PID namespace) reports the app's status, before that init has been reaped: the init is
// orphaned, and on a host whose PID 1 reaps slowly it lingers as a zombie long after its instance
// stopped (measured here: every sandbox left one; a stopped cluster was not gone). The agent makes itself
// a child subreaper, so those inits come to it, and reaps them itself. A zombie child of the agent that
// is PID 1 of another namespace is never one Bun spawned (Bun spawns the outer bwrap, which lives in the
// agent's namespace), so waiting for it takes no exit status Bun is waiting for.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

/** agent/native/reaper.c, built by scripts/setup.mjs: a Node-API module, so it loads without the JIT (bun:ffi does not). */
export const REAPER_MODULE = join(import.meta.dir, "native", "dist", "reaper.node");

type Native = { becomeSubreaper(): number; reap(pid: number): number };
let native: Native | undefined;

/**
 * Orphans below the agent come to it instead of to the host's PID 1. Returns why not where it cannot
 * be (the module is not built, or the call fails), undefined when it is.
 */
export function becomeSubreaper(): string | undefined {
  if (!existsSync(REAPER_MODULE)) return `${REAPER_MODULE} is not built (run node scripts/setup.mjs --build-only)`;
  try {
    const mod = createRequire(import.meta.url)(REAPER_MODULE) as Native;
    if (mod.becomeSubreaper() !== 0) return "prctl(PR_SET_CHILD_SUBREAPER) failed";
    native = mod;
    return undefined;
  } catch (err) {
    return `${REAPER_MODULE} does not load: ${(err as Error).message}`;
  }
}

type Child = { pid: number; zombie: boolean; sandboxInit: boolean };

/** The agent's child processes, each with whether it has exited (a zombie) and is a sandbox's init. */
function children(self: number): Child[] {
  const out: Child[] = [];
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
    out.push({ pid: Number(name), zombie: /^State:\s+Z/m.test(status), sandboxInit: nspid.length >= 2 && nspid.at(-1) === "1" });
  }
  return out;
}

/** The agent's children that are a sandbox's init, with whether each has exited (a zombie). */
export function sandboxInits(self = process.pid): { pid: number; zombie: boolean }[] {
  return children(self).filter((c) => c.sandboxInit).map(({ pid, zombie }) => ({ pid, zombie }));
}

/** Reaps every exited sandbox init; returns how many are still running. */
export function reapSandboxInits(): number {
  if (!native) return 0; // not a subreaper: they were never ours
  let running = 0;
  for (const init of sandboxInits()) {
    if (init.zombie) native.reap(init.pid);
    else running++;
  }
  return running;
}

/**
 * For an agent about to exit: reaps until it has no child left, for at most `ms`. An instance just
 * stopped may still have its outer bwrap waiting on the init, whose parent is then that bwrap and not
 * the agent: exiting then would leave the init to the host's PID 1 once bwrap goes (a zombie where PID 1
 * reaps slowly). So this waits for every child: the outer bwraps (Bun reaps those) and the inits they
 * leave to the agent (reaped here).
 */
export async function reapAllSandboxInits(ms = 2000): Promise<void> {
  if (!native) return; // not a subreaper: no init comes to the agent
  const until = Date.now() + ms;
  for (;;) {
    // one look at /proc a round: the exited inits reaped, whatever else is left waited for
    const left = children(process.pid).filter((c) => !(c.sandboxInit && c.zombie && native!.reap(c.pid) > 0));
    if (left.length === 0 || Date.now() >= until) return;
    await Bun.sleep(20);
  }
}
