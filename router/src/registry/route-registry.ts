// The route table: router.register/unregister applied to pools of endpoints, stale endpoints pruned
// (each by its own threshold), pruning suspended while the bus is cut off. Route keys map to pool ids
// through the RouteMatcher; the proxy looks a request up with `lookup(host, path)`. The table itself
// is typed-array rows and one byte arena (PoolStore, EndpointStore), so a million routes cost the
// garbage collector nothing; the proxy gets views of the rows it uses. Every change is a few index
// operations on write; the request path only reads.
//
// One registry per router, in the thread that hears the bus (the writer). What the proxy reads lives
// in shared memory (`share()`): each worker thread reads it through its own RouteTableReader. Every
// change that a reader could see is one seqlock write (TableSeqlock), so a reader never sees half a
// registration; a re-registration that only refreshes its time writes nothing readers see.

import type { RouterRegister } from "../../../bus/index.ts";
import type { RouteMatcher } from "../matcher/route-matcher.ts";
import { ByteArena } from "../route/byte-arena.ts";
import { NO_TAGS, type Endpoint, type EndpointInfo } from "../route/endpoint.ts";
import { EndpointStore } from "../route/endpoint-store.ts";
import { PoolStore } from "../route/pool-store.ts";
import type { RoutePool } from "../route/route-pool.ts";
import { RouteTableReader, type RouteTableShare } from "../route/table-reader.ts";
import { TableControl, TableSeqlock } from "../route/table-seqlock.ts";
import { normaliseRouteKey } from "./route-key.ts";

export interface RegistryOptions {
  /** default stale threshold when a registration names none (CF: 120 s) */
  defaultStaleThresholdMs: number;
  /** max requests in flight per endpoint, 0 = no cap */
  maxConnsPerEndpoint: number;
  /** told when an endpoint the proxy in this thread has used leaves the table, so the proxy closes its
   * upstream sockets (worker threads notice on their own: ProxyContext.sweep) */
  onEndpointRemoved?: (endpoint: Endpoint) => void;
  /** told when a route leaves the table (its last endpoint went), so its per-route metrics go too */
  onRouteRemoved?: (routeKey: string) => void;
  /**
   * Routes and endpoints the table makes room for up front. Growing past the room copies every
   * column and rehashes the key indexes (~50 ms at a million rows, on the event loop), so the router
   * reserves room for 2M: address space only, as the kernel backs pages when they are first written
   * (no RSS until the table fills them). Default: 16.
   */
  reserveRoutes: number;
  /** worker threads that proxy (each counts its requests in flight in a column of its own); default 1 */
  workerSlots: number;
}

export interface RegistryStats {
  routes: number;
  endpoints: number;
}

export class RouteRegistry {
  private readonly control = TableSeqlock.newControl();
  /** a column or the arena grew: every reader makes new views of the longer buffers */
  private readonly grown = () => void this.control[TableControl.layout]!++;
  private readonly arena = new ByteArena(1 << 16, this.grown);
  private readonly endpoints: EndpointStore;
  private readonly pools: PoolStore;
  private pruningSuspended = false;
  private readonly opts: RegistryOptions;
  private readonly lock = new TableSeqlock(this.control);
  /** this thread's reader (lookups made where the table is written: tests, tools) */
  private readonly reader: RouteTableReader;

  constructor(
    private readonly matcher: RouteMatcher,
    opts: Partial<RegistryOptions> = {},
  ) {
    this.opts = { defaultStaleThresholdMs: 120_000, maxConnsPerEndpoint: 0, reserveRoutes: 16, workerSlots: 1, ...opts };
    this.endpoints = new EndpointStore(this.arena, this.opts.reserveRoutes, this.opts.workerSlots, this.grown);
    this.pools = new PoolStore(this.arena, this.endpoints, this.opts.reserveRoutes, this.grown);
    this.reader = new RouteTableReader(this.share(), matcher, 0, this.lock);
  }

  /** What a worker thread needs to read the table (with a reader of the matcher: see WasmMatcher.shareWithReader). */
  share(): RouteTableShare {
    return { control: this.control, arena: this.arena.bytes, pools: this.pools.columns, endpoints: this.endpoints.columns, maxConnsPerEndpoint: this.opts.maxConnsPerEndpoint };
  }

  /** The shared control block (the seqlock, the drain flag). */
  get controlBlock(): Int32Array {
    return this.control;
  }

  /** The pool serving a request, or undefined (unknown route). */
  lookup(host: string, path: string): RoutePool | undefined {
    return this.reader.lookup(host, path);
  }

  /** Runs `changes` (registrations, unregistrations) as one change: readers see all of it or none. */
  atomically<T>(changes: () => T): T {
    this.lock.hold();
    try {
      return changes();
    } finally {
      this.lock.release();
    }
  }

  /** Whether a route with this normalised key is in the table. */
  hasRoute(key: string): boolean {
    return this.pools.find(key) >= 0;
  }

  poolByKey(uri: string): RoutePool | undefined {
    const key = normaliseRouteKey(uri);
    const id = key === undefined ? -1 : this.pools.find(key);
    return id < 0 ? undefined : this.reader.lookupId(id);
  }

  /**
   * A worker thread died: what it had in flight will never be counted off, so its column starts
   * again from zero for the thread that takes its slot.
   */
  resetWorkerSlot(slot: number): void {
    this.endpoints.inFlight[slot]?.fill(0);
  }

  /** Applies router.register. The same host:port registered again updates its endpoint in place. */
  register(msg: RouterRegister, now: number): void {
    try {
      const info = this.endpointInfo(msg);
      let row = this.endpoints.find(info.host, info.port);
      if (row >= 0) {
        if (this.endpoints.wouldChange(row, info)) this.lock.begin();
        this.endpoints.update(row, info);
      } else {
        this.lock.begin();
        row = this.endpoints.add(info);
      }
      try {
        this.addRoutes(msg.uris, row, info, now);
      } finally {
        this.dropIfOrphaned(row); // every uri refused (or a throw before the first was added): no endpoint left behind
      }
    } finally {
      this.lock.end();
    }
  }

  private addRoutes(uris: readonly string[], row: number, info: EndpointInfo, now: number): void {
    for (const uri of uris) {
      const routeKey = normaliseRouteKey(uri);
      if (routeKey === undefined) continue;
      let id = this.pools.find(routeKey);
      if (id < 0) {
        this.lock.begin();
        id = this.pools.create(routeKey);
        if (!this.matcher.insert(routeKey, id)) {
          this.pools.destroy(id);
          continue;
        }
        this.control[TableControl.routes]!++;
      }
      if (this.pools.loadBalancingDiffers(id, info.loadBalancing)) {
        this.lock.begin();
        this.pools.setLoadBalancing(id, info.loadBalancing);
      }
      // A new member is a change readers see; refreshing a member's time is the writer's alone.
      if (!this.pools.holds(id, row)) this.lock.begin();
      if (this.pools.upsert(id, row, now, info.staleThresholdMs)) this.endpoints.routeCount[row]!++;
    }
  }

  /** Applies router.unregister: removes host:port from the pools of the uris it names. */
  unregister(msg: RouterRegister): void {
    try {
      const row = this.endpoints.find(msg.host, msg.port);
      if (row < 0) return;
      for (const uri of msg.uris) {
        const routeKey = normaliseRouteKey(uri);
        const id = routeKey === undefined ? -1 : this.pools.find(routeKey);
        if (id >= 0) this.removeFromPool(id, row);
      }
      this.dropIfOrphaned(row);
    } finally {
      this.lock.end();
    }
  }

  /** Removes endpoints unheard for longer than their threshold. Returns how many registrations it dropped. */
  pruneStale(now: number): number {
    this.pruneCursor = -1;
    let pruned = 0;
    for (let done = false; !done; ) ({ done, pruned } = this.pruneStaleSlice(now, Infinity));
    return pruned;
  }

  private pruneCursor = -1;
  private prunedThisPass = 0;

  /**
   * One slice of a pruning pass, at most `maxPools` route ids, so a large table is pruned over several
   * event-loop turns instead of stalling requests. Call again while it returns done: false.
   */
  pruneStaleSlice(now: number, maxPools: number): { done: boolean; pruned: number } {
    if (this.pruningSuspended) {
      this.pruneCursor = -1;
      return { done: true, pruned: 0 };
    }
    if (this.pruneCursor < 0) {
      this.pruneCursor = 0;
      this.prunedThisPass = 0;
    }
    const end = Math.min(this.pools.idLimit, this.pruneCursor + maxPools);
    for (let id = this.pruneCursor; id < end; id++) {
      if (!this.pools.has(id)) continue;
      for (const row of this.pools.staleRows(id, now)) {
        // one change per endpoint dropped: readers wait for at most one at a time
        try {
          this.removeFromPool(id, row);
          this.dropIfOrphaned(row);
        } finally {
          this.lock.end();
        }
        this.prunedThisPass++;
      }
    }
    this.pruneCursor = end;
    if (end < this.pools.idLimit) return { done: false, pruned: this.prunedThisPass };
    this.pruneCursor = -1;
    return { done: true, pruned: this.prunedThisPass };
  }

  /** While cut off from NATS, registrations cannot arrive, so stale does not mean gone. */
  suspendPruning(): void {
    this.pruningSuspended = true;
  }

  /**
   * Resumes pruning. Every endpoint is treated as heard now, so nothing is pruned for what happened
   * while we could not hear (gorouter does the same when NATS comes back).
   */
  resumePruning(now: number): void {
    if (!this.pruningSuspended) return;
    this.pruningSuspended = false;
    this.pools.touchAll(now);
  }

  get isPruningSuspended(): boolean {
    return this.pruningSuspended;
  }

  stats(): RegistryStats {
    return { routes: this.pools.size, endpoints: this.endpoints.size };
  }

  /** The table as CF's /routes shows it: route → [{address, ttl, tags, …}]. */
  snapshot(): Record<string, { address: string; app_id: string; private_instance_id: string; private_instance_index: string; tags: Record<string, string>; stale_threshold_in_seconds: number; load_balancing: string }[]> {
    const out: ReturnType<RouteRegistry["snapshot"]> = {};
    for (let id = 0; id < this.pools.idLimit; id++) {
      if (!this.pools.has(id)) continue;
      const load_balancing = this.pools.loadBalancingOf(id);
      out[this.pools.keyOf(id)] = this.pools.rowsOf(id).map((row) => {
        const d = this.endpoints.details(row);
        return {
          address: this.endpoints.keyOf(row),
          app_id: d.appId,
          private_instance_id: d.instanceId,
          private_instance_index: d.instanceIndex,
          tags: d.tags,
          stale_threshold_in_seconds: this.endpoints.staleMs[row]! / 1000,
          load_balancing,
        };
      });
    }
    return out;
  }

  private endpointInfo(msg: RouterRegister): EndpointInfo {
    const threshold = msg.stale_threshold_in_seconds;
    return {
      host: msg.host,
      port: msg.port,
      appId: msg.app ?? "",
      instanceId: msg.private_instance_id ?? "",
      instanceIndex: msg.private_instance_index ?? "",
      tags: msg.tags ?? NO_TAGS,
      staleThresholdMs: threshold && threshold > 0 ? threshold * 1000 : this.opts.defaultStaleThresholdMs,
      loadBalancing: msg.options?.loadbalancing ?? "round-robin",
    };
  }

  private removeFromPool(id: number, row: number): void {
    if (!this.pools.holds(id, row)) return;
    this.lock.begin();
    this.pools.remove(id, row);
    this.endpoints.routeCount[row]!--;
    if (this.pools.sizeOf(id) > 0) return;
    const key = this.pools.keyOf(id);
    this.matcher.remove(key);
    this.pools.destroy(id);
    this.control[TableControl.routes]!++;
    this.opts.onRouteRemoved?.(key);
  }

  private dropIfOrphaned(row: number): void {
    if (this.endpoints.routeCount[row]! > 0) return;
    this.lock.begin();
    const view = this.reader.cachedEndpoint(row); // before the row's generation moves on
    this.endpoints.remove(row);
    if (view) this.opts.onEndpointRemoved?.(view);
  }
}
