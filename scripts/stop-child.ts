// Stops a child process in order: signal it, wait until it has exited (and been reaped, so not even a
// zombie is left), SIGKILL it after a bounded grace period and wait again. Every runner that starts
// processes (npm start's cluster, the benches, the test harnesses) stops them through here, so none of
// them exits while something it started is still dying and holding a port.

import type { ChildProcess } from "node:child_process";

export interface StopChildOptions {
  /** the first signal (default SIGTERM) */
  signal?: NodeJS.Signals;
  /** how long the first signal has before SIGKILL (default 5 s) */
  graceMs?: number;
  /**
   * The child leads its own process group (spawned `detached`): signal the whole group, and after the
   * leader exits, SIGKILL what is left of the group and wait until it is gone too.
   */
  group?: boolean;
}

/** How long members of a group, orphaned when their leader exited, may take to be gone (init reaps them). */
const GROUP_GONE_MS = 5_000;

export const hasExited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

/**
 * Resolves once the child has exited. Node and Bun emit `exit` after they reaped it (waitpid), so by
 * then its pid is free. A child that never started (spawn failed: no pid) counts as exited.
 */
export function exitOf(child: ChildProcess): Promise<void> {
  if (hasExited(child) || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    // exited between the check above and now (the event was emitted already)
    if (hasExited(child)) resolve();
  });
}

/** Sends `signal` to the child, or to its group; false when there was nothing left to signal. */
function send(child: ChildProcess, signal: NodeJS.Signals, group: boolean): boolean {
  const pid = child.pid;
  if (pid === undefined) return false;
  if (group) {
    try {
      process.kill(-pid, signal);
      return true;
    } catch {
      // not a group leader after all (or the group is gone): the child alone
    }
  }
  if (hasExited(child)) return false;
  try {
    return child.kill(signal);
  } catch {
    return false;
  }
}

/** Is any process (a zombie included) still in process group `pgid`? */
export function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // members running as another user
  }
}

/** Waits until process group `pgid` is empty, or `timeoutMs` passed; true when it is empty. */
export async function waitForGroupGone(pgid: number, timeoutMs = GROUP_GONE_MS): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (groupExists(pgid)) {
    if (Date.now() >= deadline) return false;
    await Bun.sleep(20);
  }
  return true;
}

/** Stops one child (see the file's head); resolves when it, and with `group` its group, is gone. */
export async function stopChild(child: ChildProcess, opts: StopChildOptions = {}): Promise<void> {
  const { signal = "SIGTERM", graceMs = 5_000, group = false } = opts;
  const pid = child.pid;
  if (pid === undefined) return;
  if (!hasExited(child)) {
    send(child, signal, group);
    let timer: Timer | undefined;
    const inTime = await Promise.race([
      exitOf(child).then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
    ]);
    clearTimeout(timer);
    if (!inTime) {
      send(child, "SIGKILL", group);
      await exitOf(child);
    }
  }
  // Helpers the leader forked into its group (and left behind when it exited) go with it.
  if (group && groupExists(pid)) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {}
    await waitForGroupGone(pid);
  }
}

/** Stops several children at once, each as stopChild does; resolves when every one is gone. */
export async function stopChildren(children: Iterable<ChildProcess>, opts: StopChildOptions = {}): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c, opts)));
}
