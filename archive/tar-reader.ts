// skiff's one tar reader: a pure push parser for ustar, pax and GNU long names, fed decompressed bytes
// a chunk at a time. The agent unpacks packages and droplets through it (agent/tarball.ts) and the
// controller checks uploads with it (controller/src/tar-check.ts); each keeps its own rules on what an
// entry may be. It holds one header block and the (capped) pax/long-name records, never file contents,
// so an archive of any size is read in constant memory. No Node or Bun imports.

/** What made the archive unreadable; each caller words it for its own users. */
export type TarFormatProblem =
  | { code: "corrupt_header"; offset: number }
  | { code: "invalid_size"; offset: number }
  | { code: "meta_too_large"; type: string; size: number; limit: number }
  | { code: "global_override"; key: string }
  | { code: "too_many_entries"; limit: number }
  | { code: "truncated" };

export class TarFormatError extends Error {
  override name = "TarFormatError";
  constructor(readonly problem: TarFormatProblem) {
    super(describe(problem));
  }
}

function describe(p: TarFormatProblem): string {
  switch (p.code) {
    case "corrupt_header":
      return `corrupt tar header at byte ${p.offset}`;
    case "invalid_size":
      return `tar entry with an invalid size at byte ${p.offset}`;
    case "meta_too_large":
      return `a ${p.type} header record of ${p.size} bytes is larger than the ${p.limit} allowed`;
    case "global_override":
      return `a global pax header sets "${p.key}"`;
    case "too_many_entries":
      return `more than ${p.limit} entries`;
    case "truncated":
      return "the archive is truncated";
  }
}

export interface TarEntry {
  name: string;
  /** "0"/"7" file, "1" hard link, "2" symlink, "5" directory, ...: the caller decides what it accepts */
  type: string;
  mode: number;
  /** data bytes that follow the header (a pax `size` wins over the header's, as tar reads it) */
  size: number;
  linkname: string;
}

/** Receives each entry's header, then its data in pieces, then its end (also for an entry of 0 bytes). */
export interface TarSink {
  entry(entry: TarEntry): void;
  data?(bytes: Uint8Array): void;
  end?(): void;
}

export interface TarReaderOptions {
  /** entries (not counting pax and long-name records) beyond which the archive is refused */
  maxEntries?: number;
}

const BLOCK = 512;
/** pax and GNU long-name records larger than this are refused (real ones are a few hundred bytes) */
const MAX_META_BYTES = 1024 * 1024;
/** Records that describe the entry after them instead of being entries. */
const META_TYPES = new Set(["x", "g", "L", "K"]);
/** Global pax keys that would move or rename every later entry; we do not apply globals, so we refuse them. */
const GLOBAL_KEYS_REFUSED = ["path", "linkpath", "size"];
const decoder = new TextDecoder();

/** A NUL-terminated (or full-width) string field. */
function cString(buf: Uint8Array, start: number, len: number): string {
  const slice = buf.subarray(start, start + len);
  const nul = slice.indexOf(0);
  return decoder.decode(nul >= 0 ? slice.subarray(0, nul) : slice);
}

/** A numeric field: octal text, or GNU base-256 for big numbers (high bit of the first byte set). */
export function octal(buf: Uint8Array, start: number, len: number): number {
  if (buf[start]! & 0x80) {
    let n = 0;
    for (let i = start + 1; i < start + len; i++) n = n * 256 + buf[i]!;
    return n;
  }
  const s = cString(buf, start, len).trim();
  return s === "" ? 0 : parseInt(s, 8);
}

/**
 * The header checksum, as GNU tar checks it: the unsigned byte sum or the signed one (old tars). A
 * header tar would skip as corrupt ("Skipping to next header") but we read as valid, or the other way
 * round, would let the two disagree on where entries start.
 */
export function checksumOk(h: Uint8Array): boolean {
  const stored = octal(h, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 32 : h[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return stored === unsigned || stored === signed;
}

/**
 * The records of a pax extended header ("<len> <key>=<value>\n" each, `len` counting the bytes of the
 * whole record); stops at the first malformed one. Lengths are bytes, so the records are cut from the
 * bytes before any is decoded: a UTF-8 name is longer in bytes than in characters.
 */
export function parsePax(data: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const digits = decoder.decode(data.subarray(i, sp));
    const len = Number(digits);
    if (!/^[0-9]+$/.test(digits) || len <= sp - i + 1 || i + len > data.length) break;
    const record = decoder.decode(data.subarray(sp + 1, i + len - 1));
    const eq = record.indexOf("=");
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    i += len;
  }
  return out;
}

/**
 * `push` chunks as they arrive, then `finish`. Throws TarFormatError at the first unreadable header;
 * whatever the sink throws passes through. After the end-of-archive block, input is only counted.
 */
export class TarReader {
  /** the header block being filled */
  private readonly header = new Uint8Array(BLOCK);
  private headerFill = 0;
  /** data bytes of the current entry still to come, then padding to the block boundary */
  private remaining = 0;
  private padding = 0;
  /** a pax or GNU long-name record being collected instead of passed on */
  private meta?: { type: string; chunks: Uint8Array[]; size: number };
  private pax: Record<string, string> = {};
  private longName?: string;
  private longLink?: string;
  /** bytes of the archive read up to the end-of-archive block (where the next header starts) */
  private offset = 0;
  private readonly maxEntries: number;
  /** entries seen (pax and long-name records not counted) */
  entries = 0;
  /** bytes pushed so far, including any after the end of the archive */
  bytes = 0;
  /** the end-of-archive block was seen: what follows is ignored */
  ended = false;

  constructor(
    private readonly sink: TarSink,
    options: TarReaderOptions = {},
  ) {
    this.maxEntries = options.maxEntries ?? Infinity;
  }

  push(chunk: Uint8Array): this {
    this.bytes += chunk.length;
    let off = 0;
    while (off < chunk.length && !this.ended) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - off);
        const piece = chunk.subarray(off, off + n);
        if (this.meta) this.meta.chunks.push(piece.slice());
        else this.sink.data?.(piece);
        this.remaining -= n;
        off += n;
        this.offset += n;
        if (this.remaining === 0) this.endOfData();
      } else if (this.padding > 0) {
        const n = Math.min(this.padding, chunk.length - off);
        this.padding -= n;
        off += n;
        this.offset += n;
      } else {
        const n = Math.min(BLOCK - this.headerFill, chunk.length - off);
        this.header.set(chunk.subarray(off, off + n), this.headerFill);
        this.headerFill += n;
        off += n;
        if (this.headerFill === BLOCK) {
          this.headerFill = 0;
          this.onHeader(this.header);
          this.offset += BLOCK;
        }
      }
    }
    return this;
  }

  /** The input ended: throws when it stopped inside a header, a record or an entry's data. */
  finish(): void {
    if (!this.ended && (this.headerFill > 0 || this.remaining > 0)) throw new TarFormatError({ code: "truncated" });
  }

  private onHeader(h: Uint8Array): void {
    // a zero block ends the archive (tar stops there too)
    if (h.every((b) => b === 0)) {
      this.ended = true;
      return;
    }
    if (!checksumOk(h)) throw new TarFormatError({ code: "corrupt_header", offset: this.offset });
    const type = String.fromCharCode(h[156] || 48);
    const isMeta = META_TYPES.has(type);
    // a pax `size` overrides the header's, as tar reads it: our entry boundaries must be tar's
    const size = this.pax.size !== undefined && !isMeta ? Number(this.pax.size) : octal(h, 124, 12);
    if (!Number.isSafeInteger(size) || size < 0) throw new TarFormatError({ code: "invalid_size", offset: this.offset });
    this.remaining = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (isMeta) {
      if (size > MAX_META_BYTES) throw new TarFormatError({ code: "meta_too_large", type, size, limit: MAX_META_BYTES });
      this.meta = { type, chunks: [], size };
      if (size === 0) this.endOfData();
      return;
    }
    if (++this.entries > this.maxEntries) throw new TarFormatError({ code: "too_many_entries", limit: this.maxEntries });
    const prefix = decoder.decode(h.subarray(257, 262)) === "ustar" ? cString(h, 345, 155) : "";
    const baseName = cString(h, 0, 100);
    const name = this.pax.path ?? this.longName ?? (prefix ? `${prefix}/${baseName}` : baseName);
    const linkname = this.pax.linkpath ?? this.longLink ?? cString(h, 157, 100);
    this.pax = {};
    this.longName = this.longLink = undefined;
    this.sink.entry({ name, type, mode: octal(h, 100, 8), size, linkname });
    if (size === 0) this.sink.end?.();
  }

  private endOfData(): void {
    const meta = this.meta;
    if (!meta) return this.sink.end?.();
    this.meta = undefined;
    const data = new Uint8Array(meta.size);
    let o = 0;
    for (const c of meta.chunks) {
      data.set(c, o);
      o += c.length;
    }
    if (meta.type === "x") this.pax = parsePax(data);
    else if (meta.type === "L") this.longName = cString(data, 0, data.length);
    else if (meta.type === "K") this.longLink = cString(data, 0, data.length);
    else {
      // global records apply to every later entry; refuse the ones that would move entries
      const global = parsePax(data);
      for (const key of GLOBAL_KEYS_REFUSED) if (key in global) throw new TarFormatError({ code: "global_override", key });
    }
  }
}
