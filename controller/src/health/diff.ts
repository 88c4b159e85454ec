// The health manager's decision: a pure diff of desired and actual state into start and stop
// actions. No bus, no database, no clock: everything arrives as arguments, so it is tested directly.

import type { ActualInstance } from "./actual-state.ts";

export interface DesiredApp {
  guid: string;
  version: string;
  instances: number;
}

export interface CrashInfo {
  count: number;
  nextRestartAt: number;
}

export type Action =
  | { type: "start"; app: string; index: number; version: string }
  | { type: "stop"; app: string; instance: string; index: number; reason: "extra" | "duplicate" | "old-version" | "not-desired" };

export interface DiffInput {
  desired: Iterable<DesiredApp>;
  /** live (STARTING/RUNNING, recently heard) instances per app */
  actual: (app: string) => ActualInstance[];
  /** apps with live instances, to find those no longer desired */
  actualApps: Iterable<string>;
  /** `${app}/${index}/${version}` → when the pending start is given up on */
  pending: ReadonlyMap<string, number>;
  /** `${app}/${index}` → crash bookkeeping */
  crashes: ReadonlyMap<string, CrashInfo>;
  now: number;
}

export const pendingKey = (app: string, index: number, version: string) => `${app}/${index}/${version}`;
export const crashKey = (app: string, index: number) => `${app}/${index}`;

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
    const a = key.indexOf("/");
    const b = key.indexOf("/", a + 1);
    const app = key.slice(0, a);
    const index = Number(key.slice(a + 1, b));
    const version = key.slice(b + 1);
    if (actual(app).some((i) => i.index === index && i.version === version)) settled.push(key);
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
  for (const d of input.desired) {
    desiredIds.add(d.guid);
    const live = input.actual(d.guid);
    const current = new Map<number, ActualInstance[]>();
    const old: ActualInstance[] = [];
    for (const i of live) {
      if (i.index >= d.instances) actions.push({ type: "stop", app: d.guid, instance: i.instance, index: i.index, reason: "extra" });
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
      for (const dup of list.slice(1)) actions.push({ type: "stop", app: d.guid, instance: dup.instance, index, reason: "duplicate" });
    }
    // An old-version instance goes only once the new one at its index is RUNNING: no gap in service.
    for (const o of old) {
      if (current.get(o.index)?.some((i) => i.state === "RUNNING"))
        actions.push({ type: "stop", app: d.guid, instance: o.instance, index: o.index, reason: "old-version" });
    }
    // Indices still served by an old version roll one at a time: start one new instance, wait for
    // it to run (then the old one at its index is stopped above), then the next.
    const oldAt = new Set(old.map((o) => o.index));
    let inFlight = 0;
    for (const [index, list] of current) if (oldAt.has(index) && !list.some((i) => i.state === "RUNNING")) inFlight++;
    const isPending = (index: number) => (input.pending.get(pendingKey(d.guid, index, d.version)) ?? 0) > input.now;
    for (const index of oldAt) if (!current.has(index) && isPending(index)) inFlight++;
    for (let index = 0; index < d.instances; index++) {
      if (current.has(index) || isPending(index)) continue;
      const crash = input.crashes.get(crashKey(d.guid, index));
      if (crash && crash.nextRestartAt > input.now) continue;
      if (oldAt.has(index)) {
        if (inFlight > 0) continue;
        inFlight++;
      }
      actions.push({ type: "start", app: d.guid, index, version: d.version });
    }
  }
  for (const app of input.actualApps) {
    if (desiredIds.has(app)) continue;
    for (const i of input.actual(app)) actions.push({ type: "stop", app, instance: i.instance, index: i.index, reason: "not-desired" });
  }
  return actions;
}
