// Every endpoint (host:port) of the route table as one row of typed-array columns, its strings in the
// table's ByteArena, found by host:port through a KeyIndex. A million endpoints are then a few dozen
// bytes each outside the JS heap, where before each was an object with five strings for the garbage
// collector to walk on every pause. The writer (the thread that applies route changes) owns this
// store; the columns the proxy reads are shared with the worker threads (EndpointColumns), which
// make Endpoint views of the rows they pick (RouteTableReader).

import type { ByteArena } from "./byte-arena.ts";
import { sharedColumn, sizeColumn, sizeColumns } from "./columns.ts";
import { endpointKey, NO_TAGS, type EndpointDetails, type EndpointInfo } from "./endpoint.ts";
import { KeyIndex } from "./key-index.ts";

/** The columns readers use, on growable SharedArrayBuffers (they follow the store's growth). */
export interface EndpointColumns {
  port: Int32Array;
  /** ms epoch until which the endpoint is skipped after a failure (any worker sets it) */
  failedUntil: Float64Array;
  /** arena offsets: `host:port`, and the registration's strings (detailsText) */
  keyOff: Int32Array;
  detailsOff: Int32Array;
  /** bumped when the row is freed: a view made for an earlier endpoint of the row no longer matches */
  gen: Int32Array;
  /** bumped when a re-registration changes the row's strings: views refresh theirs */
  detailsGen: Int32Array;
  /** requests (and WebSocket tunnels) in flight to the endpoint, one column per worker slot: each
   * worker counts its own without contention, least-connection and the cap add them up, and a
   * worker that died has its column zeroed before its replacement takes the slot */
  inFlight: Int32Array[];
}

/** free rows tried before a new row is made: a row is reused only once nothing is in flight on it */
const REUSE_TRIES = 4;

export class EndpointStore {
  private capacity: number;
  port = sharedColumn(Int32Array);
  failedUntil = sharedColumn(Float64Array);
  private keyOff = sharedColumn(Int32Array);
  private detailsOff = sharedColumn(Int32Array);
  private gen = sharedColumn(Int32Array);
  private detailsGen = sharedColumn(Int32Array);
  readonly inFlight: Int32Array[];
  /** how many route pools hold the endpoint (the registry drops it at 0): the writer's alone */
  routeCount = new Int32Array(0);
  /** the stale threshold its last registration gave: the writer's alone */
  staleMs = new Float64Array(0);
  private rows = 0;
  /** freed rows, oldest first (reused in order, so a row rests before it holds another endpoint) */
  private freeRows: number[] = [];
  private freeHead = 0;
  private readonly index: KeyIndex;

  constructor(
    private readonly arena: ByteArena,
    /** rows to make room for up front (RegistryOptions.reserveRoutes) */
    reserve = 16,
    /** in-flight columns: one per worker thread that proxies */
    workerSlots = 1,
    /** told after the columns grew (the registry bumps TableControl.layout, so readers refresh their views) */
    private readonly onGrow: () => void = () => {},
  ) {
    this.capacity = Math.max(16, reserve);
    this.inFlight = Array.from({ length: Math.max(1, workerSlots) }, () => sharedColumn(Int32Array));
    this.size_(this.capacity);
    this.index = new KeyIndex(arena, (row) => this.keyOff[row]!, this.capacity);
  }

  get size(): number {
    return this.index.size;
  }

  /** the columns to hand the workers */
  get columns(): EndpointColumns {
    const { port, failedUntil, keyOff, detailsOff, gen, detailsGen, inFlight } = this;
    return { port, failedUntil, keyOff, detailsOff, gen, detailsGen, inFlight };
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
    const row = this.reusableRow() ?? this.newRow();
    this.port[row] = info.port;
    this.failedUntil[row] = 0;
    this.routeCount[row] = 0;
    this.staleMs[row] = info.staleThresholdMs;
    this.keyOff[row] = key;
    this.detailsOff[row] = details;
    this.index.insert(row);
    return row;
  }

  /** Applies a re-registration of the same host:port in place. True if the strings changed (readers must see it). */
  update(row: number, info: EndpointInfo): boolean {
    this.staleMs[row] = info.staleThresholdMs;
    const n = this.arena.encode(detailsText(info));
    if (this.arena.equalsScratch(this.detailsOff[row]!, n)) return false;
    const stored = this.arena.storeScratch(n); // throws, changing nothing, when too long
    this.arena.release(this.detailsOff[row]!);
    this.detailsOff[row] = stored;
    this.detailsGen[row] = (this.detailsGen[row]! + 1) | 0;
    return true;
  }

  /** Whether a re-registration would change the row's strings (a change readers must not see half of). */
  wouldChange(row: number, info: EndpointInfo): boolean {
    return !this.arena.equalsScratch(this.detailsOff[row]!, this.arena.encode(detailsText(info)));
  }

  /** Takes the endpoint out. Views of it (in any thread) no longer match the row. */
  remove(row: number): void {
    this.index.delete(row);
    this.arena.release(this.keyOff[row]!);
    this.arena.release(this.detailsOff[row]!);
    this.gen[row] = (this.gen[row]! + 1) | 0;
    this.freeRows.push(row);
  }

  keyOf(row: number): string {
    return this.arena.read(this.keyOff[row]!);
  }

  details(row: number): EndpointDetails {
    return parseDetails(this.arena.read(this.detailsOff[row]!));
  }

  /** Requests in flight on the row, over every worker. */
  inFlightOf(row: number): number {
    let n = 0;
    for (const column of this.inFlight) n += column[row]!;
    return n;
  }

  /**
   * A freed row to hold a new endpoint, if one has nothing in flight: a request that was under way on
   * the row's last endpoint counts itself off that row when it ends, which must not look like load on
   * the next endpoint (least-connection, the cap).
   */
  private reusableRow(): number | undefined {
    for (let tries = 0; tries < REUSE_TRIES && this.freeHead < this.freeRows.length; tries++) {
      const row = this.freeRows[this.freeHead++]!;
      if (this.inFlightOf(row) === 0) {
        this.compactFree();
        return row;
      }
      this.freeRows.push(row); // still busy: to the back of the queue
    }
    this.compactFree();
    return undefined;
  }

  private compactFree(): void {
    if (this.freeHead > 1024 && this.freeHead * 2 > this.freeRows.length) {
      this.freeRows = this.freeRows.slice(this.freeHead);
      this.freeHead = 0;
    }
  }

  private newRow(): number {
    const row = this.rows++;
    if (row === this.capacity) {
      this.capacity *= 2;
      this.size_(this.capacity);
    }
    return row;
  }

  private size_(capacity: number): void {
    sizeColumns(this, COLUMNS, capacity);
    this.inFlight.forEach((column, i) => (this.inFlight[i] = sizeColumn(column, capacity)));
    this.onGrow();
  }
}

const COLUMNS = ["port", "failedUntil", "keyOff", "detailsOff", "gen", "detailsGen", "routeCount", "staleMs"] as const;

/**
 * The strings of a registration as one: `<len>,<len>,<len>;` then appId, instanceId, instanceIndex
 * back to back (lengths in UTF-16 units, so any value survives), then the tags' JSON if there are
 * tags. Cheaper to make than JSON, and a re-registration (every 20 s per instance) compares it as is.
 */
function detailsText(i: EndpointInfo): string {
  const tags = i.tags === NO_TAGS ? "" : JSON.stringify(i.tags);
  return `${i.appId.length},${i.instanceId.length},${i.instanceIndex.length};${i.appId}${i.instanceId}${i.instanceIndex}${tags === "{}" ? "" : tags}`;
}

export function parseDetails(text: string): EndpointDetails {
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
