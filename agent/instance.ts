// One app instance as the agent sees it: the start order, its state machine and what is known about
// its process. Pure: no NATS, no file system; the runner drives it and the beacons read it.

import type { DeaStart, DropletFilter, ExitReason, InstanceState } from "../bus/index.ts";

/** The transitions Cloud Foundry's DEA allows: STARTING → RUNNING → STOPPING → STOPPED, or CRASHED. */
const NEXT: Record<InstanceState, readonly InstanceState[]> = {
  STARTING: ["RUNNING", "STOPPING", "CRASHED"],
  RUNNING: ["STOPPING", "CRASHED"],
  STOPPING: ["STOPPED", "CRASHED"],
  STOPPED: [],
  CRASHED: [],
};

export class InvalidTransitionError extends Error {
  override name = "InvalidTransitionError";
  constructor(readonly from: InstanceState, readonly to: InstanceState) {
    super(`instance cannot go from ${from} to ${to}`);
  }
}

export interface InstanceExit {
  reason: ExitReason;
  exitStatus: number;
  description: string;
  timestamp: number;
}

export class Instance {
  state: InstanceState = "STARTING";
  /** seconds since the epoch, as Cloud Foundry sends it */
  stateTimestamp: number;
  port = 0;
  pid = 0;
  startedAt = 0;
  exit?: InstanceExit;
  /** latest resource figures, filled by the sampler */
  usage = { cpu: 0, mem: 0, disk: 0 };
  /** the routes currently registered for this instance (the start order's uris, updated by dea.update) */
  uris: string[];

  constructor(
    readonly id: string,
    readonly start: DeaStart,
    now = Date.now(),
  ) {
    this.stateTimestamp = now / 1000;
    this.uris = [...start.uris];
  }

  get appId(): string {
    return this.start.droplet;
  }

  get index(): number {
    return this.start.index;
  }

  get version(): string {
    return this.start.version;
  }

  /** Its process type (the start order's, else web: the one that gets the app's routes). */
  get processType(): string {
    return this.start.process_type ?? "web";
  }

  /** True while the instance holds resources on this agent. */
  get alive(): boolean {
    return this.state === "STARTING" || this.state === "RUNNING" || this.state === "STOPPING";
  }

  canMoveTo(to: InstanceState): boolean {
    return NEXT[this.state].includes(to);
  }

  /** Moves to `to`, or throws InvalidTransitionError. Returns the instance for chaining. */
  moveTo(to: InstanceState, now = Date.now()): this {
    if (!this.canMoveTo(to)) throw new InvalidTransitionError(this.state, to);
    this.state = to;
    this.stateTimestamp = now / 1000;
    return this;
  }
}

/** dea.stop / dea.find.droplet selection, as the DEA applied it: every given field must match. */
export function matchesFilter(instance: Instance, filter: DropletFilter): boolean {
  if (instance.appId !== filter.droplet) return false;
  if (filter.version !== undefined && filter.version !== "" && instance.version !== filter.version) return false;
  if (filter.instances && filter.instances.length > 0 && !filter.instances.includes(instance.id)) return false;
  if (filter.indices && filter.indices.length > 0 && !filter.indices.includes(instance.index)) return false;
  if (filter.states && filter.states.length > 0 && !filter.states.includes(instance.state)) return false;
  return true;
}
