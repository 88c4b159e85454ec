// What every exchange of one proxying thread shares, built once by the worker (router/src/worker.ts):
// the thread's reader of the route table, limits, counters, the access log, the trusted front ends
// and the upstream connection pools. Nothing here is created per request.

import type { Endpoint } from "../route/endpoint.ts";
import type { RoutePool } from "../route/route-pool.ts";
import type { RouterMetrics } from "../status/router-metrics.ts";
import type { AccessLog } from "../status/access-log.ts";
import { TableControl } from "../route/table-seqlock.ts";
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

/** The route table as the proxy reads it (a thread's RouteTableReader, or a registry in tests). */
export interface ProxyRouteTable {
  lookup(host: string, path: string): RoutePool | undefined;
}

export interface ProxyContextOptions {
  table: ProxyRouteTable;
  limits: ProxyLimits;
  metrics: RouterMetrics;
  accessLog?: AccessLog;
  upstream: UpstreamPoolOptions;
  /** "http" or "https": what the client spoke to us */
  scheme: string;
  /** peers whose forwarded headers (X-Forwarded-Proto, Forwarded, …) are passed on: SKIFF_ROUTER_TRUSTED_PROXIES */
  trustedProxies?: CidrList;
  /** the table's shared control block: its drain flag is set by the main thread for every worker */
  control?: Int32Array;
}

export class ProxyContext {
  /** in-flight exchanges, an intrusive list (cheaper than a Set on the hot path), for the timeout sweep */
  private head: Exchange | undefined = undefined;
  activeCount = 0;
  /** a coarse clock (ms) for timeouts and failure marks, refreshed by the sweep: no clock read per request */
  now = Date.now();
  /** upstream connection pools by endpoint row (a row's pool belongs to the endpoint generation that made it) */
  private readonly pools = new Map<number, UpstreamPool>();
  readonly table: ProxyRouteTable;
  readonly limits: ProxyLimits;
  readonly metrics: RouterMetrics;
  readonly accessLog: AccessLog | undefined;
  readonly upstreamOptions: UpstreamPoolOptions;
  readonly scheme: string;
  readonly trustedProxies: CidrList;
  private readonly control: Int32Array;

  constructor(opts: ProxyContextOptions) {
    this.table = opts.table;
    this.limits = opts.limits;
    this.metrics = opts.metrics;
    this.accessLog = opts.accessLog;
    this.upstreamOptions = opts.upstream;
    this.scheme = opts.scheme;
    this.trustedProxies = opts.trustedProxies ?? CidrList.empty;
    this.control = opts.control ?? new Int32Array(TableControl.size);
  }

  /** set when a drain starts (by the main thread, for every worker): every response from then on carries Connection: close */
  get draining(): boolean {
    return this.control[TableControl.draining] === 1;
  }
  set draining(on: boolean) {
    Atomics.store(this.control, TableControl.draining, on ? 1 : 0);
  }

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
    let pool = this.pools.get(endpoint.id);
    if (pool !== undefined && !pool.isClosed && pool.endpointGen === endpoint.gen) return pool;
    pool = new UpstreamPool(endpoint.host, endpoint.port, this.upstreamOptions, endpoint.gen);
    if (endpoint.inTable) {
      this.pools.get(endpoint.id)?.close(); // the row's previous endpoint's
      this.pools.set(endpoint.id, pool);
    } else pool.close(); // a view of an endpoint that already left the table (a late retry): its connection is not kept
    return pool;
  }

  /** The endpoint left the table (told in the thread that writes it; workers find out in sweep). */
  endpointRemoved(endpoint: Endpoint): void {
    const pool = this.pools.get(endpoint.id);
    if (!pool || pool.endpointGen !== endpoint.gen) return;
    pool.close();
    this.pools.delete(endpoint.id);
  }

  /**
   * Every 250 ms: time out stuck exchanges, close long-idle upstream sockets, and close the pools of
   * endpoints that left the table (`isCurrent(row, gen)`, from the thread's table reader).
   */
  sweep(now: number, isCurrent?: (row: number, gen: number) => boolean): void {
    this.now = now;
    for (let ex = this.head; ex !== undefined; ) {
      const next = ex.nextActive;
      ex.checkTimeout(now);
      ex = next;
    }
    for (const [row, pool] of this.pools) {
      if (pool.isClosed || (isCurrent !== undefined && !isCurrent(row, pool.endpointGen))) {
        pool.close();
        this.pools.delete(row);
      } else pool.sweepIdle(now);
    }
  }

  /** Closes every upstream connection (the thread is stopping). */
  closeUpstreams(): void {
    for (const pool of this.pools.values()) pool.close();
    this.pools.clear();
  }

  /** upstream pools open (tests) */
  get poolCount(): number {
    return this.pools.size;
  }
}
