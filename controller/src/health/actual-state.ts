// What is really running, as heartbeats and exits tell it: one entry per instance id.
// An instance unheard for 30 s is missing. Pure bookkeeping: no bus, no clock of its own.

import type { DeaHeartbeat, DropletExited, InstanceState } from "../../../bus/index.ts";

export const MISSING_AFTER_MS = 30_000;

export interface ActualInstance {
  app: string;
  version: string;
  instance: string;
  index: number;
  state: InstanceState;
  stateTimestamp: number;
  dea: string;
  lastSeen: number;
  /** our clock when we first saw it RUNNING (agents' timestamps are not compared with ours) */
  runningSince?: number;
  /** its process type (absent: web) */
  process?: string;
}

export class ActualState {
  private readonly byInstance = new Map<string, ActualInstance>();
  private readonly byApp = new Map<string, Map<string, ActualInstance>>();

  constructor(private readonly missingAfterMs = MISSING_AFTER_MS) {}

  heartbeat(hb: DeaHeartbeat, now: number): void {
    for (const d of hb.droplets) {
      this.put({ app: d.droplet, version: d.version, instance: d.instance, index: d.index, state: d.state, stateTimestamp: d.state_timestamp, dea: hb.dea, lastSeen: now, ...(d.process_type && d.process_type !== "web" ? { process: d.process_type } : {}) });
    }
  }

  /** A started instance reported by the launcher before its first heartbeat. */
  put(i: ActualInstance): void {
    const prev = this.byInstance.get(i.instance);
    if (i.state === "RUNNING") i.runningSince = prev?.state === "RUNNING" ? (prev.runningSince ?? i.lastSeen) : i.lastSeen;
    this.byInstance.set(i.instance, i);
    let m = this.byApp.get(i.app);
    if (!m) this.byApp.set(i.app, (m = new Map()));
    m.set(i.instance, i);
  }

  exited(e: DropletExited): void {
    this.remove(e.instance);
  }

  remove(instance: string): void {
    const i = this.byInstance.get(instance);
    if (!i) return;
    this.byInstance.delete(instance);
    const m = this.byApp.get(i.app);
    m?.delete(instance);
    if (m && m.size === 0) this.byApp.delete(i.app);
  }

  /** Every agent that shut down takes its instances with it. */
  removeAgent(dea: string): void {
    for (const i of [...this.byInstance.values()]) if (i.dea === dea) this.remove(i.instance);
  }

  /** Instances heard within the window that are not stopped or crashed; forgets the missing ones. */
  liveOf(app: string, now: number): ActualInstance[] {
    const m = this.byApp.get(app);
    if (!m) return [];
    const out: ActualInstance[] = [];
    for (const i of m.values()) {
      if (now - i.lastSeen > this.missingAfterMs) {
        this.remove(i.instance);
        continue;
      }
      if (i.state === "STARTING" || i.state === "RUNNING") out.push(i);
    }
    return out;
  }

  apps(): string[] {
    return [...this.byApp.keys()];
  }

  all(): ActualInstance[] {
    return [...this.byInstance.values()];
  }

  size(): number {
    return this.byInstance.size;
  }
}
