// The health manager's decision: a pure diff of desired and actual state into start and stop
// actions. No bus, no database, no clock: everything arrives as arguments, so it is tested directly.

import type { ActualInstance } from "./actual-state.ts";

/** What an instance runs when nothing names its process type (instances from before issue 17 included). */
const WEB = "web";

/** One process type of a started app: `instances` of it should run `version`. */
export interface DesiredApp {
  guid: string;
  version: string;
  instances: number;
  /** the process type (absent: web) */
  process?: string;
}

export interface CrashInfo {
  count: number;
  nextRestartAt: number;
}

export type Action =
  | { type: "start"; app: string; process: string; index: number; version: string }
  | { type: "stop"; app: string; process: string; instance: string; index: number; reason: "extra" | "duplicate" | "old-version" | "not-desired" };

export interface DiffInput {
  desired: Iterable<DesiredApp>;
  /** live (STARTING/RUNNING, recently heard) instances per app, of every process type */
  actual: (app: string) => ActualInstance[];
  /** apps with live instances, to find those no longer desired */
  actualApps: Iterable<string>;
  /** pendingKey → when the pending start is given up on */
  pending: ReadonlyMap<string, number>;
  /** crashKey → crash bookkeeping */
  crashes: ReadonlyMap<string, CrashInfo>;
  now: number;
}

export const pendingKey = (app: string, index: number, version: string, process = WEB) => `${app}/${process}/${index}/${version}`;
export const crashKey = (app: string, index: number, process = WEB) => `${app}/${process}/${index}`;
export const processOf = (i: { process?: string }): string => i.process ?? WEB;

/**
 * Pending starts that are over: the instance has been heard from (in any state), or the wait ran
 * out. Without the first, a start that came up and then died (its host lost) stayed "pending" for
 * the whole window and its index was not restarted until it expired.
 */
export function settledPending(pending: ReadonlyMap<string, number>, actual: (app: string) => readonly ActualInstance[], now: number): string[] {
  const settled: string[] = [];
  for (const [key, until] of pending) {
    if (until <= now) {
      settled.push(key);
      continue;
    }
    const [app, process, index, version] = key.split("/") as [string, string, string, string];
    if (actual(app).some((i) => i.index === Number(index) && i.version === version && processOf(i) === process)) settled.push(key);
  }
  return settled;
}

/** Restarts immediately for the first 3 crashes, then after 30 s doubling up to 16 minutes. */
export function crashBackoffMs(crashCount: number): number {
  if (crashCount <= 3) return 0;
  return Math.min(30_000 * 2 ** (crashCount - 4), 16 * 60_000);
}

const rank = (i: ActualInstance) => (i.state === "RUNNING" ? 0 : 1);

export function diff(input: DiffInput): Action[] {
  const actions: Action[] = [];
  const desiredIds = new Set<string>();
  const byApp = new Map<string, ActualInstance[]>();
  const liveOf = (app: string, process: string) => {
    let all = byApp.get(app);
    if (!all) byApp.set(app, (all = input.actual(app)));
    return all.filter((i) => processOf(i) === process);
  };
  for (const d of input.desired) {
    const process = processOf(d);
    desiredIds.add(`${d.guid}/${process}`);
    const app = d.guid;
    const live = liveOf(app, process);
    const current = new Map<number, ActualInstance[]>();
    const old: ActualInstance[] = [];
    for (const i of live) {
      if (i.index >= d.instances) actions.push({ type: "stop", app, process, instance: i.instance, index: i.index, reason: "extra" });
      else if (i.version !== d.version) old.push(i);
      else {
        const at = current.get(i.index);
        if (at) at.push(i);
        else current.set(i.index, [i]);
      }
    }
    for (const [index, list] of current) {
      if (list.length < 2) continue;
      list.sort((a, b) => rank(a) - rank(b) || a.stateTimestamp - b.stateTimestamp || (a.instance < b.instance ? -1 : 1));
      for (const dup of list.slice(1)) actions.push({ type: "stop", app, process, instance: dup.instance, index, reason: "duplicate" });
    }
    // An old-version instance goes only once the new one at its index is RUNNING: no gap in service.
    for (const o of old) {
      if (current.get(o.index)?.some((i) => i.state === "RUNNING"))
        actions.push({ type: "stop", app, process, instance: o.instance, index: o.index, reason: "old-version" });
    }
    // Indices still served by an old version roll one at a time, each process type on its own: start
    // one new instance, wait for it to run (then the old one at its index is stopped above), then the next.
    const oldAt = new Set(old.map((o) => o.index));
    let inFlight = 0;
    for (const [index, list] of current) if (oldAt.has(index) && !list.some((i) => i.state === "RUNNING")) inFlight++;
    const isPending = (index: number) => (input.pending.get(pendingKey(app, index, d.version, process)) ?? 0) > input.now;
    for (const index of oldAt) if (!current.has(index) && isPending(index)) inFlight++;
    for (let index = 0; index < d.instances; index++) {
      if (current.has(index) || isPending(index)) continue;
      const crash = input.crashes.get(crashKey(app, index, process));
      if (crash && crash.nextRestartAt > input.now) continue;
      if (oldAt.has(index)) {
        if (inFlight > 0) continue;
        inFlight++;
      }
      actions.push({ type: "start", app, process, index, version: d.version });
    }
  }
  // instances of an app no longer started, or of a process type the app no longer has
  for (const app of input.actualApps) {
    for (const i of byApp.get(app) ?? input.actual(app)) {
      const process = processOf(i);
      if (!desiredIds.has(`${app}/${process}`)) actions.push({ type: "stop", app, process, instance: i.instance, index: i.index, reason: "not-desired" });
    }
  }
  return actions;
}
