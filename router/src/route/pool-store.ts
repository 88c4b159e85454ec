// Every route of the table (its pool of endpoints) as one row of typed-array columns, the row number
// being the id the matcher returns for the route. A pool with one endpoint (most of a big table) is
// held in the row itself; a pool with more keeps its endpoint rows as a list in the arena (what
// readers pick from) and their registration times in a small side entry (the writer's alone). The
// writer (the thread that applies route changes) owns this store; the columns the proxy reads are
// shared with the worker threads (PoolColumns), which pick endpoints from them (RouteTableReader).

import type { LoadBalancingAlgorithm } from "../../../bus/index.ts";
import type { ByteArena } from "./byte-arena.ts";
import { sharedColumn, sizeColumns } from "./columns.ts";
import type { EndpointStore } from "./endpoint-store.ts";
import { KeyIndex } from "./key-index.ts";

export const ROUND_ROBIN = 0;
export const LEAST_CONNECTION = 1;
const NONE: readonly number[] = Object.freeze([]);
const COLUMNS = ["count", "row0", "algorithm", "keyOff", "live", "gen", "membersOff", "seenAt0", "threshold0"] as const;

/** The columns readers use, on growable SharedArrayBuffers (they follow the store's growth). */
export interface PoolColumns {
  /** endpoints in the pool */
  count: Int32Array;
  /** a one-endpoint pool's endpoint row */
  row0: Int32Array;
  /** a pool of two or more: the arena offset of its endpoint rows (ByteArena.storeInts) */
  membersOff: Int32Array;
  algorithm: Uint8Array;
  keyOff: Int32Array;
  /** 1 while the id is a route of the table */
  live: Uint8Array;
  /** bumped when the id leaves the table: a view made for an earlier route of the id no longer matches */
  gen: Int32Array;
}

/** a pool of two or more endpoints: rows, and [registered at, threshold ms] per endpoint */
interface Members {
  rows: number[];
  seen: number[];
}

export class PoolStore {
  private capacity: number;
  count = sharedColumn(Int32Array);
  row0 = sharedColumn(Int32Array);
  membersOff = sharedColumn(Int32Array);
  algorithm = sharedColumn(Uint8Array);
  keyOff = sharedColumn(Int32Array);
  live = sharedColumn(Uint8Array);
  gen = sharedColumn(Int32Array);
  /** for a one-endpoint pool: when it last (re-)registered this route, the threshold it gave (the writer's alone) */
  private seenAt0 = new Float64Array(0);
  private threshold0 = new Float64Array(0);
  private readonly members = new Map<number, Members>();
  private ids = 0;
  private readonly freeIds: number[] = [];
  private readonly index: KeyIndex;

  constructor(
    private readonly arena: ByteArena,
    readonly endpoints: EndpointStore,
    /** rows to make room for up front (RegistryOptions.reserveRoutes) */
    reserve = 16,
    /** told after the columns grew (the registry bumps TableControl.layout, so readers refresh their views) */
    private readonly onGrow: () => void = () => {},
  ) {
    this.capacity = Math.max(16, reserve);
    sizeColumns(this, COLUMNS, this.capacity);
    this.index = new KeyIndex(arena, (id) => this.keyOff[id]!, this.capacity);
  }

  /** the columns to hand the workers */
  get columns(): PoolColumns {
    const { count, row0, membersOff, algorithm, keyOff, live, gen } = this;
    return { count, row0, membersOff, algorithm, keyOff, live, gen };
  }

  get size(): number {
    return this.index.size;
  }

  /** one past the highest id ever given out: ids below it are in use or free */
  get idLimit(): number {
    return this.ids;
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
    this.algorithm[id] = ROUND_ROBIN;
    this.keyOff[id] = keyOff;
    this.index.insert(id);
    this.live[id] = 1;
    return id;
  }

  /** Takes the route out (its endpoints must be gone); views of it no longer match the id. */
  destroy(id: number): void {
    this.index.delete(id);
    this.arena.release(this.keyOff[id]!);
    this.dropMembers(id);
    this.count[id] = 0;
    this.live[id] = 0;
    this.gen[id] = (this.gen[id]! + 1) | 0;
    this.freeIds.push(id);
  }

  keyOf(id: number): string {
    return this.arena.read(this.keyOff[id]!);
  }

  sizeOf(id: number): number {
    return this.count[id]!;
  }

  /** The endpoint rows of a route (a copy). */
  rowsOf(id: number): number[] {
    const n = this.count[id]!;
    return n === 0 ? [] : n === 1 ? [this.row0[id]!] : this.members.get(id)!.rows.slice();
  }

  loadBalancingOf(id: number): LoadBalancingAlgorithm {
    return this.algorithm[id] === LEAST_CONNECTION ? "least-connection" : "round-robin";
  }

  /** Whether setLoadBalancing would change the route (readers would see it). */
  loadBalancingDiffers(id: number, lb: LoadBalancingAlgorithm): boolean {
    return this.algorithm[id] !== (lb === "least-connection" ? LEAST_CONNECTION : ROUND_ROBIN);
  }

  setLoadBalancing(id: number, lb: LoadBalancingAlgorithm): void {
    this.algorithm[id] = lb === "least-connection" ? LEAST_CONNECTION : ROUND_ROBIN;
  }

  /** Whether the endpoint row serves this route. */
  holds(id: number, row: number): boolean {
    const n = this.count[id]!;
    return n === 1 ? this.row0[id] === row : n > 1 && this.members.get(id)!.rows.includes(row);
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
      const m = { rows: [this.row0[id]!, row], seen: [this.seenAt0[id]!, this.threshold0[id]!, now, thresholdMs] };
      this.members.set(id, m);
      this.publish(id, m.rows);
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
    this.publish(id, m.rows);
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
      this.dropMembers(id);
      this.count[id] = 1;
    } else this.publish(id, m.rows);
    return true;
  }

  /** Writes a pool's endpoint rows where readers find them: a new list, then the count (both inside the change). */
  private publish(id: number, rows: readonly number[]): void {
    const old = this.count[id]! > 1 ? this.membersOff[id]! : -1;
    this.membersOff[id] = this.arena.storeInts(rows);
    this.count[id] = rows.length;
    if (old >= 0) this.arena.release(old);
  }

  private dropMembers(id: number): void {
    if (!this.members.delete(id)) return;
    this.arena.release(this.membersOff[id]!);
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

  private newId(): number {
    const id = this.ids++;
    if (id === this.capacity) {
      this.capacity *= 2;
      sizeColumns(this, COLUMNS, this.capacity);
      this.onGrow();
    }
    return id;
  }
}
