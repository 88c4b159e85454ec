// One route as the proxy sees it: a view of one row of the PoolStore, made by a thread's
// RouteTableReader when a request there finds the route. A request keeps the view for its retries;
// once the route leaves the table the view is no longer current and picks nothing. The round-robin
// cursor is the view's own: each worker thread cycles through a route's endpoints on its own, so no
// two threads write one cursor (a cache line bouncing between cores on every request).

import type { LoadBalancingAlgorithm } from "../../../bus/index.ts";
import type { Endpoint } from "./endpoint.ts";
import type { RouteTableReader } from "./table-reader.ts";

export const FAILED_ENDPOINT_SKIP_MS = 30_000;

export interface PickOptions {
  now: number;
  /** `__VCAP_ID__` cookie value (an instance id) */
  stickyInstanceId?: string;
  /** endpoints already tried by this request */
  exclude?: readonly Endpoint[];
}

export class RoutePool {
  /** where round-robin starts next (this thread's) */
  cursor = 0;

  constructor(
    private readonly table: RouteTableReader,
    /** the id the matcher returns for this route */
    readonly id: number,
    /** the id's generation when the view was made */
    readonly gen: number,
    /** the normalised route key, e.g. `app.example.com/api` */
    readonly key: string,
  ) {}

  /** false once the registry dropped this route: a request still in flight on it must not bring its
   * per-route metrics back */
  get inTable(): boolean {
    return this.table.isCurrent(this);
  }

  get size(): number {
    return this.table.sizeOf(this);
  }

  get endpoints(): Endpoint[] {
    return this.table.endpointsOf(this);
  }

  get loadBalancing(): LoadBalancingAlgorithm {
    return this.table.loadBalancingOf(this);
  }
  /** (tests) the writer sets a route's algorithm from its registrations */
  set loadBalancing(lb: LoadBalancingAlgorithm) {
    this.table.setLoadBalancing(this, lb);
  }

  /** The endpoint for the next request, or undefined if none can take it. */
  pick(opts: PickOptions): Endpoint | undefined {
    return this.table.pick(this, opts);
  }

  markFailed(endpoint: Endpoint, now: number): void {
    endpoint.failedUntil = now + FAILED_ENDPOINT_SKIP_MS;
  }
}
