// The production route matcher: wasm/dist/matcher.wasm (Rust, see wasm/README.md) behind the
// RouteMatcher interface. Only numbers cross the boundary: strings are copied as bytes into a buffer
// in linear memory, lengths go in, a route id comes out. Works under Node 20 and Bun. Answers the
// host alone decides are cached per raw Host (never stale: see the cache below and wasm/README.md).
//
// One table for every thread: the module's memory is a shared WebAssembly.Memory. The WasmMatcher
// (the writer, one per table) applies every change; a WasmMatcherReader in each worker thread runs
// its own instance of the module over the same memory (wasm/src/ffi.rs: its own stack and scratch,
// no data segments applied) and only looks up. A reader's lookup may overlap a change: callers
// bracket it with the table's sequence counter (router/src/route/table-seqlock.ts) and retry.

import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { RouteMatcher } from "./route-matcher.ts";
import { SHARED_MEMORY_MAX_PAGES, shareMatcherBinary } from "./wasm-binary.ts";

/** Everything matcher.wasm exports, typed in one place (see wasm/src/ffi.rs for the contracts). */
export interface MatcherExports {
  readonly memory: WebAssembly.Memory;
  matcher_input(): number;
  matcher_capacity(region: 0 | 1 | 2): number;
  matcher_seed(low: number, high: number): void;
  /** 0 refused, 1 added, 2 replaced. */
  matcher_insert(uriLength: number, truncated: 0 | 1, id: number): number;
  /** 1 removed, 0 absent or refused. */
  matcher_remove(uriLength: number, truncated: 0 | 1): number;
  matcher_lookup(hostLength: number, pathLength: number): number;
  /** The host half of a lookup: an id, -1, or -2 (NEEDS_PATH: write the target, call lookup_path). */
  matcher_lookup_host(hostLength: number): number;
  matcher_lookup_path(pathLength: number): number;
  matcher_last_match_length(): number;
  matcher_clear(): void;
  matcher_count(): number;
  matcher_memory_bytes(): number;
  matcher_reserve(routes: number, keyBytes: number): void;
  matcher_alloc(length: number): number;
  matcher_free(pointer: number, length: number): void;
  matcher_insert_many(pointer: number, length: number): number;
  matcher_reader_new(): number;
  matcher_reader_input(reader: number): number;
  matcher_reader_lookup_host(reader: number, hostLength: number): number;
  matcher_reader_lookup_path(reader: number, pathLength: number): number;
  matcher_reader_last_match_length(reader: number): number;
  /** the instance's shadow-stack pointer (each reader instance gets a region of its own) */
  readonly __stack_pointer: WebAssembly.Global;
}

/**
 * What a reader thread needs to look up in a writer's table; every field can be posted to a
 * worker (a shared memory, a compiled module, a SharedArrayBuffer view, numbers).
 */
export interface MatcherShare {
  memory: WebAssembly.Memory;
  /** matcher.wasm with its memory import shared and its data section dropped */
  readerModule: WebAssembly.Module;
  /** [0]: the table's generation, bumped by every change (answer caches compare it) */
  generation: Int32Array;
  /** the reader's input buffer and scratch (matcher_reader_new) */
  reader: number;
  /** the top of the reader's own shadow stack (stacks grow down) */
  stackTop: number;
}

export const MATCHER_WASM_RELATIVE_PATH = join("wasm", "dist", "matcher.wasm");

export class MatcherWasmMissingError extends Error {
  override readonly name = "MatcherWasmMissingError";
  constructor(searchedFrom: string, options?: { cause?: unknown }) {
    super(
      `the route matcher ${MATCHER_WASM_RELATIVE_PATH} was not found above ${searchedFrom}: ` +
        "run `bash wasm/build.sh` (the project's set-up does), or set SKIFF_MATCHER_WASM to its path",
      options,
    );
  }
}

/** Strings up to this many UTF-16 units are copied by a byte loop; longer ones by encodeInto. */
const BYTE_LOOP_LIMIT = 128;
const BULK_CHUNK_BYTES = 1 << 20;
/** matcher_lookup_host's answer when the target decides (wasm/src/matcher.rs NEEDS_PATH). */
const NEEDS_PATH = -2;
/**
 * The answer cache: the last Hosts whose answer the host alone decided, in 2,048 sets of 2 slots
 * (2-way, so two hot Hosts hashing to one set do not evict each other), the set chosen by the top
 * bits of a hash of the raw Host. A slot is valid only while its generation is the table's: every
 * insert, remove or clear that changes the table bumps the generation, so a cached answer is never
 * stale.
 */
const CACHE_SET_BITS = 11;
const CACHE_SHIFT = 32 - CACHE_SET_BITS;
const encoder = new TextEncoder();
/** matcher_capacity(0) and (1): fixed by wasm/src/ffi.rs (the writer checks them), known to readers */
const HOST_CAPACITY = 1024;
const PATH_CAPACITY = 8192;
/** a reader's shadow stack: a lookup's frames take a few KiB at most */
const READER_STACK_BYTES = 64 * 1024;

/**
 * The matcher.wasm to load: `SKIFF_MATCHER_WASM`, else the first `wasm/dist/matcher.wasm` found
 * walking up from `startDir` (this module's directory: router/src/matcher from source, router/dist
 * from the bundle; both reach the repository root).
 */
export function findMatcherWasm(startDir: string = dirname(fileURLToPath(import.meta.url))): string {
  const fromEnv = process.env.SKIFF_MATCHER_WASM;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new MatcherWasmMissingError(`SKIFF_MATCHER_WASM=${fromEnv}`);
    return resolve(fromEnv);
  }
  let dir = resolve(startDir);
  for (;;) {
    const candidate = join(dir, MATCHER_WASM_RELATIVE_PATH);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new MatcherWasmMissingError(startDir);
    dir = parent;
  }
}

interface CompiledMatcher {
  writer: WebAssembly.Module;
  reader: WebAssembly.Module;
  minPages: number;
}

const modules = new Map<string, CompiledMatcher>();

function compile(bytes: Uint8Array): CompiledMatcher {
  const writer = shareMatcherBinary(bytes, false);
  const reader = shareMatcherBinary(bytes, true);
  return { writer: new WebAssembly.Module(writer.bytes), reader: new WebAssembly.Module(reader.bytes), minPages: writer.minPages };
}

function instantiate(compiled: CompiledMatcher): WasmMatcher {
  const memory = new WebAssembly.Memory({ initial: compiled.minPages, maximum: SHARED_MEMORY_MAX_PAGES, shared: true });
  const instance = new WebAssembly.Instance(compiled.writer, { env: { memory } });
  return new WasmMatcher(instance.exports as unknown as MatcherExports, memory, compiled.reader);
}

/**
 * A matcher whose table only this thread can read: the alternative to sharing one table that issue 16
 * measured (bench/router/matcher-share.ts). Not what the router uses.
 */
export function loadPrivateWasmMatcherSync(wasmPath: string = findMatcherWasm()): WasmMatcher {
  const bytes = shareMatcherBinary(readWasm(wasmPath), false, false);
  const memory = new WebAssembly.Memory({ initial: bytes.minPages, maximum: SHARED_MEMORY_MAX_PAGES });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes.bytes), { env: { memory } });
  return new WasmMatcher(instance.exports as unknown as MatcherExports, memory, new WebAssembly.Module(shareMatcherBinary(readWasm(wasmPath), true, false).bytes));
}

/** Loads a matcher synchronously (compiling the module once per path per process). */
export function loadWasmMatcherSync(wasmPath: string = findMatcherWasm()): WasmMatcher {
  let compiled = modules.get(wasmPath);
  if (compiled === undefined) {
    compiled = compile(readWasm(wasmPath));
    modules.set(wasmPath, compiled);
  }
  return instantiate(compiled);
}

export async function loadWasmMatcher(wasmPath?: string): Promise<WasmMatcher> {
  const path = wasmPath ?? findMatcherWasm();
  let compiled = modules.get(path);
  if (compiled === undefined) {
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = await readFile(path);
    } catch (cause) {
      throw new MatcherWasmMissingError(path, { cause });
    }
    compiled = compile(bytes);
    modules.set(path, compiled);
  }
  return instantiate(compiled);
}

function readWasm(path: string): Uint8Array<ArrayBuffer> {
  try {
    return readFileSync(path);
  } catch (cause) {
    throw new MatcherWasmMissingError(path, { cause });
  }
}

/** Copies an ASCII string's bytes to `bytes[at..]`: its length, or -1 (bytes undefined) if not ASCII. */
function writeAscii(bytes: Uint8Array, at: number, s: string): number {
  const length = s.length;
  for (let i = 0; i < length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return -1;
    bytes[at + i] = c;
  }
  return length;
}

/**
 * Lookups with the answer cache, over an input buffer in linear memory: what the writer and the
 * readers share. Subclasses say which exports answer (the writer's own, or a reader's).
 */
abstract class CachedLookups {
  protected readonly memory: WebAssembly.Memory;
  /** the input buffer's address, and it and the path region as indices into `words` */
  protected readonly input: number;
  private readonly inputWord: number;
  private readonly pathWord: number;
  private readonly hostCapacity: number;
  private readonly pathCapacity: number;
  // Views over linear memory. A shared memory's buffer is never detached: growth gives a longer
  // one, and views are re-made when a region they must reach lies beyond them.
  protected bytes!: Uint8Array;
  private words!: Uint32Array;
  private pathView!: Uint8Array;
  /** Per slot (set * 2 + way): the Host string. */
  private readonly cacheHosts: string[] = new Array<string>(2 << CACHE_SET_BITS).fill("");
  /** Per slot, 4 words: [host hash, generation (-1: empty), id, unused]; a set's two slots share a cache line. */
  private readonly cacheMeta = new Int32Array(8 << CACHE_SET_BITS).fill(-1);
  /** [0]: the table's generation, bumped by the writer on every change (shared with the readers) */
  protected readonly generation: Int32Array;
  /** The answer-cache hash of the Host `writeHost` copied last. */
  private hostHash = 0;
  /** The last successful lookup was answered by the cache (so it matched no path: length 0). */
  protected lastMatchCached = false;

  constructor(memory: WebAssembly.Memory, input: number, hostCapacity: number, pathCapacity: number, generation: Int32Array) {
    this.memory = memory;
    this.input = input;
    this.hostCapacity = hostCapacity;
    this.pathCapacity = pathCapacity;
    if (input % 4 !== 0 || hostCapacity % 4 !== 0) {
      throw new Error(`matcher.wasm's input buffer (at ${input}, host region ${hostCapacity} bytes) is not 4-byte aligned: rebuild it with \`bash wasm/build.sh\``);
    }
    this.inputWord = input >>> 2;
    this.pathWord = (input + hostCapacity) >>> 2;
    this.generation = generation;
    this.refreshViews();
  }

  /** the host half of a lookup (an id, -1, or NEEDS_PATH) for the Host in the input buffer */
  protected abstract lookupHost(hostLength: number): number;
  /** the path half, after NEEDS_PATH */
  protected abstract lookupPath(pathLength: number): number;

  lookup(host: string, path: string): number {
    if (!this.writeHost(host, true)) return -1;
    const hostLength = host.length;
    const hash = this.hostHash;
    // The stored hash and generation sit in one cache line and reject almost every wrong slot
    // before the string compare, which would read the cached string (likely out of cache).
    const set = hash >>> CACHE_SHIFT;
    const meta = this.cacheMeta;
    const hosts = this.cacheHosts;
    const generation = this.generation[0]!;
    const slot = set << 3;
    if (meta[slot] === hash && meta[slot + 1] === generation && hosts[set << 1] === host) {
      const cached = meta[slot + 2]!;
      if (cached >= 0) this.lastMatchCached = true;
      return cached;
    }
    if (meta[slot + 4] === hash && meta[slot + 5] === generation && hosts[(set << 1) | 1] === host) {
      const cached = meta[slot + 6]!;
      if (cached >= 0) this.lastMatchCached = true;
      return cached;
    }
    // Most hosts have no path routes: the host alone decides, and the target is never copied.
    const decided = this.lookupHost(hostLength);
    if (decided !== NEEDS_PATH) {
      // The newest entry goes first, the set's other one second (the older second is dropped).
      // Stores references to strings and numbers: no allocation. An answer read across a change
      // is cached under the generation before it, which the change has since left behind.
      hosts[(set << 1) | 1] = hosts[set << 1]!;
      meta[slot + 4] = meta[slot]!;
      meta[slot + 5] = meta[slot + 1]!;
      meta[slot + 6] = meta[slot + 2]!;
      hosts[set << 1] = host;
      meta[slot] = hash;
      meta[slot + 1] = generation;
      meta[slot + 2] = decided;
      if (decided >= 0) this.lastMatchCached = false;
      return decided;
    }
    const id = this.lookupPath(this.writePath(path));
    if (id >= 0) this.lastMatchCached = false;
    return id;
  }

  /**
   * `lookup` without the answer cache: the copy into linear memory and the crossing alone, for
   * measuring them (bench/matcher) and for callers whose Hosts never repeat. Same answers.
   */
  lookupUncached(host: string, path: string): number {
    if (!this.writeHost(host, false)) return -1;
    const decided = this.lookupHost(host.length);
    const id = decided !== NEEDS_PATH ? decided : this.lookupPath(this.writePath(path));
    if (id >= 0) this.lastMatchCached = false;
    return id;
  }

  /**
   * Copies the Host into the host region, and when `hashing` hashes it for the answer cache. False for
   * a Host no route can match: longer than the region, or not ASCII; wasm refuses the rest.
   */
  private writeHost(host: string, hashing: boolean): boolean {
    if (this.words.length === 0) this.refreshViews(); // a private memory's buffer is detached when it grows
    if (host.length > this.hostCapacity) return false;
    return this.copyAscii(host, this.inputWord, hashing);
  }

  /** Copies a target into the path region: its byte length (cut at the region's end). */
  private writePath(path: string): number {
    // any non-ASCII character sends the target to encodeInto
    if (path.length <= BYTE_LOOP_LIMIT && this.copyAscii(path, this.pathWord, false)) return path.length;
    // A cut target is fine: registered paths are at most 4096 bytes, the region holds 8192.
    return encoder.encodeInto(path, this.pathView).written;
  }

  /**
   * One pass over `s` into linear memory from word `word` on, four characters to a 32-bit store (under
   * Node 20 encodeInto is a C++ call and no faster for short strings); when `hashing`, the same words
   * are hashed into `hostHash` (a constant at each call site, so each inlined copy keeps only its own
   * work). False when `s` is not ASCII (the OR of all its characters reaches 0x80).
   */
  private copyAscii(s: string, word: number, hashing: boolean): boolean {
    const words = this.words;
    const length = s.length;
    let hash = length;
    let any = 0;
    let at = word;
    let i = 0;
    for (const fours = length - 3; i < fours; i += 4) {
      const c0 = s.charCodeAt(i);
      const c1 = s.charCodeAt(i + 1);
      const c2 = s.charCodeAt(i + 2);
      const c3 = s.charCodeAt(i + 3);
      any |= c0 | c1 | c2 | c3;
      const packed = c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
      words[at++] = packed;
      if (hashing) hash = Math.imul(((hash << 5) | (hash >>> 27)) ^ packed, 0x9e3779b1);
    }
    if (i < length) {
      const bytes = this.bytes;
      const start = word << 2;
      for (; i < length; i++) {
        const c = s.charCodeAt(i);
        any |= c;
        bytes[start + i] = c;
        if (hashing) hash = Math.imul(hash ^ c, 0x9e3779b1);
      }
    }
    if (hashing) this.hostHash = hash;
    return any <= 0x7f;
  }

  /** Re-makes the views over the memory as it is now (after the table grew it). */
  protected refreshViews(): Uint8Array {
    const buffer = this.memory.buffer;
    this.bytes = new Uint8Array(buffer);
    this.words = new Uint32Array(buffer);
    this.pathView = new Uint8Array(buffer, this.input + this.hostCapacity, this.pathCapacity);
    return this.bytes;
  }
}

/** The table's writer: one wasm instance that applies every change (and may look up too). */
export class WasmMatcher extends CachedLookups implements RouteMatcher {
  private readonly wasm: MatcherExports;
  private readonly uriCapacity: number;
  private uriView!: Uint8Array;
  // The hot exports, read once (saves a property load on the exports object per call).
  private readonly hostExport: (hostLength: number) => number;
  private readonly pathExport: (pathLength: number) => number;

  constructor(
    wasm: MatcherExports,
    memory: WebAssembly.Memory,
    /** the module readers instantiate (matcher.wasm without its data section) */
    private readonly readerModule: WebAssembly.Module,
  ) {
    // The generation is shared with the readers (their answer caches compare it).
    super(memory, wasm.matcher_input(), wasm.matcher_capacity(0), wasm.matcher_capacity(1), new Int32Array(new SharedArrayBuffer(4)));
    this.wasm = wasm;
    this.uriCapacity = wasm.matcher_capacity(2);
    if (wasm.matcher_capacity(0) !== HOST_CAPACITY || wasm.matcher_capacity(1) !== PATH_CAPACITY) throw new Error("matcher.wasm's input regions differ from what its readers assume: rebuild it with `bash wasm/build.sh`");
    this.hostExport = wasm.matcher_lookup_host;
    this.pathExport = wasm.matcher_lookup_path;
    const seed = crypto.getRandomValues(new Uint32Array(2));
    wasm.matcher_seed(seed[0]!, seed[1]!);
    this.refreshViews();
  }

  protected lookupHost(hostLength: number): number {
    return this.hostExport(hostLength);
  }

  protected lookupPath(pathLength: number): number {
    return this.pathExport(pathLength);
  }

  get size(): number {
    return this.wasm.matcher_count();
  }

  /**
   * Bytes of the target, UTF-8 encoded, the last successful lookup matched (0 for a route without
   * a path; the same unit as ReferenceMatcher's). A lookup answered from the answer cache matched
   * no path (only answers the host alone decides are cached), so it reads 0 without crossing.
   */
  get lastMatchedLength(): number {
    return this.lastMatchCached ? 0 : this.wasm.matcher_last_match_length();
  }

  /** Bytes held by the table's vectors (what the routes cost, allocator slack excluded). */
  get tableBytes(): number {
    return this.wasm.matcher_memory_bytes();
  }

  /** Size of the instance's linear memory (never shrinks: wasm memory only grows). */
  get linearMemoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  /**
   * A reader for another thread: its input buffer, scratch and shadow stack, allocated here (the
   * writer is the memory's only allocator). Post it to the thread and `attachReader` it there.
   * Never freed: a router makes one per worker it starts.
   */
  shareWithReader(): MatcherShare {
    const reader = this.wasm.matcher_reader_new();
    const stack = this.wasm.matcher_alloc(READER_STACK_BYTES);
    this.refreshViews();
    return { memory: this.memory, readerModule: this.readerModule, generation: this.generation, reader, stackTop: (stack + READER_STACK_BYTES) & ~15 };
  }

  insert(uri: string, id: number): boolean {
    if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) return false;
    const length = this.writeUri(uri);
    const result = length >= 0 ? this.wasm.matcher_insert(length, 0, id) : this.wasm.matcher_insert(-length - 1, 1, id);
    this.invalidateCache(); // even when refused: whatever touched the table moves the generation on
    return result !== 0;
  }

  remove(uri: string): boolean {
    const length = this.writeUri(uri);
    const result = length >= 0 ? this.wasm.matcher_remove(length, 0) : this.wasm.matcher_remove(-length - 1, 1);
    this.invalidateCache();
    return result !== 0;
  }

  clear(): void {
    this.wasm.matcher_clear();
    this.invalidateCache();
  }

  /** Voids every cached answer, here and in every reader (the table changed). */
  private invalidateCache(): void {
    // Wraps past 2^31 to negative values: an empty cache slot holds -1, which a generation reaches
    // only after 2^32 changes, and by then every slot has long been overwritten.
    this.generation[0] = (this.generation[0]! + 1) | 0;
  }

  /** Pre-sizes the table for `routes` more keys of `keyBytes` bytes in all. */
  reserve(routes: number, keyBytes: number): void {
    this.wasm.matcher_reserve(routes, keyBytes);
    this.invalidateCache();
    this.refreshViews();
  }

  /**
   * Inserts many routes with few boundary crossings (records batched in linear memory). Returns how
   * many were accepted; entries with a refused key or a bad id are skipped.
   */
  insertMany(entries: Iterable<readonly [uri: string, id: number]>): number {
    if (Array.isArray(entries)) {
      let keyBytes = 0;
      for (const [uri] of entries as readonly (readonly [string, number])[]) keyBytes += uri.length;
      this.reserve(entries.length, keyBytes);
    }
    const chunk = this.wasm.matcher_alloc(BULK_CHUNK_BYTES);
    let bytes = this.refreshViews();
    let used = 0;
    let accepted = 0;
    const flush = (): void => {
      if (used > 0) accepted += this.wasm.matcher_insert_many(chunk, used);
      used = 0;
      this.invalidateCache();
      bytes = this.refreshViews();
    };
    try {
      for (const [uri, id] of entries) {
        if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) continue;
        if (uri.length * 3 + 8 > BULK_CHUNK_BYTES - used) flush();
        if (uri.length * 3 + 8 > BULK_CHUNK_BYTES) {
          if (this.insert(uri, id)) accepted++;
          bytes = this.refreshViews();
          continue;
        }
        const at = chunk + used;
        let written = uri.length <= BYTE_LOOP_LIMIT ? writeAscii(bytes, at + 8, uri) : -1;
        if (written < 0) written = encoder.encodeInto(uri, bytes.subarray(at + 8, chunk + BULK_CHUNK_BYTES)).written;
        bytes[at] = id & 0xff;
        bytes[at + 1] = (id >>> 8) & 0xff;
        bytes[at + 2] = (id >>> 16) & 0xff;
        bytes[at + 3] = id >>> 24;
        bytes[at + 4] = written & 0xff;
        bytes[at + 5] = (written >>> 8) & 0xff;
        bytes[at + 6] = (written >>> 16) & 0xff;
        bytes[at + 7] = written >>> 24;
        used += 8 + written;
      }
      flush();
    } finally {
      this.wasm.matcher_free(chunk, BULK_CHUNK_BYTES);
    }
    return accepted;
  }

  /** Writes a uri into the input buffer: its byte length, or -(length + 1) if it was cut short. */
  private writeUri(uri: string): number {
    let bytes = this.bytes;
    if (bytes.byteLength === 0) bytes = this.refreshViews(); // a private memory's buffer is detached when it grows
    if (uri.length <= BYTE_LOOP_LIMIT) {
      const written = writeAscii(bytes, this.input, uri);
      if (written >= 0) return written;
    }
    const { read, written } = encoder.encodeInto(uri, this.uriView);
    return read < uri.length ? -written - 1 : written;
  }

  protected override refreshViews(): Uint8Array {
    const bytes = super.refreshViews();
    if (this.uriCapacity !== undefined) this.uriView = new Uint8Array(bytes.buffer, this.input, this.uriCapacity);
    return bytes;
  }
}

/**
 * A thread's read-only view of a WasmMatcher's table (the router's workers): its own instance of the
 * module over the writer's shared memory, looking up through its own input buffer and stack. A
 * lookup that overlaps a change may answer anything, or trap on a pointer the writer just moved:
 * `torn` says a trap happened (the stack is reset, the answer is -1), and the caller's sequence
 * counter says whether to trust an answer at all.
 */
export class WasmMatcherReader extends CachedLookups {
  private readonly wasm: MatcherExports;
  private readonly reader: number;
  private readonly stackTop: number;
  /** the last lookup trapped (it read the table mid-change) */
  torn = false;
  /** lookups that trapped, in all */
  traps = 0;

  private constructor(share: MatcherShare, wasm: MatcherExports) {
    super(share.memory, wasm.matcher_reader_input(share.reader), HOST_CAPACITY, PATH_CAPACITY, share.generation);
    this.wasm = wasm;
    this.reader = share.reader;
    this.stackTop = share.stackTop;
  }

  /** Instantiates the reader module over the shared memory, in this thread. */
  static attach(share: MatcherShare): WasmMatcherReader {
    const instance = new WebAssembly.Instance(share.readerModule, { env: { memory: share.memory } });
    const wasm = instance.exports as unknown as MatcherExports;
    wasm.__stack_pointer.value = share.stackTop; // before any call: the writer's stack is the writer's
    return new WasmMatcherReader(share, wasm);
  }

  protected lookupHost(hostLength: number): number {
    this.torn = false;
    try {
      return this.wasm.matcher_reader_lookup_host(this.reader, hostLength);
    } catch (err) {
      return this.trapped(err);
    }
  }

  protected lookupPath(pathLength: number): number {
    try {
      return this.wasm.matcher_reader_lookup_path(this.reader, pathLength);
    } catch (err) {
      return this.trapped(err);
    }
  }

  /** Bytes of the target the last successful lookup matched (see WasmMatcher.lastMatchedLength). */
  get lastMatchedLength(): number {
    return this.lastMatchCached ? 0 : this.wasm.matcher_reader_last_match_length(this.reader);
  }

  private trapped(err: unknown): number {
    if (!(err instanceof WebAssembly.RuntimeError)) throw err;
    // A trap leaves the frames it unwound on the shadow stack: start the next call from the top.
    this.wasm.__stack_pointer.value = this.stackTop;
    this.torn = true;
    this.traps++;
    return -1;
  }
}
