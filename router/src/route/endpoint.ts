// One backend instance (host:port) as the proxy sees it: a view of one row of the EndpointStore,
// made the first time a request picks it (most endpoints of a big table never get one). Shared by
// every route the instance serves, so its failure mark, connection count and upstream connection pool
// are per host:port. The headers the proxy adds for it are compiled here, once, never per request.

import type { LoadBalancingAlgorithm } from "../../../bus/index.ts";
import type { EndpointStore } from "./endpoint-store.ts";

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

export class Endpoint {
  readonly key: string;
  appId = "";
  instanceId = "";
  instanceIndex = "";
  tags: Readonly<Record<string, string>> = NO_TAGS;
  /** the headers the proxy adds for this endpoint, made on first use */
  private headers: string | undefined = undefined;
  /** set by the proxy shell: its upstream connection pool for this endpoint (opaque to the core) */
  upstream: { close(): void } | undefined = undefined;
  /** the store's row while the endpoint is in the table; after it left, the view keeps its own counts */
  private store: EndpointStore | undefined;
  private ownInFlight = 0;
  private ownFailedUntil = 0;
  private ownStaleThresholdMs = 0;

  constructor(
    /** the store's row; -1 once the endpoint left the table (the row may then hold another endpoint) */
    public id: number,
    store: EndpointStore,
    readonly host: string,
    readonly port: number,
    details: EndpointDetails,
  ) {
    this.key = endpointKey(host, port);
    this.store = store;
    this.refresh(details);
  }

  /** requests in flight to this endpoint (least-connection, connection cap) */
  get inFlight(): number {
    return this.store ? this.store.inFlight[this.id]! : this.ownInFlight;
  }
  set inFlight(n: number) {
    if (this.store) this.store.inFlight[this.id] = n;
    else this.ownInFlight = n;
  }

  /** ms epoch until which this endpoint is skipped after a failure (0: healthy) */
  get failedUntil(): number {
    return this.store ? this.store.failedUntil[this.id]! : this.ownFailedUntil;
  }
  set failedUntil(t: number) {
    if (this.store) this.store.failedUntil[this.id] = t;
    else this.ownFailedUntil = t;
  }

  get staleThresholdMs(): number {
    return this.store ? this.store.staleMs[this.id]! : this.ownStaleThresholdMs;
  }

  /** A re-registration changed what the proxy sends for this endpoint. */
  refresh(d: EndpointDetails): void {
    if (d.appId !== this.appId || d.instanceId !== this.instanceId || d.instanceIndex !== this.instanceIndex) this.headers = undefined;
    this.appId = d.appId;
    this.instanceId = d.instanceId;
    this.instanceIndex = d.instanceIndex;
    this.tags = d.tags;
  }

  /** The endpoint left the table: requests still holding this view count on the view itself. */
  detach(): void {
    if (!this.store) return;
    this.ownInFlight = this.inFlight;
    this.ownFailedUntil = this.failedUntil;
    this.ownStaleThresholdMs = this.staleThresholdMs;
    this.store = undefined;
    this.id = -1;
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
