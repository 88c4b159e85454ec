// One route as the proxy sees it: a view of one row of the PoolStore, made when a request first
// finds the route (most routes of a big table never get one). A request keeps the view for its
// retries; once the route leaves the table the view is no longer current and picks nothing.

import type { LoadBalancingAlgorithm } from "../../../bus/index.ts";
import type { Endpoint } from "./endpoint.ts";
import type { PickOptions, PoolStore } from "./pool-store.ts";

export type { PickOptions } from "./pool-store.ts";

export const FAILED_ENDPOINT_SKIP_MS = 30_000;

export class RoutePool {
  constructor(
    private readonly store: PoolStore,
    /** the id the matcher returns for this route */
    readonly id: number,
    /** the normalised route key, e.g. `app.example.com/api` */
    readonly key: string,
  ) {}

  /** false once the registry dropped this route: a request still in flight on it must not bring its
   * per-route metrics back */
  get inTable(): boolean {
    return this.store.isCurrent(this);
  }

  get size(): number {
    return this.inTable ? this.store.sizeOf(this.id) : 0;
  }

  get endpoints(): Endpoint[] {
    return this.inTable ? this.store.rowsOf(this.id).map((row) => this.store.endpoints.view(row)) : [];
  }

  get loadBalancing(): LoadBalancingAlgorithm {
    return this.store.loadBalancingOf(this.id);
  }
  set loadBalancing(lb: LoadBalancingAlgorithm) {
    if (this.inTable) this.store.setLoadBalancing(this.id, lb);
  }

  /** The endpoint for the next request, or undefined if none can take it. */
  pick(opts: PickOptions): Endpoint | undefined {
    if (!this.inTable) return undefined;
    const row = this.store.pick(this.id, opts);
    return row < 0 ? undefined : this.store.endpoints.view(row);
  }

  markFailed(endpoint: Endpoint, now: number): void {
    endpoint.failedUntil = now + FAILED_ENDPOINT_SKIP_MS;
  }
}
