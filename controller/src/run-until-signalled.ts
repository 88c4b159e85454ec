// The process shell every controller entry point shares: start, then stop cleanly on SIGTERM/SIGINT
// (within 10 s at most), exit 1 with the reason when starting fails.

import type { Logger } from "../../bus/index.ts";

export function runUntilSignalled(log: Logger, start: () => Promise<{ stop(): Promise<void> }>): void {
  start().then(
    (running) => {
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info("stopping", { signal });
        // never hang on the way out: a stuck request or pass must not keep the process alive
        setTimeout(() => {
          log.warn("stop took over 10 s; exiting anyway");
          process.exit(0);
        }, 10_000).unref();
        await running.stop();
        process.exit(0);
      };
      process.on("SIGTERM", () => void stop("SIGTERM"));
      process.on("SIGINT", () => void stop("SIGINT"));
    },
    (err) => {
      log.error("failed to start", { error: err });
      process.exit(1);
    },
  );
}
