// A thread's read side of the shared route table: finds a request's route (the matcher, then the
// route's row) and picks its endpoint (sticky, round-robin or least-connection, skipping failed
// endpoints and those at their connection cap), reading only the shared columns and the arena, each
// read bracketed by the table's seqlock, so a worker never sees half a change and never takes a
// lock. Views (RoutePool, Endpoint) are made for the rows a thread uses and kept in small caches
// of this thread's own; a view whose row's generation moved on is no longer current.

import { ArenaView } from "./byte-arena.ts";
import { wholeView } from "./columns.ts";
import { Endpoint, type EndpointDetails, type EndpointRow } from "./endpoint.ts";
import { parseDetails, type EndpointColumns } from "./endpoint-store.ts";
import { LEAST_CONNECTION, ROUND_ROBIN, type PoolColumns } from "./pool-store.ts";
import { RoutePool, type PickOptions } from "./route-pool.ts";
import { TableControl, TableSeqlock } from "./table-seqlock.ts";
import type { LoadBalancingAlgorithm } from "../../../bus/index.ts";

/** Everything a worker needs to read the table: SharedArrayBuffer views and numbers (postMessage-able). */
export interface RouteTableShare {
  control: Int32Array;
  arena: Uint8Array;
  pools: PoolColumns;
  endpoints: EndpointColumns;
  /** max requests in flight per endpoint over every worker, 0 = no cap */
  maxConnsPerEndpoint: number;
}

/** What answers "which route id serves this request": the writer's matcher, or a worker's reader of it. */
export interface RouteLookup {
  lookup(host: string, path: string): number;
}

/** views kept per kind and thread, by id: a direct-mapped cache (a miss just makes a view again) */
const CACHE_BITS = 16;
const CACHE_MASK = (1 << CACHE_BITS) - 1;

export class RouteTableReader {
  readonly lock: TableSeqlock;
  private readonly control: Int32Array;
  private readonly arena: ArenaView;
  /** this thread's views of the shared columns, made again when the table's layout moved on */
  private pools: PoolColumns;
  private endpoints: EndpointColumns;
  private layout = -1;
  /** what this thread's Endpoint views read and write (updated in place when the views are made again) */
  private readonly row: { failedUntil: Float64Array; inFlight: Int32Array; gen: Int32Array };
  private readonly slotIndex: number;
  private readonly cap: number;
  private readonly poolViews: (RoutePool | undefined)[] = new Array<RoutePool | undefined>(1 << CACHE_BITS).fill(undefined);
  private readonly endpointViews: (Endpoint | undefined)[] = new Array<Endpoint | undefined>(1 << CACHE_BITS).fill(undefined);
  /** views made or refreshed during the current read, kept only if the read turns out consistent */
  private readonly fresh: Endpoint[] = [];
  private readonly refreshes: { view: Endpoint; details: EndpointDetails; detailsGen: number }[] = [];
  /** the round-robin cursor the current pick moves its route's view to */
  private nextCursor = -1;
  /** reads that met a change and were made again */
  retries = 0;

  constructor(
    share: RouteTableShare,
    private readonly matcher: RouteLookup,
    /** this thread's in-flight column (EndpointColumns.inFlight) */
    readonly slot: number,
    lock?: TableSeqlock,
  ) {
    this.lock = lock ?? new TableSeqlock(share.control);
    this.control = share.control;
    this.arena = new ArenaView(share.arena);
    this.pools = share.pools;
    this.endpoints = share.endpoints;
    const inFlight = share.endpoints.inFlight[slot];
    if (inFlight === undefined) throw new RangeError(`no in-flight column for worker slot ${slot}`);
    this.slotIndex = slot;
    this.row = { failedUntil: share.endpoints.failedUntil, inFlight, gen: share.endpoints.gen };
    this.cap = share.maxConnsPerEndpoint;
    this.refresh();
  }

  /** The start of a read: the counter (TableSeqlock.readBegin), with views as long as the table now is. */
  private begin(): number {
    const seq = this.lock.readBegin();
    if (this.control[TableControl.layout] !== this.layout) this.refresh();
    return seq;
  }

  /** Makes every view again over the whole of its (grown) buffer. */
  private refresh(): void {
    this.layout = this.control[TableControl.layout]!;
    const p = this.pools;
    this.pools = { count: wholeView(p.count), row0: wholeView(p.row0), membersOff: wholeView(p.membersOff), algorithm: wholeView(p.algorithm), keyOff: wholeView(p.keyOff), live: wholeView(p.live), gen: wholeView(p.gen) };
    const e = this.endpoints;
    this.endpoints = {
      port: wholeView(e.port),
      failedUntil: wholeView(e.failedUntil),
      keyOff: wholeView(e.keyOff),
      detailsOff: wholeView(e.detailsOff),
      gen: wholeView(e.gen),
      detailsGen: wholeView(e.detailsGen),
      inFlight: e.inFlight.map(wholeView),
    };
    this.row.failedUntil = this.endpoints.failedUntil;
    this.row.inFlight = this.endpoints.inFlight[this.slotIndex]!;
    this.row.gen = this.endpoints.gen;
    this.arena.refresh();
  }

  /** The route serving a request, or undefined (unknown route). */
  lookup(host: string, path: string): RoutePool | undefined {
    return this.view(-1, host, path);
  }

  /** The route with this id, if it is in the table. */
  lookupId(id: number): RoutePool | undefined {
    return this.view(id, "", "");
  }

  /** The view of route `known`, or (-1) of the route the matcher finds for host and path. */
  private view(known: number, host: string, path: string): RoutePool | undefined {
    for (;;) {
      const seq = this.begin();
      const { live, gen, keyOff } = this.pools;
      const id = known >= 0 ? known : this.matcher.lookup(host, path);
      let view: RoutePool | undefined;
      let made = false;
      if (id >= 0 && live[id] === 1) {
        const g = gen[id]!;
        view = this.poolViews[id & CACHE_MASK];
        if (view === undefined || view.id !== id || view.gen !== g) {
          view = new RoutePool(this, id, g, this.readString(keyOff[id]!));
          made = true;
        }
      }
      if (this.lock.readValid(seq)) {
        if (made) this.poolViews[id & CACHE_MASK] = view;
        return view;
      }
      this.retries++;
    }
  }

  isCurrent(pool: RoutePool): boolean {
    return this.pools.gen[pool.id] === pool.gen && this.pools.live[pool.id] === 1;
  }

  sizeOf(pool: RoutePool): number {
    for (;;) {
      const seq = this.begin();
      const n = this.isCurrent(pool) ? this.pools.count[pool.id]! : 0;
      if (this.lock.readValid(seq)) return n;
      this.retries++;
    }
  }

  loadBalancingOf(pool: RoutePool): LoadBalancingAlgorithm {
    return this.pools.algorithm[pool.id] === LEAST_CONNECTION ? "least-connection" : "round-robin";
  }

  /** (tests) what a registration's options.loadbalancing does, from the reading side */
  setLoadBalancing(pool: RoutePool, lb: LoadBalancingAlgorithm): void {
    if (this.isCurrent(pool)) this.pools.algorithm[pool.id] = lb === "least-connection" ? LEAST_CONNECTION : ROUND_ROBIN;
  }

  /** The route's endpoints (views), in pool order. */
  endpointsOf(pool: RoutePool): Endpoint[] {
    for (;;) {
      const seq = this.begin();
      this.clearViews();
      const out: Endpoint[] = [];
      try {
        const n = this.isCurrent(pool) ? this.pools.count[pool.id]! : 0;
        for (let i = 0; i < n; i++) out.push(this.endpointAt(this.rowAt(pool.id, n, i)));
      } catch (err) {
        if (this.lock.readValid(seq)) throw err;
      }
      if (this.lock.readValid(seq)) {
        this.commitViews();
        return out;
      }
      this.retries++;
    }
  }

  /** The endpoint for the next request on this route, or undefined if none can take it. */
  pick(pool: RoutePool, opts: PickOptions): Endpoint | undefined {
    for (;;) {
      const seq = this.begin();
      this.clearViews();
      this.nextCursor = -1;
      let view: Endpoint | undefined;
      try {
        const row = this.isCurrent(pool) ? this.pickRow(pool, opts) : -1;
        view = row >= 0 ? this.endpointAt(row) : undefined;
      } catch (err) {
        if (this.lock.readValid(seq)) throw err;
      }
      if (this.lock.readValid(seq)) {
        this.commitViews();
        if (this.nextCursor >= 0) pool.cursor = this.nextCursor;
        return view;
      }
      this.retries++;
    }
  }

  /** Requests in flight to the endpoint row over every worker thread. */
  inFlightOf(row: number): number {
    const columns = this.endpoints.inFlight;
    let n = 0;
    for (let i = 0; i < columns.length; i++) n += columns[i]![row]!;
    return n;
  }

  /** Whether the endpoint row still holds the endpoint of generation `gen`. */
  endpointCurrent(row: number, gen: number): boolean {
    return this.endpoints.gen[row] === gen;
  }

  /** This thread's view of the endpoint row, if it made one and the row still holds that endpoint. */
  cachedEndpoint(row: number): Endpoint | undefined {
    const view = this.endpointViews[row & CACHE_MASK];
    return view !== undefined && view.id === row && view.gen === this.endpoints.gen[row] ? view : undefined;
  }

  // ------------------------------------------------------------------ inside a read

  private rowAt(id: number, n: number, i: number): number {
    return n === 1 ? this.pools.row0[id]! : this.arena.intAt(this.pools.membersOff[id]!, i);
  }

  private pickRow(pool: RoutePool, opts: PickOptions): number {
    const id = pool.id;
    const n = this.pools.count[id]!;
    if (n === 0) return -1;
    const { now, exclude } = opts;
    if (opts.stickyInstanceId) {
      for (let i = 0; i < n; i++) {
        const row = this.rowAt(id, n, i);
        if (this.endpointAt(row).instanceId === opts.stickyInstanceId && this.usable(row, now, exclude, true)) return row;
      }
    }
    const leastConnection = this.pools.algorithm[id] === LEAST_CONNECTION;
    const chosen = leastConnection ? this.leastConnection(pool, n, now, exclude, true) : this.roundRobin(pool, n, now, exclude, true);
    if (chosen >= 0) return chosen;
    // Every candidate is marked failed: try them anyway rather than fail the request outright.
    return leastConnection ? this.leastConnection(pool, n, now, exclude, false) : this.roundRobin(pool, n, now, exclude, false);
  }

  private usable(row: number, now: number, exclude: readonly Endpoint[] | undefined, skipFailed: boolean): boolean {
    if (skipFailed && this.endpoints.failedUntil[row]! > now) return false;
    // Each worker adds its count: two workers admitting at once can pass the cap by workers - 1.
    if (this.cap > 0 && this.inFlightOf(row) >= this.cap) return false;
    if (exclude !== undefined) for (let i = 0; i < exclude.length; i++) if (exclude[i]!.id === row && exclude[i]!.gen === this.endpoints.gen[row]) return false;
    return true;
  }

  private roundRobin(pool: RoutePool, n: number, now: number, exclude: readonly Endpoint[] | undefined, skipFailed: boolean): number {
    const id = pool.id;
    if (n === 1) {
      const row = this.pools.row0[id]!;
      return this.usable(row, now, exclude, skipFailed) ? row : -1;
    }
    const start = pool.cursor % n;
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      const row = this.rowAt(id, n, i);
      if (this.usable(row, now, exclude, skipFailed)) {
        this.nextCursor = (i + 1) % n;
        return row;
      }
    }
    return -1;
  }

  private leastConnection(pool: RoutePool, n: number, now: number, exclude: readonly Endpoint[] | undefined, skipFailed: boolean): number {
    const id = pool.id;
    if (n === 1) {
      const row = this.pools.row0[id]!;
      return this.usable(row, now, exclude, skipFailed) ? row : -1;
    }
    const start = pool.cursor % n;
    let best = -1;
    let bestLoad = 0;
    let bestIndex = 0;
    // Start at the round-robin cursor so ties spread instead of always landing on the first endpoint.
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      const row = this.rowAt(id, n, i);
      if (!this.usable(row, now, exclude, skipFailed)) continue;
      const load = this.inFlightOf(row);
      if (best < 0 || load < bestLoad) {
        best = row;
        bestLoad = load;
        bestIndex = i;
      }
    }
    if (best >= 0) this.nextCursor = (bestIndex + 1) % n;
    return best;
  }

  /** This thread's view of an endpoint row: cached, or made now (cached if the read holds). */
  private endpointAt(row: number): Endpoint {
    const cols = this.endpoints;
    const g = cols.gen[row]!;
    const cached = this.endpointViews[row & CACHE_MASK];
    if (cached !== undefined && cached.id === row && cached.gen === g) {
      const detailsGen = cols.detailsGen[row]!;
      if (cached.detailsGen !== detailsGen) this.refreshes.push({ view: cached, details: parseDetails(this.readString(cols.detailsOff[row]!)), detailsGen });
      return cached;
    }
    for (const made of this.fresh) if (made.id === row) return made;
    const key = this.readString(cols.keyOff[row]!);
    const view = new Endpoint(row, g, cols.detailsGen[row]!, this.row, key.slice(0, key.lastIndexOf(":")), cols.port[row]!, parseDetails(this.readString(cols.detailsOff[row]!)));
    this.fresh.push(view);
    return view;
  }

  /** The read was consistent: keep the views it made, apply the refreshes it found. */
  private commitViews(): void {
    for (const view of this.fresh) this.endpointViews[view.id & CACHE_MASK] = view;
    for (const r of this.refreshes) {
      r.view.refresh(r.details);
      r.view.detailsGen = r.detailsGen;
    }
    this.clearViews();
  }

  /** Forgets the views a read made (setting an array's length costs a runtime call: only when there are any). */
  private clearViews(): void {
    if (this.fresh.length !== 0) this.fresh.length = 0;
    if (this.refreshes.length !== 0) this.refreshes.length = 0;
  }

  /** A string of the arena; "" for an offset a torn read made up. */
  private readString(off: number): string {
    return off >= 0 && off < this.arena.bytes.length ? this.arena.read(off) : "";
  }
}
