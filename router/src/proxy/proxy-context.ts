// What every exchange shares, built once by main.ts: the route table, limits, counters, the access
// log and the trusted front ends. Nothing here is created per request.

import type { RouteRegistry } from "../registry/route-registry.ts";
import type { Endpoint } from "../route/endpoint.ts";
import type { RouterMetrics } from "../status/router-metrics.ts";
import type { AccessLog } from "../status/access-log.ts";
import { UpstreamPool, type UpstreamPoolOptions } from "./upstream-pool.ts";
import type { Exchange } from "./exchange.ts";
import { CidrList } from "../config/cidr-list.ts";

export interface ProxyLimits {
  maxHeaderBytes: number;
  maxBodyBytes: number;
  connectTimeoutMs: number;
  /** from the request's last byte sent to the response head */
  responseTimeoutMs: number;
  maxAttempts: number;
}

export class ProxyContext {
  /** in-flight exchanges, an intrusive list (cheaper than a Set on the hot path), for the timeout sweep */
  private head: Exchange | undefined = undefined;
  activeCount = 0;
  /** set by main.ts when a drain starts: every response from then on carries Connection: close */
  draining = false;
  /** a coarse clock (ms) for timeouts and failure marks, refreshed by the sweep: no clock read per request */
  now = Date.now();
  private readonly pools = new Set<UpstreamPool>();

  constructor(
    readonly registry: RouteRegistry,
    readonly limits: ProxyLimits,
    readonly metrics: RouterMetrics,
    readonly accessLog: AccessLog | undefined,
    readonly upstreamOptions: UpstreamPoolOptions,
    /** "http" or "https": what the client spoke to us */
    readonly scheme: string,
    /** peers whose forwarded headers (X-Forwarded-Proto, Forwarded, …) are passed on: SKIFF_ROUTER_TRUSTED_PROXIES */
    readonly trustedProxies: CidrList = CidrList.empty,
  ) {}

  addActive(ex: Exchange): void {
    ex.nextActive = this.head;
    if (this.head) this.head.prevActive = ex;
    this.head = ex;
    this.activeCount++;
  }

  removeActive(ex: Exchange): void {
    const { prevActive, nextActive } = ex;
    if (prevActive) prevActive.nextActive = nextActive;
    else if (this.head === ex) this.head = nextActive;
    else return; // not in the list
    if (nextActive) nextActive.prevActive = prevActive;
    ex.prevActive = ex.nextActive = undefined;
    this.activeCount--;
  }

  upstreamFor(endpoint: Endpoint): UpstreamPool {
    let pool = endpoint.upstream as UpstreamPool | undefined;
    if (pool === undefined || pool.isClosed) {
      pool = new UpstreamPool(endpoint.host, endpoint.port, this.upstreamOptions);
      endpoint.upstream = pool;
      this.pools.add(pool);
    }
    return pool;
  }

  /** The endpoint left the table. */
  endpointRemoved(endpoint: Endpoint): void {
    const pool = endpoint.upstream as UpstreamPool | undefined;
    if (!pool) return;
    pool.close();
    this.pools.delete(pool);
  }

  /** Once a second: time out stuck exchanges, close long-idle upstream sockets. */
  sweep(now: number): void {
    this.now = now;
    for (let ex = this.head; ex !== undefined; ) {
      const next = ex.nextActive;
      ex.checkTimeout(now);
      ex = next;
    }
    for (const pool of this.pools) pool.sweepIdle(now);
  }
}
