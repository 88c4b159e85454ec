// Turns how an instance ended into the words a person reads in `skiff events` (droplet.exited).
// Pure.

import { constants } from "node:os";

export type ExitCause =
  | { type: "exited"; code: number }
  | { type: "signal"; signal: string }
  | { type: "out_of_memory"; limitMb: number }
  | { type: "health_check_timeout"; timeoutSeconds: number; check: string }
  | { type: "start_failed"; message: string }
  | { type: "stopped" };

const SIGNALS = constants.signals as Record<string, number>;

export function signalNumber(signal: string): number {
  return SIGNALS[signal] ?? 0;
}

/** The exit status reported on the bus: the code, 128+signal for a signal (as a shell would), -1 when none. */
export function exitStatus(cause: ExitCause): number {
  switch (cause.type) {
    case "exited":
      return Math.max(-1, Math.min(255, cause.code));
    case "signal":
      return 128 + signalNumber(cause.signal);
    case "out_of_memory":
      return 137;
    default:
      return -1;
  }
}

export function describeExit(cause: ExitCause): string {
  switch (cause.type) {
    case "exited":
      return `exited with status ${cause.code}`;
    case "signal":
      return `killed by signal ${signalNumber(cause.signal)}`;
    case "out_of_memory":
      return `out of memory (over the ${cause.limitMb} MB limit)`;
    case "health_check_timeout":
      return `health check timed out (${cause.check} check, ${cause.timeoutSeconds} s)`;
    case "start_failed":
      return `failed to start: ${cause.message}`;
    case "stopped":
      return "stopped";
  }
}

/** Bun reports a child's signal by name or by number; exit descriptions want the name. */
export function signalName(signal: NodeJS.Signals | number | null): NodeJS.Signals | null {
  if (signal === null || typeof signal === "string") return signal;
  const entry = Object.entries(constants.signals).find(([, n]) => n === signal);
  return (entry?.[0] as NodeJS.Signals | undefined) ?? null;
}
