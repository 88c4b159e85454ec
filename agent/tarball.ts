// A safe extractor for gzip tarballs (app packages and droplets). It refuses the whole archive on an
// entry with `..`, an absolute path, a link that resolves outside the root (checked as text, then
// resolved through the links already unpacked, then every link again once the tree is final), a path
// through a symlink, a device or FIFO, or more than the size cap; so nothing is ever written outside
// the target directory, and no link left in it leads out. We parse the tar format ourselves (ustar,
// pax and GNU long names) rather than trust `tar` flags.

import { gunzipSync } from "node:zlib";
import { copyFileSync, lchownSync, lstatSync, mkdirSync, readlinkSync, realpathSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { join, posix } from "node:path";

export class UnsafeArchiveError extends Error {
  override name = "UnsafeArchiveError";
}

export interface ExtractOptions {
  /** cap on the sum of file sizes (and on the unpacked archive) in bytes */
  maxBytes: number;
  maxEntries?: number;
  /** chown every entry to this user (when the agent runs instances as another user) */
  owner?: { uid: number; gid: number };
}

export interface ExtractResult {
  files: number;
  bytes: number;
}

interface Entry {
  name: string;
  type: string;
  mode: number;
  size: number;
  linkname: string;
  data: Uint8Array;
}

const BLOCK = 512;
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

/** Reads every entry of an uncompressed tar, applying pax and GNU long-name headers. */
export function* readTar(tar: Uint8Array, maxEntries = 500_000): Generator<Entry> {
  let off = 0;
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  let count = 0;
  while (off + BLOCK <= tar.length) {
    const h = tar.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) return;
    if (!checksumOk(h)) throw new UnsafeArchiveError(`corrupt tar header at byte ${off}`);
    if (++count > maxEntries) throw new UnsafeArchiveError(`more than ${maxEntries} entries`);
    const type = String.fromCharCode(h[156] || 48);
    const headerSize = octal(h, 124, 12);
    const size = pax.size !== undefined ? Number(pax.size) : headerSize;
    const dataStart = off + BLOCK;
    if (!Number.isSafeInteger(size) || size < 0 || dataStart + size > tar.length)
      throw new UnsafeArchiveError("truncated tar entry");
    const data = tar.subarray(dataStart, dataStart + size);
    off = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "x") {
      pax = parsePax(data);
      continue;
    }
    if (type === "g") continue;
    if (type === "L") {
      longName = cString(data, 0, data.length);
      continue;
    }
    if (type === "K") {
      longLink = cString(data, 0, data.length);
      continue;
    }
    const prefix = decoder.decode(h.subarray(257, 262)) === "ustar" ? cString(h, 345, 155) : "";
    const baseName = cString(h, 0, 100);
    const name = pax.path ?? longName ?? (prefix ? `${prefix}/${baseName}` : baseName);
    const linkname = pax.linkpath ?? longLink ?? cString(h, 157, 100);
    pax = {};
    longName = longLink = undefined;
    yield { name, type, mode: octal(h, 100, 8), size, linkname, data };
  }
}

/** Archive path → its segments inside the root; throws on `..`, absolute paths and NUL bytes. */
export function safeSegments(name: string): string[] {
  if (name.includes("\0")) throw new UnsafeArchiveError(`entry name with a NUL byte`);
  if (name.startsWith("/")) throw new UnsafeArchiveError(`absolute path in archive: ${name}`);
  const segments = name.split("/").filter((s) => s !== "" && s !== ".");
  if (segments.includes("..")) throw new UnsafeArchiveError(`path with .. in archive: ${name}`);
  return segments;
}

/**
 * The first, textual test of a symlink: its target, joined to the link's directory, stays inside.
 * Not enough alone: a target may pass through other links (`a/b/c -> ../../z`, then
 * `x -> a/b/c/../../..`), which only resolving against the unpacked tree catches (`resolveInside`).
 */
export function symlinkStaysInside(linkSegments: string[], target: string): boolean {
  if (target === "" || target.startsWith("/") || target.includes("\0")) return false;
  const resolved = posix.normalize(posix.join(...linkSegments.slice(0, -1), target));
  return resolved !== ".." && !resolved.startsWith("../") && !posix.isAbsolute(resolved);
}

/** Links followed at most while resolving one path, as the kernel's MAXSYMLINKS. */
const MAX_LINKS = 40;

/**
 * Resolves `segments` under `root` the way the kernel would, following the symlinks that exist in the
 * tree now, with `root` as the top: returns the resolved segments, or undefined when the path leaves
 * `root` at any step (a `..` above it, an absolute link) or loops. A component that does not exist
 * is taken as text, so a `..` after it is judged as if it were a directory (the stricter reading).
 */
export function resolveInside(root: string, segments: readonly string[]): string[] | undefined {
  const resolved: string[] = [];
  const todo = [...segments].reverse(); // a stack: the next component is at the end
  let links = 0;
  while (todo.length > 0) {
    const seg = todo.pop()!;
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (resolved.length === 0) return undefined;
      resolved.pop();
      continue;
    }
    resolved.push(seg);
    const abs = join(root, ...resolved);
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (!st?.isSymbolicLink()) continue;
    if (++links > MAX_LINKS) return undefined;
    const target = readlinkSync(abs);
    if (target.startsWith("/") || target.includes("\0")) return undefined;
    resolved.pop(); // the link's own name: its target is relative to the directory holding it
    const parts = target.split("/");
    for (let k = parts.length - 1; k >= 0; k--) todo.push(parts[k]!);
  }
  return resolved;
}

/** True when `abs` is `root` or below it (both already real paths). */
const isWithin = (root: string, abs: string) => abs === root || abs.startsWith(root.endsWith("/") ? root : `${root}/`);

function removeLinks(root: string, links: readonly string[][]): void {
  for (const l of links) {
    const abs = join(root, ...l);
    if (lstatSync(abs, { throwIfNoEntry: false })?.isSymbolicLink()) unlinkSync(abs);
  }
}

/**
 * After unpacking: every link must still resolve inside `root`, now that the whole tree exists (a
 * later entry may have turned a component of an earlier link's target into a link). Checked twice:
 * by our own resolution, and by the kernel's `realpath` where the target exists. On failure every
 * link unpacked is removed, so nothing left behind can lead out, and UnsafeArchiveError is thrown.
 */
function checkLinksAfterUnpack(root: string, links: readonly string[][]): void {
  const realRoot = realpathSync(root);
  for (const segments of links) {
    const rel = segments.join("/");
    let bad = resolveInside(root, segments) === undefined;
    if (!bad) {
      try {
        bad = !isWithin(realRoot, realpathSync(join(root, rel)));
      } catch (err) {
        // a dangling link is harmless once resolved inside; a loop is not
        bad = (err as NodeJS.ErrnoException).code !== "ENOENT" && (err as NodeJS.ErrnoException).code !== "ENOTDIR";
      }
    }
    if (bad) {
      const target = readlinkSync(join(root, rel));
      removeLinks(root, links);
      throw new UnsafeArchiveError(`symlink resolves outside the archive through other links: ${rel} -> ${target}`);
    }
  }
}

/** Unpacks a gzip tarball into `root` (created if missing). Refuses unsafe archives before or while writing. */
export function extractTarGz(gz: Uint8Array, root: string, opts: ExtractOptions): ExtractResult {
  let tar: Uint8Array;
  try {
    // the cap on the unpacked archive stops gzip bombs before they fill memory
    tar = gunzipSync(gz, { maxOutputLength: opts.maxBytes + 64 * 1024 * 1024 });
  } catch (err) {
    const msg = (err as Error).message;
    throw new UnsafeArchiveError(/buffer|length|size/i.test(msg) ? `archive unpacks to more than ${opts.maxBytes} bytes` : `not a gzip file: ${msg}`);
  }
  return extractTar(tar, root, opts);
}

export function extractTar(tar: Uint8Array, root: string, opts: ExtractOptions): ExtractResult {
  mkdirSync(root, { recursive: true });
  const knownDirs = new Set<string>([""]);
  const links: string[][] = [];
  let bytes = 0;
  let files = 0;
  const chown = (p: string) => opts.owner && lchownSync(p, opts.owner.uid, opts.owner.gid);

  // Creates each parent directory one segment at a time, refusing to pass through a symlink.
  const ensureDir = (segments: string[]) => {
    for (let i = 1; i <= segments.length; i++) {
      const rel = segments.slice(0, i).join("/");
      if (knownDirs.has(rel)) continue;
      const abs = join(root, rel);
      const st = lstatSync(abs, { throwIfNoEntry: false });
      if (!st) {
        mkdirSync(abs, { mode: 0o755 });
        chown(abs);
      } else if (!st.isDirectory()) throw new UnsafeArchiveError(`path goes through a non-directory: ${rel}`);
      knownDirs.add(rel);
    }
  };
  const clear = (abs: string, rel: string) => {
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) throw new UnsafeArchiveError(`entry would replace a directory: ${rel}`);
    rmSync(abs);
  };

  try {
    for (const e of readTar(tar, opts.maxEntries)) {
      const segments = safeSegments(e.name);
      if (segments.length === 0) continue;
      const rel = segments.join("/");
      const abs = join(root, rel);
      switch (e.type) {
        case "5":
          ensureDir(segments);
          break;
        case "0":
        case "7": {
          bytes += e.size;
          if (bytes > opts.maxBytes) throw new UnsafeArchiveError(`archive holds more than ${opts.maxBytes} bytes`);
          ensureDir(segments.slice(0, -1));
          clear(abs, rel);
          // owner-readable always; keep the executable bits; never setuid/setgid/sticky or world-writable
          writeFileSync(abs, e.data, { mode: (e.mode & 0o755) | 0o644, flag: "wx" });
          chown(abs);
          files++;
          break;
        }
        case "2":
          if (!symlinkStaysInside(segments, e.linkname))
            throw new UnsafeArchiveError(`symlink points outside the archive: ${rel} -> ${e.linkname}`);
          ensureDir(segments.slice(0, -1));
          clear(abs, rel);
          symlinkSync(e.linkname, abs);
          links.push(segments);
          if (!resolveInside(root, segments)) {
            unlinkSync(abs);
            throw new UnsafeArchiveError(`symlink resolves outside the archive through other links: ${rel} -> ${e.linkname}`);
          }
          chown(abs);
          break;
        case "1": {
          const target = safeSegments(e.linkname);
          const targetAbs = join(root, ...target);
          const st = lstatSync(targetAbs, { throwIfNoEntry: false });
          if (!st?.isFile()) throw new UnsafeArchiveError(`hard link to something not extracted as a file: ${rel} -> ${e.linkname}`);
          ensureDir(target.slice(0, -1)); // refuses a target reached through a symlink
          bytes += st.size;
          if (bytes > opts.maxBytes) throw new UnsafeArchiveError(`archive holds more than ${opts.maxBytes} bytes`);
          ensureDir(segments.slice(0, -1));
          clear(abs, rel);
          copyFileSync(targetAbs, abs);
          chown(abs);
          files++;
          break;
        }
        default:
          throw new UnsafeArchiveError(`unsupported entry type '${e.type}' (devices, FIFOs…) at ${rel}`);
      }
    }
  } catch (err) {
    // a refused archive leaves no link behind that a later entry may have turned outward
    removeLinks(root, links);
    throw err;
  }
  checkLinksAfterUnpack(root, links);
  return { files, bytes };
}

/** Writes a plain ustar archive of in-memory entries: for tests and fixtures (hostile ones too). */
export function writeTar(entries: { name: string; type?: "0" | "2" | "1" | "5"; data?: string | Uint8Array; linkname?: string; mode?: number }[]): Uint8Array {
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  for (const e of entries) {
    const data = typeof e.data === "string" ? enc.encode(e.data) : (e.data ?? new Uint8Array());
    const h = new Uint8Array(BLOCK);
    const put = (s: string, at: number, len: number) => h.set(enc.encode(s).subarray(0, len), at);
    const type = e.type ?? "0";
    put(e.name, 0, 100);
    put((e.mode ?? (type === "5" ? 0o755 : 0o644)).toString(8).padStart(7, "0"), 100, 8);
    put("0000000", 108, 8);
    put("0000000", 116, 8);
    put((type === "0" ? data.length : 0).toString(8).padStart(11, "0"), 124, 12);
    put("00000000000", 136, 12);
    put(type, 156, 1);
    put(e.linkname ?? "", 157, 100);
    put("ustar\u000000", 257, 8);
    put("        ", 148, 8);
    let sum = 0;
    for (const b of h) sum += b;
    put(sum.toString(8).padStart(6, "0") + "\u0000 ", 148, 8);
    chunks.push(h);
    if (type === "0") {
      chunks.push(data);
      const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
      if (pad) chunks.push(new Uint8Array(pad));
    }
  }
  chunks.push(new Uint8Array(BLOCK * 2));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
