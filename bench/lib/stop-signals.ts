// A bench stopped from outside (Ctrl-C, kill) stops what it started before it exits: without this,
// Bun exits at once on SIGINT/SIGTERM and the proxies, routers, NATS servers and wrk it spawned stay.

import type { ChildProcess } from "node:child_process";

/** short-lived children a bench does not track itself (a wrk run): ended on a stop signal too */
const running = new Set<ChildProcess>();

export function killOnStop(child: ChildProcess): void {
  running.add(child);
  child.once("exit", () => running.delete(child));
}

/**
 * Runs `cleanUp` on SIGINT/SIGTERM, then ends the untracked children and exits 128 + the signal.
 * Returns the same clean-up, run at most once, for the bench's own `finally`: a signal that arrives
 * while the bench is already stopping waits for that one run instead of racing it.
 */
export function stopOnSignals(cleanUp: () => Promise<unknown> | unknown): () => Promise<void> {
  let once: Promise<void> | undefined;
  const run = () => (once ??= Promise.resolve().then(cleanUp).then(() => {}, () => {}));
  for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const)
    process.on(sig, () => {
      void run().finally(() => {
        for (const c of running) c.kill("SIGKILL");
        process.exit(code);
      });
    });
  return run;
}
