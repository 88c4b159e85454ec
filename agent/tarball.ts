// A safe extractor for gzip tarballs (app packages and droplets). It refuses the whole archive on an
// entry with `..`, an absolute path, a link that resolves outside the root (checked as text, then
// resolved through the links already unpacked, then every link again once the tree is final), a path
// through a symlink, a device or FIFO, or more than the size cap; so nothing is ever written outside
// the target directory, and no link left in it leads out. We read the tar format ourselves
// (archive/tar-reader.ts) rather than trust `tar` flags, and stream: memory stays flat whatever the size.

import { closeSync, copyFileSync, lchownSync, lstatSync, mkdirSync, openSync, readlinkSync, realpathSync, rmSync, symlinkSync, unlinkSync, writeSync } from "node:fs";
import { join, posix } from "node:path";
import { ustarArchive } from "../archive/tar-fixtures.ts";
import { TarFormatError, TarReader, type TarEntry, type TarSink } from "../archive/tar-reader.ts";

export class UnsafeArchiveError extends Error {
  override name = "UnsafeArchiveError";
}

/** The agent's wording of an unreadable archive (it reaches staging errors and crash reasons). */
function unreadable(err: TarFormatError): UnsafeArchiveError {
  const p = err.problem;
  switch (p.code) {
    case "corrupt_header":
      return new UnsafeArchiveError(`corrupt tar header near byte ${p.offset}`, { cause: err });
    case "invalid_size":
      return new UnsafeArchiveError("tar entry with an invalid size", { cause: err });
    case "meta_too_large":
      return new UnsafeArchiveError(`a tar ${p.type} record of ${p.size} bytes`, { cause: err });
    case "truncated":
      return new UnsafeArchiveError("truncated tar entry", { cause: err });
    default:
      return new UnsafeArchiveError(err.message, { cause: err });
  }
}

/** Entries an archive may hold unless the caller says otherwise (a droplet with a large node_modules has tens of thousands). */
const MAX_ENTRIES = 500_000;

export interface ExtractOptions {
  /** cap on the sum of file sizes (and on the unpacked archive) in bytes */
  maxBytes: number;
  /** default 500,000 */
  maxEntries?: number;
  /** chown every entry to this user (when the agent runs instances as another user) */
  owner?: { uid: number; gid: number };
}

export interface ExtractResult {
  files: number;
  bytes: number;
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

/** Unpacks a gzip tarball held in memory into `root`; see extractTarGzStream. */
export function extractTarGz(gz: Uint8Array, root: string, opts: ExtractOptions): Promise<ExtractResult> {
  return extractTarGzStream(new Blob([gz as Uint8Array<ArrayBuffer>]).stream(), root, opts);
}

/** Unpacks a gzip tarball file into `root`; see extractTarGzStream. */
export function extractTarGzFile(path: string, root: string, opts: ExtractOptions): Promise<ExtractResult> {
  return extractTarGzStream(Bun.file(path).stream(), root, opts);
}

/** Tar headers and padding a capped archive may add to its files' bytes before it counts as a bomb. */
const TAR_OVERHEAD = 64 * 1024 * 1024;
/** Give the event loop a turn at least this often (heartbeats, health checks, other starts). */
const SLICE_MS = 8;
/**
 * The decompressor inflates each input chunk whole before anything else runs, and a file or Blob
 * stream hands it 0.25-1 MiB at a time (tens of ms of inflating, measured): fed 16 KiB pieces, it
 * never holds the loop longer than a fraction of a millisecond at a time.
 */
const COMPRESSED_PIECE = 16 * 1024;

function smallPieces(max: number): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, controller) {
      for (let off = 0; off < chunk.length; off += max) controller.enqueue(chunk.subarray(off, off + max));
    },
  });
}

/**
 * Unpacks a gzip tarball into `root` (created if missing), refusing unsafe archives before or while
 * writing (UnsafeArchiveError). Streamed: decompressed and written a chunk at a time, so memory stays
 * flat whatever the size, and the event loop gets a turn every few milliseconds. Everything after
 * the end-of-archive marker still counts against the cap, so a gzip bomb is refused all the same.
 */
export async function extractTarGzStream(gz: ReadableStream<Uint8Array>, root: string, opts: ExtractOptions): Promise<ExtractResult> {
  const out = new Extractor(root, opts);
  const parser = new TarReader(out, { maxEntries: opts.maxEntries ?? MAX_ENTRIES });
  const cap = opts.maxBytes + TAR_OVERHEAD;
  // DecompressionStream rather than node:zlib: Bun's native one, and loading node:zlib costs the agent MiBs of RSS
  const gunzip = new DecompressionStream("gzip") as unknown as ReadableWritablePair<Uint8Array, Uint8Array>;
  const reader = gz.pipeThrough(smallPieces(COMPRESSED_PIECE)).pipeThrough(gunzip).getReader();
  let sliceStart = performance.now();
  try {
    for (;;) {
      let next: Awaited<ReturnType<typeof reader.read>>;
      try {
        next = await reader.read();
      } catch (err) {
        throw new UnsafeArchiveError(`not a gzip file: ${(err as Error).message}`);
      }
      if (next.done) break;
      if (parser.bytes + next.value.length > cap) throw new UnsafeArchiveError(`archive unpacks to more than ${opts.maxBytes} bytes`);
      parser.push(next.value);
      if (performance.now() - sliceStart > SLICE_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
    }
    parser.finish();
  } catch (err) {
    void reader.cancel().catch(() => {});
    out.abort();
    throw err instanceof TarFormatError ? unreadable(err) : err;
  }
  return out.finish();
}

/** Applies parsed entries to the file system under `root`, refusing anything unsafe. Synchronous per event. */
class Extractor implements TarSink {
  private readonly knownDirs = new Set<string>([""]);
  private readonly links: string[][] = [];
  private bytes = 0;
  private files = 0;
  /** the regular file being written */
  private file?: { fd: number; abs: string };

  constructor(
    private readonly root: string,
    private readonly opts: ExtractOptions,
  ) {
    mkdirSync(root, { recursive: true });
  }

  private chown(p: string): void {
    if (this.opts.owner) lchownSync(p, this.opts.owner.uid, this.opts.owner.gid);
  }

  /** Creates each parent directory one segment at a time, refusing to pass through a symlink. */
  private ensureDir(segments: string[]): void {
    for (let i = 1; i <= segments.length; i++) {
      const rel = segments.slice(0, i).join("/");
      if (this.knownDirs.has(rel)) continue;
      const abs = join(this.root, rel);
      const st = lstatSync(abs, { throwIfNoEntry: false });
      if (!st) {
        mkdirSync(abs, { mode: 0o755 });
        this.chown(abs);
      } else if (!st.isDirectory()) throw new UnsafeArchiveError(`path goes through a non-directory: ${rel}`);
      this.knownDirs.add(rel);
    }
  }

  private clear(abs: string, rel: string): void {
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) throw new UnsafeArchiveError(`entry would replace a directory: ${rel}`);
    rmSync(abs);
  }

  private addBytes(n: number): void {
    this.bytes += n;
    if (this.bytes > this.opts.maxBytes) throw new UnsafeArchiveError(`archive holds more than ${this.opts.maxBytes} bytes`);
  }

  entry(e: TarEntry): void {
    const segments = safeSegments(e.name);
    if (segments.length === 0) return;
    const rel = segments.join("/");
    const abs = join(this.root, rel);
    switch (e.type) {
      case "5":
        this.ensureDir(segments);
        break;
      case "0":
      case "7": {
        this.addBytes(e.size);
        this.ensureDir(segments.slice(0, -1));
        this.clear(abs, rel);
        // owner-readable always; keep the executable bits; never setuid/setgid/sticky or world-writable;
        // "wx" (O_EXCL) never follows a link
        this.file = { fd: openSync(abs, "wx", (e.mode & 0o755) | 0o644), abs };
        this.files++;
        break;
      }
      case "2":
        if (!symlinkStaysInside(segments, e.linkname))
          throw new UnsafeArchiveError(`symlink points outside the archive: ${rel} -> ${e.linkname}`);
        this.ensureDir(segments.slice(0, -1));
        this.clear(abs, rel);
        symlinkSync(e.linkname, abs);
        this.links.push(segments);
        if (!resolveInside(this.root, segments)) {
          unlinkSync(abs);
          throw new UnsafeArchiveError(`symlink resolves outside the archive through other links: ${rel} -> ${e.linkname}`);
        }
        this.chown(abs);
        break;
      case "1": {
        const target = safeSegments(e.linkname);
        this.ensureDir(target.slice(0, -1)); // refuses a target reached through a symlink
        const targetAbs = join(this.root, ...target);
        const st = lstatSync(targetAbs, { throwIfNoEntry: false });
        if (!st?.isFile()) throw new UnsafeArchiveError(`hard link to something not extracted as a file: ${rel} -> ${e.linkname}`);
        this.addBytes(st.size);
        this.ensureDir(segments.slice(0, -1));
        this.clear(abs, rel);
        copyFileSync(targetAbs, abs);
        this.chown(abs);
        this.files++;
        break;
      }
      default:
        throw new UnsafeArchiveError(`unsupported entry type '${e.type}' (devices, FIFOs…) at ${rel}`);
    }
  }

  data(bytes: Uint8Array): void {
    if (!this.file) return; // data of an entry that holds none (a directory's): skipped
    let off = 0;
    while (off < bytes.length) off += writeSync(this.file.fd, bytes, off, bytes.length - off);
  }

  end(): void {
    const f = this.file;
    if (!f) return;
    this.file = undefined;
    closeSync(f.fd);
    this.chown(f.abs);
  }

  /** After the last entry: every link checked again against the final tree. */
  finish(): ExtractResult {
    checkLinksAfterUnpack(this.root, this.links);
    return { files: this.files, bytes: this.bytes };
  }

  /** A refused archive leaves no link behind that a later entry may have turned outward. */
  abort(): void {
    if (this.file) closeSync(this.file.fd);
    this.file = undefined;
    removeLinks(this.root, this.links);
  }
}

/** Writes a plain ustar archive of in-memory entries: for tests and fixtures (hostile ones too). Only files carry data. */
export function writeTar(entries: { name: string; type?: "0" | "2" | "1" | "5"; data?: string | Uint8Array; linkname?: string; mode?: number }[]): Uint8Array {
  return ustarArchive(entries.map((e) => ({ ...e, data: (e.type ?? "0") === "0" ? e.data : undefined })));
}
