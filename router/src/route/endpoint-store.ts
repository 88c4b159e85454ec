// Every endpoint (host:port) of the route table as one row of typed-array columns, its strings in the
// table's ByteArena, found by host:port through a KeyIndex. A million endpoints are then a few dozen
// bytes each outside the JS heap, where before each was an object with five strings for the garbage
// collector to walk on every pause. The proxy gets an Endpoint view of a row when it first picks it.

import type { ByteArena } from "./byte-arena.ts";
import { sizeColumns } from "./columns.ts";
import { Endpoint, endpointKey, NO_TAGS, type EndpointDetails, type EndpointInfo } from "./endpoint.ts";
import { KeyIndex } from "./key-index.ts";

export class EndpointStore {
  private capacity: number;
  port = new Int32Array(0);
  /** ms epoch until which the endpoint is skipped after a failure */
  failedUntil = new Float64Array(0);
  /** requests (and WebSocket tunnels) in flight to the endpoint */
  inFlight = new Int32Array(0);
  /** how many route pools hold the endpoint (the registry drops it at 0) */
  routeCount = new Int32Array(0);
  /** the stale threshold its last registration gave */
  staleMs = new Float64Array(0);
  /** arena offsets: `host:port`, and the registration's strings (detailsText) */
  private keyOff = new Int32Array(0);
  private detailsOff = new Int32Array(0);
  /** views by row: made when the proxy first picks the endpoint (a dense array, never holey past its end) */
  private readonly views: (Endpoint | undefined)[] = [];
  private readonly freeRows: number[] = [];
  private readonly index: KeyIndex;

  constructor(
    private readonly arena: ByteArena,
    /** rows to make room for up front (RegistryOptions.reserveRoutes) */
    reserve = 16,
  ) {
    this.capacity = Math.max(16, reserve);
    sizeColumns(this, COLUMNS, this.capacity);
    this.index = new KeyIndex(arena, (row) => this.keyOff[row]!, this.capacity);
  }

  get size(): number {
    return this.index.size;
  }

  /** The row of host:port, or -1. */
  find(host: string, port: number): number {
    return this.index.find(endpointKey(host, port));
  }

  /** Adds a new endpoint (host:port must not be in the table). */
  add(info: EndpointInfo): number {
    // Stored before anything else changes: a string too long for the arena throws here, leaving the table as it was.
    const details = this.arena.storeScratch(this.arena.encode(detailsText(info)));
    let key: number;
    try {
      key = this.arena.store(endpointKey(info.host, info.port));
    } catch (err) {
      this.arena.release(details);
      throw err;
    }
    const row = this.freeRows.pop() ?? this.newRow();
    this.port[row] = info.port;
    this.failedUntil[row] = 0;
    this.inFlight[row] = 0;
    this.routeCount[row] = 0;
    this.staleMs[row] = info.staleThresholdMs;
    this.keyOff[row] = key;
    this.detailsOff[row] = details;
    this.index.insert(row);
    return row;
  }

  /** Applies a re-registration of the same host:port in place. */
  update(row: number, info: EndpointInfo): void {
    const n = this.arena.encode(detailsText(info));
    if (!this.arena.equalsScratch(this.detailsOff[row]!, n)) {
      const stored = this.arena.storeScratch(n); // throws, changing nothing, when too long
      this.arena.release(this.detailsOff[row]!);
      this.detailsOff[row] = stored;
      this.views[row]?.refresh(this.details(row));
    }
    this.staleMs[row] = info.staleThresholdMs;
  }

  /** Takes the endpoint out; returns its view, if the proxy had one (now detached from the row). */
  remove(row: number): Endpoint | undefined {
    this.index.delete(row);
    this.arena.release(this.keyOff[row]!);
    this.arena.release(this.detailsOff[row]!);
    const view = this.views[row];
    if (view) {
      view.detach();
      this.views[row] = undefined;
    }
    this.freeRows.push(row);
    return view;
  }

  view(row: number): Endpoint {
    let v = this.views[row];
    if (v === undefined) {
      const key = this.keyOf(row);
      v = new Endpoint(row, this, key.slice(0, key.lastIndexOf(":")), this.port[row]!, this.details(row));
      this.views[row] = v;
    }
    return v;
  }

  keyOf(row: number): string {
    return this.arena.read(this.keyOff[row]!);
  }

  details(row: number): EndpointDetails {
    return parseDetails(this.arena.read(this.detailsOff[row]!));
  }

  private newRow(): number {
    const row = this.views.length;
    if (row === this.capacity) {
      this.capacity *= 2;
      sizeColumns(this, COLUMNS, this.capacity);
    }
    this.views.push(undefined);
    return row;
  }
}

const COLUMNS = ["port", "failedUntil", "inFlight", "routeCount", "staleMs", "keyOff", "detailsOff"] as const;

/**
 * The strings of a registration as one: `<len>,<len>,<len>;` then appId, instanceId, instanceIndex
 * back to back (lengths in UTF-16 units, so any value survives), then the tags' JSON if there are
 * tags. Cheaper to make than JSON, and a re-registration (every 20 s per instance) compares it as is.
 */
function detailsText(i: EndpointInfo): string {
  const tags = i.tags === NO_TAGS ? "" : JSON.stringify(i.tags);
  return `${i.appId.length},${i.instanceId.length},${i.instanceIndex.length};${i.appId}${i.instanceId}${i.instanceIndex}${tags === "{}" ? "" : tags}`;
}

function parseDetails(text: string): EndpointDetails {
  const a = text.indexOf(",");
  const b = text.indexOf(",", a + 1);
  const c = text.indexOf(";", b + 1);
  const appEnd = c + 1 + Number(text.slice(0, a));
  const idEnd = appEnd + Number(text.slice(a + 1, b));
  const indexEnd = idEnd + Number(text.slice(b + 1, c));
  return {
    appId: text.slice(c + 1, appEnd),
    instanceId: text.slice(appEnd, idEnd),
    instanceIndex: text.slice(idEnd, indexEnd),
    tags: indexEnd < text.length ? (JSON.parse(text.slice(indexEnd)) as Record<string, string>) : NO_TAGS,
  };
}
