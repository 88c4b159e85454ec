// Strings the route table keeps for every route and endpoint (route keys, host:port, app and
// instance ids), held as UTF-8 in a few large buffers instead of as JS strings: a million routes are
// then a few dozen buffers outside the JS heap, not millions of heap objects that every garbage
// collection has to walk.
//
// Each string lives in a slot that starts with its byte length (u32); slots are sized in steps of
// 16 B up to 512 B (route keys, host:port and ids all fit there, wasting 8 B on average) and in powers
// of two beyond, up to 4 MiB; freed slots go to a free list per size and are reused, so churn never
// grows the arena and nothing ever has to be compacted. The buffers are 4 MiB chunks (the first one
// grows to that size from small), so a growing table never copies what it already holds: growth is
// one new chunk, never a stall on the event loop. A string is addressed by its slot's offset
// (chunk × 4 MiB + offset in the chunk), which a slot never straddles.

const LENGTH_BYTES = 4;
const FINE_STEP = 16;
const FINE_LIMIT = 512;
const FINE_CLASSES = FINE_LIMIT / FINE_STEP;
const FIRST_COARSE_SHIFT = 10;
const CHUNK_SHIFT = 22;
const CHUNK_BYTES = 1 << CHUNK_SHIFT;
const CHUNK_MASK = CHUNK_BYTES - 1;
const CLASSES = FINE_CLASSES + CHUNK_SHIFT - FIRST_COARSE_SHIFT + 1;
/** the longest string a slot holds */
export const MAX_STRING_BYTES = CHUNK_BYTES - LENGTH_BYTES;

export class ByteArena {
  private readonly chunks: Uint8Array[];
  /** where the next string to store is encoded first (see encode) */
  scratch = new Uint8Array(256);
  /** the next free byte of the last chunk */
  private top = 0;
  private readonly free: number[][] = Array.from({ length: CLASSES }, () => []);
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();
  private used = 0;

  constructor(initialBytes = 1 << 16) {
    this.chunks = [new Uint8Array(Math.min(initialBytes, CHUNK_BYTES))];
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
    const cls = sizeClass(n);
    const off = this.free[cls]!.pop() ?? this.bump(classBytes(cls));
    const b = this.chunks[off >>> CHUNK_SHIFT]!;
    const at = off & CHUNK_MASK;
    b[at] = n & 255;
    b[at + 1] = (n >>> 8) & 255;
    b[at + 2] = (n >>> 16) & 255;
    b[at + 3] = n >>> 24;
    b.set(this.scratch.subarray(0, n), at + LENGTH_BYTES);
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

  lengthAt(off: number): number {
    const b = this.chunks[off >>> CHUNK_SHIFT]!;
    const at = off & CHUNK_MASK;
    return b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24);
  }

  read(off: number): string {
    const start = (off & CHUNK_MASK) + LENGTH_BYTES;
    return this.decoder.decode(this.chunks[off >>> CHUNK_SHIFT]!.subarray(start, start + this.lengthAt(off)));
  }

  /** Whether the string at off is the first n bytes of `scratch`. */
  equalsScratch(off: number, n: number): boolean {
    if (this.lengthAt(off) !== n) return false;
    const b = this.chunks[off >>> CHUNK_SHIFT]!;
    const s = this.scratch;
    const start = (off & CHUNK_MASK) + LENGTH_BYTES;
    for (let i = 0; i < n; i++) if (b[start + i] !== s[i]) return false;
    return true;
  }

  /** FNV-1a of the string at off. */
  hashAt(off: number): number {
    return fnv1a(this.chunks[off >>> CHUNK_SHIFT]!, (off & CHUNK_MASK) + LENGTH_BYTES, this.lengthAt(off));
  }

  /** FNV-1a of the first n bytes of `scratch`. */
  hashScratch(n: number): number {
    return fnv1a(this.scratch, 0, n);
  }

  /** bytes in live slots, and in the chunks */
  get stats(): { usedBytes: number; bufferBytes: number; chunks: number } {
    return { usedBytes: this.used, bufferBytes: this.chunks.reduce((a, c) => a + c.length, 0), chunks: this.chunks.length };
  }

  private bump(size: number): number {
    let last = this.chunks.length - 1;
    if (this.top + size > this.chunks[last]!.length) {
      if (last === 0 && this.chunks[0]!.length < CHUNK_BYTES) {
        // the first chunk grows (a copy of at most 2 MiB) until it is full-sized
        let cap = this.chunks[0]!.length * 2;
        while (this.top + size > cap && cap < CHUNK_BYTES) cap *= 2;
        const grown = new Uint8Array(Math.min(cap, CHUNK_BYTES));
        grown.set(this.chunks[0]!.subarray(0, this.top));
        this.chunks[0] = grown;
      }
      if (this.top + size > this.chunks[last]!.length) {
        // the rest of this chunk is too small for this slot: it stays unused
        this.chunks.push(new Uint8Array(CHUNK_BYTES));
        last++;
        this.top = 0;
      }
    }
    const off = last * CHUNK_BYTES + this.top;
    this.top += size;
    return off;
  }
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
