// The route table: router.register/unregister applied to pools of endpoints, stale endpoints pruned
// (each by its own threshold), pruning suspended while the bus is cut off. Route keys map to pool ids
// through the RouteMatcher; the proxy looks a request up with `lookup(host, path)`. The table itself
// is typed-array rows and one byte arena (PoolStore, EndpointStore), so a million routes cost the
// garbage collector nothing; the proxy gets views of the rows it uses. Every change is a few index
// operations on write; the request path only reads.

import type { RouterRegister } from "../../../bus/index.ts";
import type { RouteMatcher } from "../matcher/route-matcher.ts";
import { ByteArena } from "../route/byte-arena.ts";
import { NO_TAGS, type Endpoint, type EndpointInfo } from "../route/endpoint.ts";
import { EndpointStore } from "../route/endpoint-store.ts";
import { PoolStore } from "../route/pool-store.ts";
import type { RoutePool } from "../route/route-pool.ts";
import { normaliseRouteKey } from "./route-key.ts";

export interface RegistryOptions {
  /** default stale threshold when a registration names none (CF: 120 s) */
  defaultStaleThresholdMs: number;
  /** max requests in flight per endpoint, 0 = no cap */
  maxConnsPerEndpoint: number;
  /** told when an endpoint the proxy has used leaves the table, so the proxy closes its upstream sockets */
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
}

export interface RegistryStats {
  routes: number;
  endpoints: number;
}

export class RouteRegistry {
  private readonly arena = new ByteArena();
  private readonly endpoints: EndpointStore;
  private readonly pools: PoolStore;
  private pruningSuspended = false;
  private readonly opts: RegistryOptions;

  constructor(
    private readonly matcher: RouteMatcher,
    opts: Partial<RegistryOptions> = {},
  ) {
    this.opts = { defaultStaleThresholdMs: 120_000, maxConnsPerEndpoint: 0, reserveRoutes: 16, ...opts };
    this.endpoints = new EndpointStore(this.arena, this.opts.reserveRoutes);
    this.pools = new PoolStore(this.arena, this.endpoints, this.opts.maxConnsPerEndpoint, this.opts.reserveRoutes);
  }

  /** The pool serving a request, or undefined (unknown route). */
  lookup(host: string, path: string): RoutePool | undefined {
    const id = this.matcher.lookup(host, path);
    return id < 0 || !this.pools.has(id) ? undefined : this.pools.view(id);
  }

  poolByKey(uri: string): RoutePool | undefined {
    const key = normaliseRouteKey(uri);
    const id = key === undefined ? -1 : this.pools.find(key);
    return id < 0 ? undefined : this.pools.view(id);
  }

  /** Applies router.register. The same host:port registered again updates its endpoint in place. */
  register(msg: RouterRegister, now: number): void {
    const info = this.endpointInfo(msg);
    let row = this.endpoints.find(info.host, info.port);
    if (row >= 0) this.endpoints.update(row, info);
    else row = this.endpoints.add(info);
    try {
      this.addRoutes(msg.uris, row, info, now);
    } finally {
      this.dropIfOrphaned(row); // every uri refused (or a throw before the first was added): no endpoint left behind
    }
  }

  private addRoutes(uris: readonly string[], row: number, info: EndpointInfo, now: number): void {
    for (const uri of uris) {
      const routeKey = normaliseRouteKey(uri);
      if (routeKey === undefined) continue;
      let id = this.pools.find(routeKey);
      if (id < 0) {
        id = this.pools.create(routeKey);
        if (!this.matcher.insert(routeKey, id)) {
          this.pools.destroy(id);
          continue;
        }
      }
      this.pools.setLoadBalancing(id, info.loadBalancing);
      if (this.pools.upsert(id, row, now, info.staleThresholdMs)) this.endpoints.routeCount[row]!++;
    }
  }

  /** Applies router.unregister: removes host:port from the pools of the uris it names. */
  unregister(msg: RouterRegister): void {
    const row = this.endpoints.find(msg.host, msg.port);
    if (row < 0) return;
    for (const uri of msg.uris) {
      const routeKey = normaliseRouteKey(uri);
      const id = routeKey === undefined ? -1 : this.pools.find(routeKey);
      if (id >= 0) this.removeFromPool(id, row);
    }
    this.dropIfOrphaned(row);
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
        this.removeFromPool(id, row);
        this.dropIfOrphaned(row);
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
    if (!this.pools.remove(id, row)) return;
    this.endpoints.routeCount[row]!--;
    if (this.pools.sizeOf(id) > 0) return;
    const key = this.pools.keyOf(id);
    this.matcher.remove(key);
    this.pools.destroy(id);
    this.opts.onRouteRemoved?.(key);
  }

  private dropIfOrphaned(row: number): void {
    if (this.endpoints.routeCount[row]! > 0) return;
    const view = this.endpoints.remove(row);
    if (view) this.opts.onEndpointRemoved?.(view);
  }
}
