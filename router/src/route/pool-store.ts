// Every route of the table (its pool of endpoints) as one row of typed-array columns, the row number
// being the id the matcher returns for the route. A pool with one endpoint (most of a big table) is
// held in the row itself; a pool with more keeps its endpoint rows and registration times in a small
// side entry. How a request picks an endpoint (sticky, round-robin, least-connection, skipping failed
// endpoints and those at their connection cap) is here, on rows, so it reads no per-route objects.

import type { LoadBalancingAlgorithm } from "../../../bus/index.ts";
import type { ByteArena } from "./byte-arena.ts";
import { sizeColumns } from "./columns.ts";
import type { Endpoint } from "./endpoint.ts";
import type { EndpointStore } from "./endpoint-store.ts";
import { KeyIndex } from "./key-index.ts";
import { RoutePool } from "./route-pool.ts";

const ROUND_ROBIN = 0;
const LEAST_CONNECTION = 1;
const NONE: readonly number[] = Object.freeze([]);
const COLUMNS = ["count", "row0", "seenAt0", "threshold0", "cursor", "algorithm", "keyOff", "live"] as const;

/** a pool of two or more endpoints: rows, and [registered at, threshold ms] per endpoint */
interface Members {
  rows: number[];
  seen: number[];
}

export interface PickOptions {
  now: number;
  /** `__VCAP_ID__` cookie value (an instance id) */
  stickyInstanceId?: string;
  /** endpoints already tried by this request */
  exclude?: readonly Endpoint[];
}

export class PoolStore {
  private capacity: number;
  /** endpoints in the pool */
  private count = new Int32Array(0);
  /** for a one-endpoint pool: its row, when it last (re-)registered this route, the threshold it gave */
  private row0 = new Int32Array(0);
  private seenAt0 = new Float64Array(0);
  private threshold0 = new Float64Array(0);
  private cursor = new Int32Array(0);
  private algorithm = new Uint8Array(0);
  private keyOff = new Int32Array(0);
  /** 1 while the id is a route of the table */
  private live = new Uint8Array(0);
  private readonly members = new Map<number, Members>();
  private readonly views: (RoutePool | undefined)[] = [];
  private readonly freeIds: number[] = [];
  private readonly index: KeyIndex;

  constructor(
    private readonly arena: ByteArena,
    readonly endpoints: EndpointStore,
    /** max requests in flight per endpoint; 0 = no cap */
    private readonly maxConnsPerEndpoint: number,
    /** rows to make room for up front (RegistryOptions.reserveRoutes) */
    reserve = 16,
  ) {
    this.capacity = Math.max(16, reserve);
    sizeColumns(this, COLUMNS, this.capacity);
    this.index = new KeyIndex(arena, (id) => this.keyOff[id]!, this.capacity);
  }

  get size(): number {
    return this.index.size;
  }

  /** one past the highest id ever given out: ids below it are in use or free */
  get idLimit(): number {
    return this.views.length;
  }

  /** The id of the route with this normalised key, or -1. */
  find(key: string): number {
    return this.index.find(key);
  }

  has(id: number): boolean {
    return this.live[id] === 1;
  }

  /** A new, empty route; its id is the one to give the matcher. */
  create(key: string): number {
    const keyOff = this.arena.store(key); // first: a key too long for the arena throws, changing nothing
    const id = this.freeIds.pop() ?? this.newId();
    this.count[id] = 0;
    this.cursor[id] = 0;
    this.algorithm[id] = ROUND_ROBIN;
    this.keyOff[id] = keyOff;
    this.index.insert(id);
    this.live[id] = 1;
    return id;
  }

  /** Takes the route out (its endpoints must be gone); a request still holding its view sees inTable false. */
  destroy(id: number): void {
    this.index.delete(id);
    this.arena.release(this.keyOff[id]!);
    this.members.delete(id);
    this.count[id] = 0;
    this.views[id] = undefined;
    this.live[id] = 0;
    this.freeIds.push(id);
  }

  view(id: number): RoutePool {
    return (this.views[id] ??= new RoutePool(this, id, this.keyOf(id)));
  }

  /** the view of a route, if it is still in the table */
  isCurrent(view: RoutePool): boolean {
    return this.views[view.id] === view;
  }

  keyOf(id: number): string {
    return this.arena.read(this.keyOff[id]!);
  }

  sizeOf(id: number): number {
    return this.count[id]!;
  }

  rowAt(id: number, i: number): number {
    return this.count[id] === 1 ? this.row0[id]! : this.members.get(id)!.rows[i]!;
  }

  /** The endpoint rows of a route (a copy). */
  rowsOf(id: number): number[] {
    const n = this.count[id]!;
    return n === 0 ? [] : n === 1 ? [this.row0[id]!] : this.members.get(id)!.rows.slice();
  }

  loadBalancingOf(id: number): LoadBalancingAlgorithm {
    return this.algorithm[id] === LEAST_CONNECTION ? "least-connection" : "round-robin";
  }

  setLoadBalancing(id: number, lb: LoadBalancingAlgorithm): void {
    this.algorithm[id] = lb === "least-connection" ? LEAST_CONNECTION : ROUND_ROBIN;
  }

  /** Adds the endpoint row or refreshes its registration time. Returns true if it was new to this route. */
  upsert(id: number, row: number, now: number, thresholdMs: number): boolean {
    const n = this.count[id]!;
    if (n === 0) {
      this.row0[id] = row;
      this.seenAt0[id] = now;
      this.threshold0[id] = thresholdMs;
      this.count[id] = 1;
      return true;
    }
    if (n === 1) {
      if (this.row0[id] === row) {
        this.seenAt0[id] = now;
        this.threshold0[id] = thresholdMs;
        return false;
      }
      this.members.set(id, { rows: [this.row0[id]!, row], seen: [this.seenAt0[id]!, this.threshold0[id]!, now, thresholdMs] });
      this.count[id] = 2;
      return true;
    }
    const m = this.members.get(id)!;
    const i = m.rows.indexOf(row);
    if (i >= 0) {
      m.seen[2 * i] = now;
      m.seen[2 * i + 1] = thresholdMs;
      return false;
    }
    m.rows.push(row);
    m.seen.push(now, thresholdMs);
    this.count[id] = n + 1;
    return true;
  }

  remove(id: number, row: number): boolean {
    const n = this.count[id]!;
    if (n === 0) return false;
    if (n === 1) {
      if (this.row0[id] !== row) return false;
      this.count[id] = 0;
      return true;
    }
    const m = this.members.get(id)!;
    const i = m.rows.indexOf(row);
    if (i < 0) return false;
    m.rows.splice(i, 1);
    m.seen.splice(2 * i, 2);
    if (n === 2) {
      this.row0[id] = m.rows[0]!;
      this.seenAt0[id] = m.seen[0]!;
      this.threshold0[id] = m.seen[1]!;
      this.members.delete(id);
    }
    this.count[id] = n - 1;
    if (this.cursor[id]! >= n - 1) this.cursor[id] = 0;
    return true;
  }

  /** Treats every registration of every route as heard now, keeping each one's threshold. */
  touchAll(now: number): void {
    this.seenAt0.fill(now);
    for (const m of this.members.values()) for (let i = 0; i < m.seen.length; i += 2) m.seen[i] = now;
  }

  /** Endpoint rows whose registration of this route is older than the threshold that registration gave. */
  staleRows(id: number, now: number): readonly number[] {
    const n = this.count[id]!;
    if (n === 0) return NONE;
    if (n === 1) return now - this.seenAt0[id]! > this.threshold0[id]! ? [this.row0[id]!] : NONE;
    let stale: number[] | undefined; // made only when something is stale: a pass visits every route
    const { rows, seen } = this.members.get(id)!;
    for (let i = 0; i < rows.length; i++) if (now - seen[2 * i]! > seen[2 * i + 1]!) (stale ??= []).push(rows[i]!);
    return stale ?? NONE;
  }

  /** The endpoint row for the next request on this route, or -1 if none can take it. */
  pick(id: number, opts: PickOptions): number {
    const n = this.count[id]!;
    if (n === 0) return -1;
    const { now, exclude } = opts;
    if (opts.stickyInstanceId) {
      for (let i = 0; i < n; i++) {
        const row = this.rowAt(id, i);
        if (this.endpoints.view(row).instanceId === opts.stickyInstanceId && this.usable(row, now, exclude, true)) return row;
      }
    }
    const leastConnection = this.algorithm[id] === LEAST_CONNECTION;
    const chosen = leastConnection ? this.leastConnection(id, n, now, exclude, true) : this.roundRobin(id, n, now, exclude, true);
    if (chosen >= 0) return chosen;
    // Every candidate is marked failed: try them anyway rather than fail the request outright.
    return leastConnection ? this.leastConnection(id, n, now, exclude, false) : this.roundRobin(id, n, now, exclude, false);
  }

  private usable(row: number, now: number, exclude: readonly Endpoint[] | undefined, skipFailed: boolean): boolean {
    if (skipFailed && this.endpoints.failedUntil[row]! > now) return false;
    if (this.maxConnsPerEndpoint > 0 && this.endpoints.inFlight[row]! >= this.maxConnsPerEndpoint) return false;
    if (exclude !== undefined) for (let i = 0; i < exclude.length; i++) if (exclude[i]!.id === row) return false;
    return true;
  }

  private roundRobin(id: number, n: number, now: number, exclude: readonly Endpoint[] | undefined, skipFailed: boolean): number {
    if (n === 1) return this.usable(this.row0[id]!, now, exclude, skipFailed) ? this.row0[id]! : -1;
    const rows = this.members.get(id)!.rows;
    const start = this.cursor[id]!;
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      if (this.usable(rows[i]!, now, exclude, skipFailed)) {
        this.cursor[id] = (i + 1) % n;
        return rows[i]!;
      }
    }
    return -1;
  }

  private leastConnection(id: number, n: number, now: number, exclude: readonly Endpoint[] | undefined, skipFailed: boolean): number {
    if (n === 1) return this.usable(this.row0[id]!, now, exclude, skipFailed) ? this.row0[id]! : -1;
    const rows = this.members.get(id)!.rows;
    const inFlight = this.endpoints.inFlight;
    const start = this.cursor[id]!;
    let best = -1;
    let bestIndex = 0;
    // Start at the round-robin cursor so ties spread instead of always landing on the first endpoint.
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      const row = rows[i]!;
      if (!this.usable(row, now, exclude, skipFailed)) continue;
      if (best < 0 || inFlight[row]! < inFlight[best]!) {
        best = row;
        bestIndex = i;
      }
    }
    if (best >= 0) this.cursor[id] = (bestIndex + 1) % n;
    return best;
  }

  private newId(): number {
    const id = this.views.length;
    if (id === this.capacity) {
      this.capacity *= 2;
      sizeColumns(this, COLUMNS, this.capacity);
    }
    this.views.push(undefined);
    return id;
  }
}
