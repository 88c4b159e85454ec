// The route table: router.register/unregister applied to pools of endpoints, stale endpoints pruned
// (each by its own threshold), pruning suspended while the bus is cut off. Route keys map to pool ids
// through the RouteMatcher; the proxy looks a request up with `lookup(host, path)`. Every change is
// a few map operations on write; the request path only reads.

import type { RouterRegister } from "../../../bus/index.ts";
import type { RouteMatcher } from "../matcher/route-matcher.ts";
import { Endpoint, endpointKey, NO_TAGS, type EndpointInfo } from "../route/endpoint.ts";
import { RoutePool } from "../route/route-pool.ts";
import { normaliseRouteKey } from "./route-key.ts";

export interface RegistryOptions {
  /** default stale threshold when a registration names none (CF: 120 s) */
  defaultStaleThresholdMs: number;
  /** max requests in flight per endpoint, 0 = no cap */
  maxConnsPerEndpoint: number;
  /** told when an endpoint leaves the table entirely, so the proxy closes its upstream sockets */
  onEndpointRemoved?: (endpoint: Endpoint) => void;
  /** told when a route leaves the table (its last endpoint went), so its per-route metrics go too */
  onRouteRemoved?: (routeKey: string) => void;
}

export interface RegistryStats {
  routes: number;
  endpoints: number;
}

export class RouteRegistry {
  /** pools by matcher id: the one structure the request path reads */
  private readonly poolsById: (RoutePool | undefined)[] = [];
  private readonly poolsByKey = new Map<string, RoutePool>();
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly freeIds: number[] = [];
  private pruningSuspended = false;
  private readonly opts: RegistryOptions;

  constructor(
    private readonly matcher: RouteMatcher,
    opts: Partial<RegistryOptions> = {},
  ) {
    this.opts = { defaultStaleThresholdMs: 120_000, maxConnsPerEndpoint: 0, ...opts };
  }

  /** The pool serving a request, or undefined (unknown route). */
  lookup(host: string, path: string): RoutePool | undefined {
    const id = this.matcher.lookup(host, path);
    return id < 0 ? undefined : this.poolsById[id];
  }

  poolByKey(uri: string): RoutePool | undefined {
    const key = normaliseRouteKey(uri);
    return key === undefined ? undefined : this.poolsByKey.get(key);
  }

  /** Applies router.register. The same host:port registered again updates its endpoint in place. */
  register(msg: RouterRegister, now: number): void {
    const info = this.endpointInfo(msg);
    const key = endpointKey(info.host, info.port);
    let endpoint = this.endpoints.get(key);
    if (endpoint) endpoint.update(info);
    else {
      endpoint = new Endpoint(info);
      this.endpoints.set(key, endpoint);
    }
    for (const uri of msg.uris) {
      const routeKey = normaliseRouteKey(uri);
      if (routeKey === undefined) continue;
      let pool = this.poolsByKey.get(routeKey);
      if (!pool) {
        const id = this.freeIds.pop() ?? this.poolsById.length;
        if (!this.matcher.insert(routeKey, id)) {
          this.freeIds.push(id);
          continue;
        }
        pool = new RoutePool(routeKey, id, this.opts.maxConnsPerEndpoint);
        this.poolsById[id] = pool;
        this.poolsByKey.set(routeKey, pool);
      }
      pool.loadBalancing = info.loadBalancing;
      if (pool.upsert(endpoint, now, info.staleThresholdMs)) endpoint.routeCount++;
    }
    this.dropIfOrphaned(endpoint);
  }

  /** Applies router.unregister: removes host:port from the pools of the uris it names. */
  unregister(msg: RouterRegister): void {
    const endpoint = this.endpoints.get(endpointKey(msg.host, msg.port));
    if (!endpoint) return;
    for (const uri of msg.uris) {
      const routeKey = normaliseRouteKey(uri);
      const pool = routeKey === undefined ? undefined : this.poolsByKey.get(routeKey);
      if (pool) this.removeFromPool(pool, endpoint);
    }
    this.dropIfOrphaned(endpoint);
  }

  /** Removes endpoints unheard for longer than their threshold. Returns how many registrations it dropped. */
  pruneStale(now: number): number {
    if (this.pruningSuspended) return 0;
    let pruned = 0;
    const touched = new Set<Endpoint>();
    for (const pool of [...this.poolsByKey.values()]) {
      for (const e of pool.staleEndpoints(now)) {
        this.removeFromPool(pool, e);
        touched.add(e);
        pruned++;
      }
    }
    for (const e of touched) this.dropIfOrphaned(e);
    return pruned;
  }

  private pruneCursor: Iterator<RoutePool> | undefined = undefined;
  private prunedThisPass = 0;

  /**
   * One slice of a pruning pass, at most `maxPools` pools, so a large table is pruned over several
   * event-loop turns instead of stalling requests. Call again while it returns done: false.
   */
  pruneStaleSlice(now: number, maxPools: number): { done: boolean; pruned: number } {
    if (this.pruningSuspended) {
      this.pruneCursor = undefined;
      return { done: true, pruned: 0 };
    }
    if (this.pruneCursor === undefined) {
      this.pruneCursor = this.poolsByKey.values();
      this.prunedThisPass = 0;
    }
    for (let n = 0; n < maxPools; n++) {
      const next = this.pruneCursor.next();
      if (next.done) {
        this.pruneCursor = undefined;
        return { done: true, pruned: this.prunedThisPass };
      }
      const pool = next.value;
      for (const e of pool.staleEndpoints(now)) {
        this.removeFromPool(pool, e);
        this.dropIfOrphaned(e);
        this.prunedThisPass++;
      }
    }
    return { done: false, pruned: this.prunedThisPass };
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
    for (const pool of this.poolsByKey.values()) pool.touchAll(now);
  }

  get isPruningSuspended(): boolean {
    return this.pruningSuspended;
  }

  stats(): RegistryStats {
    return { routes: this.poolsByKey.size, endpoints: this.endpoints.size };
  }

  /** The table as CF's /routes shows it: route → [{address, ttl, tags, …}]. */
  snapshot(): Record<string, { address: string; app_id: string; private_instance_id: string; private_instance_index: string; tags: Record<string, string>; stale_threshold_in_seconds: number; load_balancing: string }[]> {
    const out: ReturnType<RouteRegistry["snapshot"]> = {};
    for (const [key, pool] of this.poolsByKey)
      out[key] = pool.endpoints.map((e) => ({
        address: e.key,
        app_id: e.appId,
        private_instance_id: e.instanceId,
        private_instance_index: e.instanceIndex,
        tags: e.tags,
        stale_threshold_in_seconds: e.staleThresholdMs / 1000,
        load_balancing: pool.loadBalancing,
      }));
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

  private removeFromPool(pool: RoutePool, endpoint: Endpoint): void {
    if (!pool.remove(endpoint)) return;
    endpoint.routeCount--;
    if (pool.size > 0) return;
    this.matcher.remove(pool.key);
    this.poolsByKey.delete(pool.key);
    this.poolsById[pool.id] = undefined;
    this.freeIds.push(pool.id);
    pool.inTable = false;
    this.opts.onRouteRemoved?.(pool.key);
  }

  private dropIfOrphaned(endpoint: Endpoint): void {
    if (endpoint.routeCount > 0) return;
    if (this.endpoints.get(endpoint.key) !== endpoint) return;
    this.endpoints.delete(endpoint.key);
    this.opts.onEndpointRemoved?.(endpoint);
  }
}
