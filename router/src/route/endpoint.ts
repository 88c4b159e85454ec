// One backend instance (host:port) as the proxy sees it: a view of one row of the EndpointStore,
// made by a thread's RouteTableReader the first time a request there picks it (most endpoints of a
// big table never get one). Shared by every route the instance serves, so its failure mark and
// connection count are per host:port. The headers the proxy adds for it are compiled here, once,
// never per request. The row's columns are shared between threads: the failure mark is one for all
// workers, the in-flight count this view changes is its own thread's (EndpointColumns.inFlight).

import type { LoadBalancingAlgorithm } from "../../../bus/index.ts";

/** What a registration says about an endpoint (the fields of router.register the router keeps). */
export interface EndpointInfo {
  host: string;
  port: number;
  appId: string;
  instanceId: string;
  instanceIndex: string;
  tags: Readonly<Record<string, string>>;
  staleThresholdMs: number;
  loadBalancing: LoadBalancingAlgorithm;
}

/** The strings of a registration that the proxy sends on or shows (kept in the store's arena). */
export interface EndpointDetails {
  appId: string;
  instanceId: string;
  instanceIndex: string;
  tags: Readonly<Record<string, string>>;
}

/** What an Endpoint view reads and writes of the shared table (its thread's current views of the columns). */
export interface EndpointRow {
  /** the failure marks, one column for every thread */
  readonly failedUntil: Float64Array;
  /** this thread's in-flight counts */
  readonly inFlight: Int32Array;
  /** the row's generation: while it is the view's, the view's endpoint is in the table */
  readonly gen: Int32Array;
}

export class Endpoint {
  readonly key: string;
  appId = "";
  instanceId = "";
  instanceIndex = "";
  tags: Readonly<Record<string, string>> = NO_TAGS;
  /** the headers the proxy adds for this endpoint, made on first use */
  private headers: string | undefined = undefined;
  /** the failure mark once the endpoint left the table (the row may hold another by then) */
  private ownFailedUntil = 0;

  constructor(
    /** the store's row */
    readonly id: number,
    /** the row's generation when the view was made */
    readonly gen: number,
    /** the row's details generation the view's strings are from */
    public detailsGen: number,
    private readonly row: EndpointRow,
    readonly host: string,
    readonly port: number,
    details: EndpointDetails,
  ) {
    this.key = endpointKey(host, port);
    this.refresh(details);
  }

  /** whether the endpoint is still in the table */
  get inTable(): boolean {
    return this.row.gen[this.id] === this.gen;
  }

  /**
   * Requests in flight to this endpoint from this thread (least-connection and the cap add up every
   * thread's). Counted on the row even after the endpoint left the table: the row is not given to
   * another endpoint while anything is in flight on it (EndpointStore.reusableRow).
   */
  get inFlight(): number {
    return this.row.inFlight[this.id]!;
  }
  set inFlight(n: number) {
    this.row.inFlight[this.id] = n;
  }

  /** ms epoch until which this endpoint is skipped after a failure (0: healthy), seen by every thread */
  get failedUntil(): number {
    return this.inTable ? this.row.failedUntil[this.id]! : this.ownFailedUntil;
  }
  set failedUntil(t: number) {
    if (this.inTable) this.row.failedUntil[this.id] = t;
    else this.ownFailedUntil = t;
  }

  /** A re-registration changed what the proxy sends for this endpoint. */
  refresh(d: EndpointDetails): void {
    if (d.appId !== this.appId || d.instanceId !== this.instanceId || d.instanceIndex !== this.instanceIndex) this.headers = undefined;
    this.appId = d.appId;
    this.instanceId = d.instanceId;
    this.instanceIndex = d.instanceIndex;
    this.tags = d.tags;
  }

  /** `X-CF-ApplicationID: …\r\nX-CF-InstanceIndex: …\r\nX-CF-InstanceID: …\r\n`, ready to append to a request head. */
  get headerBytes(): string {
    return (this.headers ??= compileHeaders(this));
  }

  isFailed(now: number): boolean {
    return this.failedUntil > now;
  }
}

/** shared by every registration that names no tags, so a million routes make no million empty objects */
export const NO_TAGS: Readonly<Record<string, string>> = Object.freeze({});

export const endpointKey = (host: string, port: number): string => `${host}:${port}`;

const SAFE_HEADER_VALUE = /^[\x20-\x7e]*$/;

function compileHeaders(e: Endpoint): string {
  // Values come from the bus; a CR/LF in them would let a registrant inject headers, so drop bad ones.
  let out = "";
  if (e.appId && SAFE_HEADER_VALUE.test(e.appId)) out += `X-CF-ApplicationID: ${e.appId}\r\n`;
  if (e.instanceIndex && SAFE_HEADER_VALUE.test(e.instanceIndex)) out += `X-CF-InstanceIndex: ${e.instanceIndex}\r\n`;
  if (e.instanceId && SAFE_HEADER_VALUE.test(e.instanceId)) out += `X-CF-InstanceID: ${e.instanceId}\r\n`;
  return out;
}
