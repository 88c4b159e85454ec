// One backend instance (host:port) as the router sees it. Shared by every route the instance serves,
// so its failure mark, connection count and upstream connection pool are per host:port. The headers
// the proxy adds for it are compiled here, once per registration, never per request.

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

export class Endpoint {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  appId = "";
  instanceId = "";
  instanceIndex = "";
  tags: Readonly<Record<string, string>> = NO_TAGS;
  staleThresholdMs = 120_000;
  /** the headers the proxy adds for this endpoint, made on the first request (most never get one) */
  private headers: string | undefined = undefined;
  /** how many route pools hold this endpoint (the registry drops it at 0) */
  routeCount = 0;
  /** ms epoch until which this endpoint is skipped after a failure (0: healthy) */
  failedUntil = 0;
  /** requests in flight to this endpoint (least-connection, connection cap) */
  inFlight = 0;
  /** set by the proxy shell: its upstream connection pool for this endpoint (opaque to the core) */
  upstream: { close(): void } | undefined = undefined;

  constructor(info: EndpointInfo) {
    this.host = info.host;
    this.port = info.port;
    this.key = endpointKey(info.host, info.port);
    this.update(info);
  }

  /** Applies a re-registration in place; returns true if anything the proxy sends changed. */
  update(info: EndpointInfo): boolean {
    const changed = info.appId !== this.appId || info.instanceId !== this.instanceId || info.instanceIndex !== this.instanceIndex;
    this.appId = info.appId;
    this.instanceId = info.instanceId;
    this.instanceIndex = info.instanceIndex;
    this.tags = info.tags;
    this.staleThresholdMs = info.staleThresholdMs;
    if (changed) this.headers = undefined;
    return changed;
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
