// A bench stopped from outside (Ctrl-C, kill, a hangup, or its parent gone) stops what it started, and
// waits until every one of those processes has exited, before it exits itself: without this, Bun exits
// at once on SIGINT/SIGTERM and the proxies, routers, NATS servers and wrk it spawned stay; and a bench
// that only signalled them could exit while they were still dying, holding their ports.

import type { ChildProcess } from "node:child_process";
import { onStopRequest } from "../../scripts/stop-request.ts";
import { stopChildren } from "../../scripts/stop-child.ts";

export { stopChild, stopChildren } from "../../scripts/stop-child.ts";

/** short-lived children a bench does not track itself (a wrk run): stopped on a stop request too */
const running = new Set<ChildProcess>();

export function killOnStop(child: ChildProcess): void {
  running.add(child);
  child.once("exit", () => running.delete(child));
}

/**
 * Runs `cleanUp` on SIGINT, SIGTERM, SIGHUP or when the parent is gone, then stops the untracked
 * children, waits for them, and exits 128 + the signal. Returns the same clean-up, run at most once,
 * for the bench's own `finally`: a signal that arrives while the bench is already stopping waits for
 * that one run instead of racing it. `cleanUp` must resolve only once what it stops has exited.
 */
export function stopOnSignals(cleanUp: () => Promise<unknown> | unknown): () => Promise<void> {
  let once: Promise<void> | undefined;
  const run = () => (once ??= Promise.resolve().then(cleanUp).then(() => {}, () => {}));
  onStopRequest((request) => {
    console.error(`bench: ${request.why}; stopping what it started`);
    void Promise.all([run(), stopChildren(running, { graceMs: 2_000 })]).finally(() => process.exit(request.exitCode));
  });
  return run;
}
