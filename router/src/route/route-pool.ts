// The endpoints behind one route and how a request picks one: round-robin (default) or
// least-connection, skipping endpoints that failed in the last 30 s and those at their connection
// cap, honouring a sticky `__VCAP_ID__` when that instance is still here.

import type { LoadBalancingAlgorithm } from "../../../bus/index.ts";
import type { Endpoint } from "./endpoint.ts";

export const FAILED_ENDPOINT_SKIP_MS = 30_000;
const NONE: readonly Endpoint[] = Object.freeze([]);

export interface PickOptions {
  now: number;
  /** `__VCAP_ID__` cookie value (an instance id) */
  stickyInstanceId?: string;
  /** endpoints already tried by this request */
  exclude?: readonly Endpoint[];
}

export class RoutePool {
  /** replaced, not grown, on the first insert: an empty array's first push reserves 17 slots */
  endpoints: Endpoint[] = [];
  /**
   * Per endpoint, at the same index: when it last (re-)registered this route and the stale threshold
   * it gave then, as two numbers [at, thresholdMs] per endpoint. Parallel numbers rather than a Map of
   * objects: a million routes are a million pools, and each Map costs hundreds of bytes of heap and
   * objects for the collector to mark. Pools are small, so the linear search is cheap.
   */
  private seen: number[] = [];
  private next = 0;
  loadBalancing: LoadBalancingAlgorithm = "round-robin";
  /** false once the registry dropped this route: a request still in flight on it must not bring its
   * per-route metrics back */
  inTable = true;

  constructor(
    /** the normalised route key, e.g. `app.example.com/api` */
    readonly key: string,
    /** the id the matcher returns for this route */
    readonly id: number,
    /** max requests in flight per endpoint; 0 = no cap */
    readonly maxConnsPerEndpoint = 0,
  ) {}

  get size(): number {
    return this.endpoints.length;
  }

  /** Adds the endpoint or refreshes its registration time. Returns true if it was new to this pool. */
  upsert(endpoint: Endpoint, now: number, thresholdMs = endpoint.staleThresholdMs): boolean {
    const i = this.endpoints.indexOf(endpoint);
    if (i >= 0) {
      this.seen[2 * i] = now;
      this.seen[2 * i + 1] = thresholdMs;
      return false;
    }
    if (this.endpoints.length === 0) {
      this.endpoints = [endpoint];
      this.seen = [now, thresholdMs];
    } else {
      this.endpoints.push(endpoint);
      this.seen.push(now, thresholdMs);
    }
    return true;
  }

  /** Treats every endpoint as heard now, keeping each one's threshold. */
  touchAll(now: number): void {
    for (let i = 0; i < this.seen.length; i += 2) this.seen[i] = now;
  }

  remove(endpoint: Endpoint): boolean {
    const i = this.endpoints.indexOf(endpoint);
    if (i < 0) return false;
    this.endpoints.splice(i, 1);
    this.seen.splice(2 * i, 2);
    if (this.next >= this.endpoints.length) this.next = 0;
    return true;
  }

  has(endpoint: Endpoint): boolean {
    return this.endpoints.includes(endpoint);
  }

  /** Endpoints whose registration of this route is older than the threshold that registration gave. */
  staleEndpoints(now: number): readonly Endpoint[] {
    let stale: Endpoint[] | undefined; // made only when something is stale: a pass visits every pool
    const { endpoints, seen } = this;
    for (let i = 0; i < endpoints.length; i++) if (now - seen[2 * i]! > seen[2 * i + 1]!) (stale ??= []).push(endpoints[i]!);
    return stale ?? NONE;
  }

  /** The endpoint for the next request, or undefined if none can take it. */
  pick(opts: PickOptions): Endpoint | undefined {
    const list = this.endpoints;
    const n = list.length;
    if (n === 0) return undefined;
    const { now, exclude } = opts;
    if (opts.stickyInstanceId) {
      for (const e of list)
        if (e.instanceId === opts.stickyInstanceId && this.usable(e, now, exclude, true)) return e;
    }
    const chosen = this.loadBalancing === "least-connection" ? this.leastConnection(now, exclude, true) : this.roundRobin(now, exclude, true);
    if (chosen) return chosen;
    // Every candidate is marked failed: try them anyway rather than fail the request outright.
    return this.loadBalancing === "least-connection" ? this.leastConnection(now, exclude, false) : this.roundRobin(now, exclude, false);
  }

  markFailed(endpoint: Endpoint, now: number): void {
    endpoint.failedUntil = now + FAILED_ENDPOINT_SKIP_MS;
  }

  private usable(e: Endpoint, now: number, exclude: readonly Endpoint[] | undefined, skipFailed: boolean): boolean {
    if (skipFailed && e.failedUntil > now) return false;
    if (this.maxConnsPerEndpoint > 0 && e.inFlight >= this.maxConnsPerEndpoint) return false;
    return exclude === undefined || !exclude.includes(e);
  }

  private roundRobin(now: number, exclude: readonly Endpoint[] | undefined, skipFailed: boolean): Endpoint | undefined {
    const list = this.endpoints;
    const n = list.length;
    for (let k = 0; k < n; k++) {
      const i = (this.next + k) % n;
      const e = list[i]!;
      if (this.usable(e, now, exclude, skipFailed)) {
        this.next = (i + 1) % n;
        return e;
      }
    }
    return undefined;
  }

  private leastConnection(now: number, exclude: readonly Endpoint[] | undefined, skipFailed: boolean): Endpoint | undefined {
    const list = this.endpoints;
    const n = list.length;
    let best: Endpoint | undefined;
    let bestIndex = 0;
    // Start at the round-robin cursor so ties spread instead of always landing on the first endpoint.
    for (let k = 0; k < n; k++) {
      const i = (this.next + k) % n;
      const e = list[i]!;
      if (!this.usable(e, now, exclude, skipFailed)) continue;
      if (best === undefined || e.inFlight < best.inFlight) {
        best = e;
        bestIndex = i;
      }
    }
    if (best) this.next = (bestIndex + 1) % n;
    return best;
  }
}
