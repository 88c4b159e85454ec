// Stopping an npm script from outside the way `kill`, `timeout`, a CI job's cancel or `docker stop` do:
// a signal to npm's pid alone, not to its process group as a terminal's Ctrl-C is.

import type { TestProcess } from "./processes.ts";
import { collectDescendants, describeProc, descendants, notReaped, readProc, type Proc } from "./process-tree.ts";

/**
 * Sends `signal` to npm's pid alone and watches the runner npm started (its child whose command line
 * holds `runner`: exec'd, no shell between) and everything below it, adding each to `tree`. Resolves
 * when the runner has exited, with what of the tree (the runner and npm aside) was not gone at that
 * moment: a runner that stops each process it started and waits for it leaves nothing, not even a
 * zombie. Throws if the runner is still there after `timeoutMs`.
 */
export async function stopThroughNpm(npm: TestProcess, signal: NodeJS.Signals, tree: Proc[], runner: string, timeoutMs = 45_000): Promise<{ runner: Proc; left: string[]; ms: number }> {
  const r = descendants(npm.pid).find((p) => p.ppid === npm.pid && p.cmdline.includes(runner));
  if (!r) throw new Error(`npm runs no ${runner} right below it: ${descendants(npm.pid).map(describeProc).join("; ")}`);
  collectDescendants(tree, npm.pid);
  const t0 = performance.now();
  process.kill(npm.pid, signal);
  // exited: a zombie until npm (or init, once npm is gone) reaps it, or reaped already
  const exited = () => readProc(r.pid)?.startTime !== r.startTime || readProc(r.pid)?.state === "Z";
  while (!exited()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`${runner} did not stop within ${timeoutMs} ms of ${signal} to npm:\n${npm.output().slice(-4000)}`);
    collectDescendants(tree, r.pid);
    await Bun.sleep(20);
  }
  const left = tree.filter((p) => p.pid !== r.pid && p.pid !== npm.pid && notReaped(p)).map(describeProc);
  return { runner: r, left, ms: performance.now() - t0 };
}
