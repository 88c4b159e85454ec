// Zip uploads, converted in-process to the gzip tar the platform stores (tar.gz is the format; zip is
// a convenience). The central directory is read first: the declared sizes must sum to no more than
// the cap and every name must stay inside the app directory, before a byte is inflated. Each entry
// is then inflated as a stream and refused the moment it yields more than it declared, so the total
// unpacked is bounded by the cap whatever the archive claims (issue 7: `unzip` ran with no limit).

import { once } from "node:events";
import { createGzip, createInflateRaw } from "node:zlib";
import { escapesAppDirectory } from "./package-paths.ts";
import { PackageRejected } from "./tar-check.ts";

export interface ZipEntry {
  name: string;
  kind: "file" | "dir" | "symlink";
  /** permission bits for files (0o644 or 0o755) */
  mode: number;
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  mtime: number;
}

export interface ZipLimits {
  maxBytes: number;
  maxEntries: number;
}

const EOCD = 0x06054b50;
const EOCD64 = 0x06064b50;
const EOCD64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_SYMLINK_TARGET = 4096;
const decoder = new TextDecoder();

export const isZip = (b: Uint8Array): boolean => b.length > 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;

function u64(v: DataView, off: number, what: string): number {
  const n = v.getBigUint64(off, true);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new PackageRejected(`the zip's ${what} is impossibly large`);
  return Number(n);
}

function dosTime(date: number, time: number): number {
  const d = new Date(1980 + (date >> 9), ((date >> 5) & 15) - 1, date & 31, time >> 11, (time >> 5) & 63, (time & 31) * 2);
  return Number.isFinite(d.getTime()) ? Math.floor(d.getTime() / 1000) : 0;
}

/** Reads the central directory (pure). Throws PackageRejected on anything skiff will not unpack. */
export function readZipDirectory(zip: Uint8Array, limits: ZipLimits): ZipEntry[] {
  const v = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 65535); i--) {
    if (v.getUint32(i, true) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new PackageRejected("the zip has no central directory (truncated or not a zip)");
  let count = v.getUint16(eocd + 10, true);
  let cdSize = v.getUint32(eocd + 12, true);
  let cdOffset = v.getUint32(eocd + 16, true);
  if (v.getUint16(eocd + 4, true) !== 0 || v.getUint16(eocd + 6, true) !== 0) throw new PackageRejected("multi-part zips are not supported");
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc < 0 || v.getUint32(loc, true) !== EOCD64_LOCATOR) throw new PackageRejected("the zip64 end record is missing");
    const at = u64(v, loc + 8, "zip64 end record offset");
    if (at + 56 > zip.length || v.getUint32(at, true) !== EOCD64) throw new PackageRejected("the zip64 end record is corrupt");
    count = u64(v, at + 32, "entry count");
    cdSize = u64(v, at + 40, "central directory size");
    cdOffset = u64(v, at + 48, "central directory offset");
  }
  if (count > limits.maxEntries) throw new PackageRejected(`more than ${limits.maxEntries} entries`);
  if (cdOffset + cdSize > zip.length) throw new PackageRejected("the zip's central directory lies outside the file (truncated?)");

  const entries: ZipEntry[] = [];
  let declared = 0;
  let off = cdOffset;
  for (let n = 0; n < count; n++) {
    if (off + 46 > zip.length || v.getUint32(off, true) !== CENTRAL) throw new PackageRejected("the zip's central directory is corrupt");
    const host = v.getUint8(off + 5);
    const flags = v.getUint16(off + 8, true);
    const method = v.getUint16(off + 10, true);
    let compressedSize = v.getUint32(off + 20, true);
    let size = v.getUint32(off + 24, true);
    const nameLen = v.getUint16(off + 28, true);
    const extraLen = v.getUint16(off + 30, true);
    const commentLen = v.getUint16(off + 32, true);
    const external = v.getUint32(off + 38, true);
    let localHeaderOffset = v.getUint32(off + 42, true);
    if (off + 46 + nameLen + extraLen > zip.length) throw new PackageRejected("the zip's central directory is corrupt");
    let name = decoder.decode(zip.subarray(off + 46, off + 46 + nameLen));
    // zip64: the real sizes and offset are in extra field 0x0001, in this order, when the 32-bit ones are saturated
    for (let e = off + 46 + nameLen; e + 4 <= off + 46 + nameLen + extraLen; ) {
      const id = v.getUint16(e, true);
      const len = v.getUint16(e + 2, true);
      if (id === 0x0001) {
        let p = e + 4;
        const end = p + len;
        const take = (what: string) => {
          if (p + 8 > end) throw new PackageRejected(`the zip64 field of "${name}" is short`);
          const x = u64(v, p, what);
          p += 8;
          return x;
        };
        if (size === 0xffffffff) size = take("entry size");
        if (compressedSize === 0xffffffff) compressedSize = take("compressed size");
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take("entry offset");
      }
      e += 4 + len;
    }
    const mtime = dosTime(v.getUint16(off + 14, true), v.getUint16(off + 12, true));
    off += 46 + nameLen + extraLen + commentLen;

    // archives made on DOS/Windows may separate directories with backslashes, as unzip accepts
    if (host !== 3) name = name.replace(/\\/g, "/");
    if (flags & 1) throw new PackageRejected(`entry "${name}" is encrypted; upload an unencrypted archive`);
    if (escapesAppDirectory(name)) throw new PackageRejected(`entry "${name}" would be written outside the app directory`);
    const unixMode = host === 3 ? external >>> 16 : 0;
    const fileType = unixMode & 0o170000;
    const kind: ZipEntry["kind"] = name.endsWith("/") || fileType === 0o040000 ? "dir" : fileType === 0o120000 ? "symlink" : "file";
    if (fileType !== 0 && kind === "file" && fileType !== 0o100000) throw new PackageRejected(`entry "${name}" is a device, fifo or socket`);
    if (method !== 0 && method !== 8) throw new PackageRejected(`entry "${name}" uses zip compression method ${method}; re-zip it with deflate, or upload a .tar.gz`);
    if (method === 0 && compressedSize !== size) throw new PackageRejected(`entry "${name}" is stored but its sizes disagree`);
    if (kind === "symlink" && size > MAX_SYMLINK_TARGET) throw new PackageRejected(`symlink "${name}" has a ${size}-byte target`);
    declared += size;
    if (declared > limits.maxBytes) throw new PackageRejected(`the unpacked package is larger than the limit of ${limits.maxBytes} bytes`);
    entries.push({
      name: kind === "dir" ? name.replace(/\/*$/, "/") : name,
      kind,
      mode: unixMode & 0o111 ? 0o755 : 0o644,
      method,
      compressedSize,
      size,
      localHeaderOffset,
      mtime,
    });
  }
  return entries;
}

/** Where an entry's compressed bytes are, from its local header. */
function dataOf(zip: Uint8Array, e: ZipEntry): Uint8Array {
  const v = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const at = e.localHeaderOffset;
  if (at + 30 > zip.length || v.getUint32(at, true) !== LOCAL) throw new PackageRejected(`the local header of "${e.name}" is missing`);
  const start = at + 30 + v.getUint16(at + 26, true) + v.getUint16(at + 28, true);
  if (start + e.compressedSize > zip.length) throw new PackageRejected(`entry "${e.name}" runs past the end of the zip`);
  return zip.subarray(start, start + e.compressedSize);
}

/** The entry's contents, a chunk at a time, refused as soon as there is more than it declared. */
async function* contents(zip: Uint8Array, e: ZipEntry): AsyncGenerator<Uint8Array> {
  const raw = dataOf(zip, e);
  if (e.method === 0) {
    if (raw.length) yield raw;
    return;
  }
  const inflate = createInflateRaw();
  inflate.end(raw);
  let n = 0;
  try {
    for await (const chunk of inflate as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > e.size) throw new PackageRejected(`entry "${e.name}" unpacks to more than the ${e.size} bytes it declares`);
      yield chunk;
    }
  } catch (err) {
    if (err instanceof PackageRejected) throw err;
    throw new PackageRejected(`entry "${e.name}" is not valid deflate data: ${(err as Error).message}`);
  } finally {
    inflate.destroy();
  }
  if (n !== e.size) throw new PackageRejected(`entry "${e.name}" unpacks to ${n} bytes, not the ${e.size} it declares`);
}

const enc = new TextEncoder();

function putString(h: Uint8Array, off: number, len: number, s: string): void {
  h.set(enc.encode(s).subarray(0, len), off);
}

function putOctal(h: Uint8Array, off: number, len: number, n: number): void {
  putString(h, off, len, n.toString(8).padStart(len - 1, "0") + "\0");
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const n = enc.encode(body).length;
  // the length counts its own digits
  let len = n + String(n).length;
  while (n + String(len).length !== len) len = n + String(len).length;
  return `${len}${body}`;
}

function padded(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(data.length / 512) * 512);
  out.set(data);
  return out;
}

/** One ustar header block, checksum included. */
function ustar(name: string, type: string, mode: number, size: number, mtime: number, link = ""): Uint8Array {
  const h = new Uint8Array(512);
  putString(h, 0, 100, name);
  putOctal(h, 100, 8, mode);
  putOctal(h, 108, 8, 0);
  putOctal(h, 116, 8, 0);
  putOctal(h, 124, 12, size);
  putOctal(h, 136, 12, mtime);
  h[156] = type.charCodeAt(0);
  putString(h, 157, 100, link);
  putString(h, 257, 8, "ustar\x0000");
  h.fill(32, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  putString(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/** A ustar header, after a pax record when the name or link is long or not ASCII. Pure. */
export function tarHeader(e: { name: string; type: "0" | "2" | "5"; mode: number; size: number; mtime: number; link?: string }): Uint8Array {
  const long = (s: string) => enc.encode(s).length > 100 || /[^\x20-\x7e]/.test(s);
  const pax = (long(e.name) ? paxRecord("path", e.name) : "") + (e.link && long(e.link) ? paxRecord("linkpath", e.link) : "");
  const header = ustar(e.name, e.type, e.mode, e.size, e.mtime, e.link);
  if (!pax) return header;
  const data = enc.encode(pax);
  return Buffer.concat([ustar("PaxHeader", "x", 0o644, data.length, e.mtime), padded(data), header]);
}

async function* tarOf(zip: Uint8Array, entries: ZipEntry[]): AsyncGenerator<Uint8Array> {
  for (const e of entries) {
    if (e.kind === "dir") {
      yield tarHeader({ name: e.name, type: "5", mode: 0o755, size: 0, mtime: e.mtime });
      continue;
    }
    if (e.kind === "symlink") {
      const parts: Uint8Array[] = [];
      for await (const c of contents(zip, e)) parts.push(c);
      const link = decoder.decode(Buffer.concat(parts));
      yield tarHeader({ name: e.name, type: "2", mode: 0o777, size: 0, mtime: e.mtime, link });
      continue;
    }
    if (e.size > 0o77777777777) throw new PackageRejected(`entry "${e.name}" is larger than 8 GiB`);
    yield tarHeader({ name: e.name, type: "0", mode: e.mode, size: e.size, mtime: e.mtime });
    for await (const c of contents(zip, e)) yield c;
    if (e.size % 512) yield new Uint8Array(512 - (e.size % 512));
  }
  yield new Uint8Array(1024);
}

/** Converts a zip to a gzip tar within the limits; throws PackageRejected with the reason. */
export async function zipToTarGz(zip: Uint8Array, limits: ZipLimits): Promise<Uint8Array> {
  const entries = readZipDirectory(zip, limits);
  const gzip = createGzip();
  const out: Buffer[] = [];
  gzip.on("data", (c: Buffer) => out.push(c));
  const ended = once(gzip, "end");
  try {
    for await (const chunk of tarOf(zip, entries)) if (!gzip.write(chunk)) await once(gzip, "drain");
    gzip.end();
    await ended;
  } finally {
    gzip.destroy();
  }
  return Buffer.concat(out);
}
