// A push parser for the tar format (ustar, pax and GNU long names): fed the decompressed bytes a chunk
// at a time, it reports each entry's header, its data in pieces, and its end. It holds at most one
// header block and the (capped) pax/long-name records, never a whole archive, so an archive of any
// size is read in constant memory. Pure: the safe extractor (tarball.ts) decides what to do.

export class UnsafeArchiveError extends Error {
  override name = "UnsafeArchiveError";
}

export interface TarHeader {
  name: string;
  /** "0"/"7" file, "1" hard link, "2" symlink, "5" directory; anything else is refused downstream */
  type: string;
  mode: number;
  size: number;
  linkname: string;
}

export interface TarSink {
  entry(header: TarHeader): void;
  data(bytes: Uint8Array): void;
  end(): void;
}

const BLOCK = 512;
/** pax and GNU long-name records larger than this are refused (real ones are a few hundred bytes) */
const MAX_META = 1024 * 1024;
const decoder = new TextDecoder();

function cString(buf: Uint8Array, start: number, len: number): string {
  let end = start;
  while (end < start + len && buf[end] !== 0) end++;
  return decoder.decode(buf.subarray(start, end));
}

function octal(buf: Uint8Array, start: number, len: number): number {
  if (buf[start]! & 0x80) {
    // GNU base-256 for big numbers
    let n = 0;
    for (let i = start + 1; i < start + len; i++) n = n * 256 + buf[i]!;
    return n;
  }
  const s = cString(buf, start, len).trim();
  return s === "" ? 0 : parseInt(s, 8);
}

function checksumOk(h: Uint8Array): boolean {
  const stored = octal(h, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === stored;
}

export function parsePax(data: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  const text = decoder.decode(data);
  let i = 0;
  while (i < text.length) {
    const sp = text.indexOf(" ", i);
    if (sp < 0) break;
    const len = parseInt(text.slice(i, sp), 10);
    if (!(len > 0)) break;
    const record = text.slice(sp + 1, i + len - 1);
    const eq = record.indexOf("=");
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    i += len;
  }
  return out;
}

export class TarParser {
  /** the header block being filled */
  private readonly header = new Uint8Array(BLOCK);
  private headerFill = 0;
  /** data bytes of the current entry still to come, then padding to the block boundary */
  private remaining = 0;
  private padding = 0;
  /** a pax ("x", "g") or GNU long name ("L", "K") record being collected instead of passed on */
  private meta?: { type: string; chunks: Uint8Array[]; size: number };
  private pax: Record<string, string> = {};
  private longName?: string;
  private longLink?: string;
  private entries = 0;
  /** the end-of-archive block was seen: what follows is ignored */
  ended = false;
  /** bytes pushed so far */
  bytes = 0;

  constructor(
    private readonly sink: TarSink,
    private readonly maxEntries = 500_000,
  ) {}

  push(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    let off = 0;
    while (off < chunk.length && !this.ended) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - off);
        const piece = chunk.subarray(off, off + n);
        if (this.meta) this.meta.chunks.push(piece.slice());
        else this.sink.data(piece);
        this.remaining -= n;
        off += n;
        if (this.remaining === 0) this.endOfData();
      } else if (this.padding > 0) {
        const n = Math.min(this.padding, chunk.length - off);
        this.padding -= n;
        off += n;
      } else {
        const n = Math.min(BLOCK - this.headerFill, chunk.length - off);
        this.header.set(chunk.subarray(off, off + n), this.headerFill);
        this.headerFill += n;
        off += n;
        if (this.headerFill === BLOCK) {
          this.headerFill = 0;
          this.onHeader(this.header);
        }
      }
    }
  }

  /** The input ended: throws when it stopped inside an entry. */
  finish(): void {
    if (this.remaining > 0) throw new UnsafeArchiveError("truncated tar entry");
  }

  private onHeader(h: Uint8Array): void {
    if (h.every((b) => b === 0)) {
      this.ended = true;
      return;
    }
    const at = this.bytes; // only for the message
    if (!checksumOk(h)) throw new UnsafeArchiveError(`corrupt tar header near byte ${at}`);
    if (++this.entries > this.maxEntries) throw new UnsafeArchiveError(`more than ${this.maxEntries} entries`);
    const type = String.fromCharCode(h[156] || 48);
    const size = this.pax.size !== undefined && type !== "x" && type !== "g" ? Number(this.pax.size) : octal(h, 124, 12);
    if (!Number.isSafeInteger(size) || size < 0) throw new UnsafeArchiveError("tar entry with an invalid size");
    this.remaining = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (type === "x" || type === "g" || type === "L" || type === "K") {
      if (size > MAX_META) throw new UnsafeArchiveError(`a tar ${type} record of ${size} bytes`);
      this.meta = { type, chunks: [], size };
      if (size === 0) this.endOfData();
      return;
    }
    const prefix = decoder.decode(h.subarray(257, 262)) === "ustar" ? cString(h, 345, 155) : "";
    const baseName = cString(h, 0, 100);
    const name = this.pax.path ?? this.longName ?? (prefix ? `${prefix}/${baseName}` : baseName);
    const linkname = this.pax.linkpath ?? this.longLink ?? cString(h, 157, 100);
    this.pax = {};
    this.longName = this.longLink = undefined;
    this.sink.entry({ name, type, mode: octal(h, 100, 8), size, linkname });
    if (size === 0) this.sink.end();
  }

  private endOfData(): void {
    const meta = this.meta;
    if (!meta) return this.sink.end();
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
  }
}
