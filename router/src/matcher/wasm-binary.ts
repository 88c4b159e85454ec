// Rewrites matcher.wasm's bytes for sharing one table between threads (see wasm/src/ffi.rs): the
// memory import is marked shared (with a maximum, which shared memories need), and a reader's copy
// has its data section dropped, so instantiating it writes nothing into the writer's memory. wabt
// or binaryen could do the same offline; this is a few dozen lines over the section layout of the
// wasm binary format, so the build needs no other tool and one .wasm serves both roles.

const MEMORY_KIND = 0x02;
const SECTION_IMPORT = 2;
const SECTION_DATA = 11;
const SECTION_DATA_COUNT = 12;
/** limits flags: 0x00 min, 0x01 min+max, 0x03 shared min+max */
const LIMITS_MAX = 0x01;
const LIMITS_SHARED = 0x03;
/** wasm32's whole 4 GiB: a shared memory cannot move, so engines reserve its maximum up front as
 * address space (not RSS), and a table never has to stop growing short of that. */
export const SHARED_MEMORY_MAX_PAGES = 65536;

export class WasmBinaryError extends Error {
  override readonly name = "WasmBinaryError";
}

class Reader {
  at = 0;
  constructor(readonly bytes: Uint8Array) {}
  u8(): number {
    if (this.at >= this.bytes.length) throw new WasmBinaryError("matcher.wasm ends early");
    return this.bytes[this.at++]!;
  }
  leb(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.u8();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
  }
  skip(n: number): void {
    this.at += n;
  }
}

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

export interface SharedMatcherBinary {
  /** the memory import's minimum, in 64 KiB pages: the shared memory must start at least this big */
  minPages: number;
  bytes: Uint8Array<ArrayBuffer>;
}

/**
 * `bytes` with its imported memory marked shared (maximum SHARED_MEMORY_MAX_PAGES), and, when
 * `reader`, without data sections. Throws when the module imports no memory (a matcher.wasm built
 * before wasm/build.sh linked it with --import-memory). `shared` false keeps the memory private (one
 * thread's own table: bench/router/matcher-share.ts measures that alternative against the shared one).
 */
export function shareMatcherBinary(bytes: Uint8Array, reader: boolean, shared = true): SharedMatcherBinary {
  const r = new Reader(bytes);
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) throw new WasmBinaryError("not a wasm module");
  r.at = 8;
  const out: number[] = Array.from(bytes.subarray(0, 8));
  let minPages = -1;
  while (r.at < bytes.length) {
    const id = r.u8();
    const size = r.leb();
    const start = r.at;
    const end = start + size;
    if (reader && (id === SECTION_DATA || id === SECTION_DATA_COUNT)) {
      r.at = end;
      continue;
    }
    if (id !== SECTION_IMPORT) {
      out.push(id, ...leb(size), ...bytes.subarray(start, end));
      r.at = end;
      continue;
    }
    const body: number[] = [];
    const count = r.leb();
    body.push(...leb(count));
    for (let i = 0; i < count; i++) {
      const nameStart = r.at;
      r.skip(r.leb()); // module name
      r.skip(r.leb()); // field name
      const kind = r.u8();
      body.push(...bytes.subarray(nameStart, r.at));
      if (kind !== MEMORY_KIND) {
        const descStart = r.at;
        skipImportDescription(r, kind);
        body.push(...bytes.subarray(descStart, r.at));
        continue;
      }
      const flags = r.u8();
      minPages = r.leb();
      if (flags & 0x01) r.leb(); // the old maximum
      body.push(shared ? LIMITS_SHARED : LIMITS_MAX, ...leb(minPages), ...leb(SHARED_MEMORY_MAX_PAGES));
    }
    if (r.at !== end) throw new WasmBinaryError("matcher.wasm's import section is not what it says");
    out.push(id, ...leb(body.length), ...body);
  }
  if (minPages < 0) throw new WasmBinaryError("matcher.wasm imports no memory: rebuild it with `bash wasm/build.sh` (it links with --import-memory)");
  return { minPages, bytes: new Uint8Array(out) };
}

function skipImportDescription(r: Reader, kind: number): void {
  switch (kind) {
    case 0x00: // function: a type index
      r.leb();
      return;
    case 0x01: // table: element type, limits
      r.u8();
      skipLimits(r);
      return;
    case 0x03: // global: value type, mutability
      r.u8();
      r.u8();
      return;
    default:
      throw new WasmBinaryError(`matcher.wasm imports something of kind ${kind}, which this loader does not know`);
  }
}

function skipLimits(r: Reader): void {
  const flags = r.u8();
  r.leb();
  if (flags & 0x01) r.leb();
}
