// How a runner (npm start's cluster, a bench, the bench runner) learns that it must stop: SIGINT,
// SIGTERM or SIGHUP, or its parent gone without a word (npm SIGKILLed, or killed by a SIGHUP that npm
// does not forward). Polling the parent pid is portable, needs no FFI for prctl(PR_SET_PDEATHSIG), and
// works whatever sits in between; half a second of polling costs nothing.

import { readFileSync } from "node:fs";

export type StopRequest =
  | { kind: "signal"; signal: "SIGINT" | "SIGTERM" | "SIGHUP"; exitCode: number; why: string }
  | { kind: "parent-gone"; parentPid: number; exitCode: number; why: string };

const SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

const WHY: Record<keyof typeof SIGNALS, string> = {
  SIGINT: "interrupted (SIGINT)",
  SIGTERM: "terminated (SIGTERM)",
  SIGHUP: "hung up (SIGHUP)",
};

/**
 * Was SIGHUP ignored when this process started (`nohup`)? Then the user asked for the process to outlive
 * its terminal and its parent: neither a hangup nor the parent's end is a request to stop.
 */
export function startedUnderNohup(): boolean {
  try {
    const mask = /^SigIgn:\s*([0-9a-f]+)/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
    return mask !== undefined && (BigInt(`0x${mask}`) & 1n) === 1n;
  } catch {
    return false;
  }
}

/**
 * What this process started and has not stopped yet, as the stops that would do it: for a runner that
 * hands every stop request to one handler (the test run's, tests/support/stop-on-signal.ts), which runs
 * them all before it exits. Whoever starts something adds its stop, and removes it once stopped.
 */
export const stopsToRunBeforeExit = new Set<() => Promise<void>>();

// Read once, at load: a handler installed below would hide the inherited disposition.
const nohup = startedUnderNohup();

/**
 * Calls `onStop` once, on the first stop request; later ones are ignored (the stop under way is bounded).
 * Output errors are swallowed from then on: after a hangup the terminal, or npm's end of the pipe, may be
 * gone, and a failed log line must not cut the stop short. Returns a function that removes the handlers.
 */
export function onStopRequest(onStop: (request: StopRequest) => void, opts: { parentPollMs?: number } = {}): () => void {
  let requested = false;
  const request = (r: StopRequest) => {
    if (requested) return;
    requested = true;
    for (const s of [process.stdout, process.stderr]) s.on("error", () => {});
    onStop(r);
  };
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const [signal, n] of Object.entries(SIGNALS) as [keyof typeof SIGNALS, number][]) {
    if (signal === "SIGHUP" && nohup) continue;
    const h = () => request({ kind: "signal", signal, exitCode: 128 + n, why: WHY[signal] });
    handlers.set(signal, h);
    process.on(signal, h);
  }
  // The parent at start: when it is gone this process is re-parented (to init or a subreaper).
  const parentPid = process.ppid;
  const watch =
    nohup || parentPid <= 1
      ? undefined
      : setInterval(() => {
          if (process.ppid !== parentPid)
            request({ kind: "parent-gone", parentPid, exitCode: 128 + SIGNALS.SIGHUP, why: `the process that started it (pid ${parentPid}) is gone` });
        }, opts.parentPollMs ?? 500);
  watch?.unref();
  return () => {
    for (const [signal, h] of handlers) process.off(signal, h);
    if (watch) clearInterval(watch);
  };
}
