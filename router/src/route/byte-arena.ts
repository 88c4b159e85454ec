// Strings the route table keeps for every route and endpoint (route keys, host:port, app and
// instance ids, and the endpoint rows of pools with several), held as UTF-8 in one large buffer
// instead of as JS strings: a million routes are then one buffer outside the JS heap, not millions of
// heap objects that every garbage collection has to walk.
//
// Each string lives in a slot that starts with its byte length (u32); slots are sized in steps of
// 16 B up to 512 B (route keys, host:port and ids all fit there, wasting 8 B on average) and in powers
// of two beyond, up to 4 MiB; freed slots go to a free list per size and are reused, so churn never
// grows the arena and nothing ever has to be compacted. The buffer is a growable SharedArrayBuffer:
// the worker threads read it (ArenaView) while the writer stores, and it grows in place, 4 MiB at a
// time, so growth never copies and never stalls the event loop. A string is addressed by its slot's
// offset.

import { growableSharedBuffer } from "./columns.ts";

const LENGTH_BYTES = 4;
const FINE_STEP = 16;
const FINE_LIMIT = 512;
const FINE_CLASSES = FINE_LIMIT / FINE_STEP;
const FIRST_COARSE_SHIFT = 10;
const LARGEST_SHIFT = 22;
/** the buffer grows by at least this much at a time */
const GROWTH_BYTES = 1 << LARGEST_SHIFT;
const CLASSES = FINE_CLASSES + LARGEST_SHIFT - FIRST_COARSE_SHIFT + 1;
/** the longest string a slot holds */
export const MAX_STRING_BYTES = (1 << LARGEST_SHIFT) - LENGTH_BYTES;
/** offsets are int32s: the buffer stops short of 2 GiB (address space until used) */
const MAX_ARENA_BYTES = 2 ** 31 - GROWTH_BYTES;
const decoder = new TextDecoder();

/** Reads an arena's strings (and row lists) from any thread: the writer stores, readers read. */
export class ArenaView {
  /** the buffer (a growable SharedArrayBuffer), as long as it was at the last refresh() */
  bytes: Uint8Array;
  /** the same buffer as int32s (slots are 16-byte aligned, so a row list's ints are aligned) */
  ints: Int32Array;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.ints = new Int32Array(0);
    this.refresh();
  }

  /** Views of the whole buffer as it is now (the writer may have grown it). */
  refresh(): void {
    const buffer = this.bytes.buffer;
    this.bytes = new Uint8Array(buffer, 0, buffer.byteLength);
    this.ints = new Int32Array(buffer, 0, buffer.byteLength >>> 2);
  }

  lengthAt(off: number): number {
    const b = this.bytes;
    return b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24);
  }

  read(off: number): string {
    const start = off + LENGTH_BYTES;
    return decoder.decode(this.bytes.subarray(start, start + this.lengthAt(off)));
  }

  /** The i-th int of a row list stored with ByteArena.storeInts. */
  intAt(off: number, i: number): number {
    return this.ints[(off >>> 2) + 1 + i]!;
  }
}

export class ByteArena extends ArenaView {
  /** where the next string to store is encoded first (see encode) */
  scratch = new Uint8Array(256);
  /** the next free byte */
  private top = 0;
  private readonly free: number[][] = Array.from({ length: CLASSES }, () => []);
  private readonly encoder = new TextEncoder();
  private used = 0;

  constructor(
    initialBytes = 1 << 16,
    /** told after the buffer grew (the registry bumps TableControl.layout, so readers refresh their views) */
    private readonly onGrow: () => void = () => {},
  ) {
    super(new Uint8Array(growableSharedBuffer(Math.min(roundUp(initialBytes), GROWTH_BYTES), MAX_ARENA_BYTES)));
  }

  /** Encodes s as UTF-8 into `scratch` and returns its byte length. */
  encode(s: string): number {
    const n = s.length;
    if (n * 3 > this.scratch.length) this.scratch = new Uint8Array(Math.max(n * 3, this.scratch.length * 2));
    // Route keys, addresses and ids are ASCII: copied here in JS, several times faster than a call
    // into TextEncoder for strings this short; anything else goes through TextEncoder.
    const out = this.scratch;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) return this.encoder.encodeInto(s, out).written;
      out[i] = c;
    }
    return n;
  }

  /** Stores the first n bytes of `scratch`; returns the new string's offset. */
  storeScratch(n: number): number {
    if (n > MAX_STRING_BYTES) throw new RangeError(`a string of ${n} bytes is too long for the route table (at most ${MAX_STRING_BYTES})`);
    const off = this.slot(n);
    this.bytes.set(this.scratch.subarray(0, n), off + LENGTH_BYTES);
    return off;
  }

  /** Stores a list of int32s (a pool's endpoint rows); read them back with intAt. */
  storeInts(values: readonly number[]): number {
    const off = this.slot(values.length * 4);
    const ints = this.ints;
    const at = (off >>> 2) + 1;
    for (let i = 0; i < values.length; i++) ints[at + i] = values[i]!;
    return off;
  }

  /** A slot for n bytes with its length written: its offset. */
  private slot(n: number): number {
    const cls = sizeClass(n);
    const off = this.free[cls]!.pop() ?? this.bump(classBytes(cls));
    const b = this.bytes;
    b[off] = n & 255;
    b[off + 1] = (n >>> 8) & 255;
    b[off + 2] = (n >>> 16) & 255;
    b[off + 3] = n >>> 24;
    this.used += classBytes(cls);
    return off;
  }

  store(s: string): number {
    return this.storeScratch(this.encode(s));
  }

  release(off: number): void {
    const cls = sizeClass(this.lengthAt(off));
    this.free[cls]!.push(off);
    this.used -= classBytes(cls);
  }

  /** Whether the string at off is the first n bytes of `scratch`. */
  equalsScratch(off: number, n: number): boolean {
    if (this.lengthAt(off) !== n) return false;
    const b = this.bytes;
    const s = this.scratch;
    const start = off + LENGTH_BYTES;
    for (let i = 0; i < n; i++) if (b[start + i] !== s[i]) return false;
    return true;
  }

  /** FNV-1a of the string at off. */
  hashAt(off: number): number {
    return fnv1a(this.bytes, off + LENGTH_BYTES, this.lengthAt(off));
  }

  /** FNV-1a of the first n bytes of `scratch`. */
  hashScratch(n: number): number {
    return fnv1a(this.scratch, 0, n);
  }

  /** bytes in live slots, and in the buffer */
  get stats(): { usedBytes: number; bufferBytes: number } {
    return { usedBytes: this.used, bufferBytes: this.bytes.length };
  }

  private bump(size: number): number {
    const buffer = this.bytes.buffer as SharedArrayBuffer & { grow(n: number): void };
    if (this.top + size > buffer.byteLength) {
      // Small tables grow by doubling, large ones 4 MiB at a time: in place, nothing copied.
      const want = Math.min(MAX_ARENA_BYTES, Math.max(this.top + size, Math.min(buffer.byteLength * 2, buffer.byteLength + GROWTH_BYTES)));
      if (this.top + size > want) throw new RangeError(`the route table's strings are full (${MAX_ARENA_BYTES} bytes)`);
      buffer.grow(roundUp(want));
      this.refresh();
      this.onGrow();
    }
    const off = this.top;
    this.top += size;
    return off;
  }
}

/** a buffer size: whole 64 KiB steps */
function roundUp(n: number): number {
  return Math.ceil(n / 65536) * 65536;
}

/** the slot size class of a string of n bytes */
function sizeClass(n: number): number {
  const need = n + LENGTH_BYTES;
  if (need <= FINE_LIMIT) return Math.ceil(need / FINE_STEP) - 1;
  return FINE_CLASSES + 32 - Math.clz32(need - 1) - FIRST_COARSE_SHIFT;
}

function classBytes(cls: number): number {
  return cls < FINE_CLASSES ? (cls + 1) * FINE_STEP : 1 << (cls - FINE_CLASSES + FIRST_COARSE_SHIFT);
}

function fnv1a(b: Uint8Array, start: number, n: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < start + n; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h | 0;
}
