// Strings the route table keeps for every route and endpoint (route keys, host:port, app and
// instance ids), held as UTF-8 in one growable buffer instead of as JS strings: a million routes are
// then a few large buffers outside the JS heap, not millions of heap objects that every garbage
// collection has to walk. Each string lives in a slot that starts with its byte length (u32); slots
// are sized in steps of 16 B up to 512 B (route keys, host:port and ids all fit there, wasting 8 B
// on average) and in powers of two beyond, up to 16 MiB; freed slots go to a free list per size and
// are reused, so churn never grows the buffer and nothing ever has to be compacted. A string is
// addressed by its slot's offset.

const LENGTH_BYTES = 4;
const FINE_STEP = 16;
const FINE_LIMIT = 512;
const FINE_CLASSES = FINE_LIMIT / FINE_STEP;
const FIRST_COARSE_SHIFT = 10;
const MAX_SHIFT = 24;
const CLASSES = FINE_CLASSES + MAX_SHIFT - FIRST_COARSE_SHIFT + 1;

export class ByteArena {
  bytes: Uint8Array;
  /** where the next string to store is encoded first (see encode) */
  scratch = new Uint8Array(256);
  private top = 0;
  private readonly free: number[][] = Array.from({ length: CLASSES }, () => []);
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();
  private used = 0;

  constructor(initialBytes = 1 << 16) {
    this.bytes = new Uint8Array(initialBytes);
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
    const cls = sizeClass(n);
    if (cls >= CLASSES) throw new RangeError(`a string of ${n} bytes is too long for the route table`);
    const off = this.free[cls]!.pop() ?? this.bump(classBytes(cls));
    const b = this.bytes;
    b[off] = n & 255;
    b[off + 1] = (n >>> 8) & 255;
    b[off + 2] = (n >>> 16) & 255;
    b[off + 3] = n >>> 24;
    this.bytes.set(this.scratch.subarray(0, n), off + LENGTH_BYTES);
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
    const b = this.bytes;
    return b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24);
  }

  read(off: number): string {
    const start = off + LENGTH_BYTES;
    return this.decoder.decode(this.bytes.subarray(start, start + this.lengthAt(off)));
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

  /** bytes in live slots, and the buffer's size */
  get stats(): { usedBytes: number; bufferBytes: number } {
    return { usedBytes: this.used, bufferBytes: this.bytes.length };
  }

  private bump(size: number): number {
    if (this.top + size > this.bytes.length) {
      let cap = this.bytes.length * 2;
      while (this.top + size > cap) cap *= 2;
      const grown = new Uint8Array(cap);
      grown.set(this.bytes.subarray(0, this.top));
      this.bytes = grown;
    }
    const off = this.top;
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
