// Checks an uploaded gzip tar before anything unpacks it: every entry must stay inside the app
// directory (no absolute paths, no `..`, no links that point out, no devices), and the archive must
// not unpack to more than the cap. The tar is scanned as it is gunzipped, a chunk at a time, so a
// gzip bomb costs the controller a few chunks of memory, never its unpacked size (issue 7).

import { createGunzip } from "node:zlib";

export class PackageRejected extends Error {
  override name = "PackageRejected";
}

const BLOCK = 512;
/** pax and GNU long-name records are kept in memory to be read; real ones are a few hundred bytes */
const MAX_META_BYTES = 1024 * 1024;
const decoder = new TextDecoder();

function field(block: Uint8Array, off: number, len: number): string {
  const slice = block.subarray(off, off + len);
  const nul = slice.indexOf(0);
  return decoder.decode(nul >= 0 ? slice.subarray(0, nul) : slice);
}

function octal(block: Uint8Array, off: number, len: number): number {
  const first = block[off]!;
  if (first & 0x80) {
    // base-256 (GNU) for large sizes
    let n = 0;
    for (let i = 1; i < len; i++) n = n * 256 + block[off + i]!;
    return n;
  }
  const s = field(block, off, len).trim();
  return s === "" ? 0 : parseInt(s, 8);
}

/**
 * The header checksum, as tar checks it. A header tar would skip as corrupt ("Skipping to next
 * header") but we read as valid would let the two disagree on where entries start.
 */
function checksumOk(h: Uint8Array): boolean {
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

function parsePax(data: Uint8Array): Record<string, string> {
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

function escapes(path: string): boolean {
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path) || path.includes("\0")) return true;
  let depth = 0;
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (--depth < 0) return true;
    } else depth++;
  }
  return false;
}

function parentOf(path: string): string {
  const parts = path.split("/").filter((p) => p && p !== ".");
  parts.pop();
  return parts.join("/");
}

export interface TarSummary {
  entries: number;
  /** the sum of the entries' sizes */
  bytes: number;
}

/** Entry types the agent unpacks (files, links, directories) and the metadata records around them. */
const ENTRY_TYPES = new Set(["0", "1", "2", "5", "7"]);
const META_TYPES = new Set(["x", "g", "L", "K"]);

/**
 * An incremental tar reader: `push` chunks as they arrive, then `end`. Keeps one header and the
 * current metadata record, never file contents. Throws PackageRejected at the first bad entry.
 */
export class TarScanner {
  private readonly header = new Uint8Array(BLOCK);
  private headerFill = 0;
  /** bytes of the current entry's data still to come, then its padding */
  private dataLeft = 0;
  private padLeft = 0;
  private meta: { type: string; parts: Uint8Array[]; size: number } | undefined;
  private done = false;
  private pax: Record<string, string> = {};
  private longName: string | undefined;
  private longLink: string | undefined;
  private entries = 0;
  private bytes = 0;
  private offset = 0;

  constructor(private readonly limits = { maxEntries: 100_000 }) {}

  push(chunk: Uint8Array): this {
    let i = 0;
    while (i < chunk.length && !this.done) {
      if (this.dataLeft > 0) {
        const n = Math.min(this.dataLeft, chunk.length - i);
        if (this.meta) this.meta.parts.push(chunk.slice(i, i + n));
        this.dataLeft -= n;
        i += n;
        if (this.dataLeft === 0 && this.meta) this.finishMeta();
      } else if (this.padLeft > 0) {
        const n = Math.min(this.padLeft, chunk.length - i);
        this.padLeft -= n;
        i += n;
      } else {
        const n = Math.min(BLOCK - this.headerFill, chunk.length - i);
        this.header.set(chunk.subarray(i, i + n), this.headerFill);
        this.headerFill += n;
        i += n;
        if (this.headerFill === BLOCK) {
          this.headerFill = 0;
          this.onHeader(this.header);
          this.offset += BLOCK;
        }
      }
    }
    return this;
  }

  end(): TarSummary {
    if (!this.done && (this.headerFill > 0 || this.dataLeft > 0 || this.meta)) throw new PackageRejected("the archive is truncated or corrupt");
    return { entries: this.entries, bytes: this.bytes };
  }

  private onHeader(h: Uint8Array): void {
    // a zero block ends the archive (tar stops there too)
    if (h.every((b) => b === 0)) {
      this.done = true;
      return;
    }
    if (!checksumOk(h)) throw new PackageRejected(`corrupt tar header at byte ${this.offset}`);
    const type = String.fromCharCode(h[156] || 48);
    // a pax `size` overrides the header's, as tar reads it: our entry boundaries must be tar's
    const size = this.pax.size !== undefined && !META_TYPES.has(type) ? Number(this.pax.size) : octal(h, 124, 12);
    if (!Number.isSafeInteger(size) || size < 0) throw new PackageRejected("the archive is truncated or corrupt");
    this.dataLeft = size;
    this.padLeft = (BLOCK - (size % BLOCK)) % BLOCK;
    this.offset += size + this.padLeft;

    if (META_TYPES.has(type)) {
      if (size > MAX_META_BYTES) throw new PackageRejected(`a ${type} header record of ${size} bytes is larger than the ${MAX_META_BYTES} allowed`);
      this.meta = { type, parts: [], size };
      if (size === 0) this.finishMeta();
      return;
    }
    if (++this.entries > this.limits.maxEntries) throw new PackageRejected(`more than ${this.limits.maxEntries} entries`);
    const prefix = decoder.decode(h.subarray(257, 262)) === "ustar" ? field(h, 345, 155) : "";
    const base = field(h, 0, 100);
    const name = this.pax.path ?? this.longName ?? (prefix ? `${prefix}/${base}` : base);
    const link = this.pax.linkpath ?? this.longLink ?? field(h, 157, 100);
    this.pax = {};
    this.longName = this.longLink = undefined;
    if (escapes(name)) throw new PackageRejected(`entry "${name}" would be written outside the app directory`);
    if (type === "3" || type === "4" || type === "6") throw new PackageRejected(`entry "${name}" is a device or fifo`);
    if (!ENTRY_TYPES.has(type)) throw new PackageRejected(`entry "${name}" has tar type "${type}", which skiff does not unpack; pack regular files, directories and links only`);
    if (type === "1" && escapes(link)) throw new PackageRejected(`hard link "${name}" points outside the app directory`);
    if (type === "2") {
      const target = link.startsWith("/") ? link : `${parentOf(name)}/${link}`;
      if (escapes(target)) throw new PackageRejected(`symlink "${name}" -> "${link}" points outside the app directory`);
    }
    this.bytes += size;
  }

  private finishMeta(): void {
    const m = this.meta!;
    this.meta = undefined;
    const data = new Uint8Array(m.size);
    let off = 0;
    for (const p of m.parts) (data.set(p, off), (off += p.length));
    if (m.type === "x") this.pax = parsePax(data);
    else if (m.type === "L") this.longName = field(data, 0, data.length);
    else if (m.type === "K") this.longLink = field(data, 0, data.length);
    else if (m.type === "g") {
      // global records apply to every later entry; refuse the ones that would move entries
      const g = parsePax(data);
      for (const k of ["path", "linkpath", "size"]) if (k in g) throw new PackageRejected(`a global pax header sets "${k}"; pack the app with plain tar`);
    }
  }
}

/** Validates an uncompressed tar archive. Throws PackageRejected with the offending entry. */
export function checkTar(tar: Uint8Array, limits = { maxEntries: 100_000 }): TarSummary {
  return new TarScanner(limits).push(tar).end();
}

/**
 * Gunzips and checks the archive as one stream, refusing it as soon as it unpacks to more than
 * `maxBytes`: memory stays at a few zlib chunks whatever the archive claims.
 */
export async function checkTarGz(gz: Uint8Array, maxBytes: number, limits = { maxEntries: 100_000 }): Promise<TarSummary> {
  if (gz.length < 2 || gz[0] !== 0x1f || gz[1] !== 0x8b) throw new PackageRejected("the package is not a gzip tar (.tar.gz)");
  const scanner = new TarScanner(limits);
  const gunzip = createGunzip();
  gunzip.end(gz);
  let unpacked = 0;
  try {
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      unpacked += chunk.length;
      if (unpacked > maxBytes) throw new PackageRejected(`the unpacked package is larger than the limit of ${maxBytes} bytes`);
      scanner.push(chunk);
    }
  } catch (err) {
    if (err instanceof PackageRejected) throw err;
    throw new PackageRejected(`the package is not valid gzip: ${(err as Error).message}`);
  } finally {
    gunzip.destroy();
  }
  return scanner.end();
}
