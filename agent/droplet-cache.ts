// Droplets by sha256: fetched from the controller's droplet_uri once, checked against the sha the
// start order names, kept in <data>/droplets/<sha>.tgz and shared by every instance of that version.

import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";

export class DropletError extends Error {
  override name = "DropletError";
}

export const sha256Hex = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** Marks a cached droplet as just used (its mtime orders eviction). */
function touch(path: string): void {
  try {
    const now = new Date();
    utimesSync(path, now, now);
  } catch {}
}

export class DropletCache {
  private readonly inFlight = new Map<string, Promise<Uint8Array>>();
  private readonly memory = new Map<string, Uint8Array>();

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    /** droplets kept on disk; the least recently used beyond this are removed when unused */
    private readonly diskCacheLimit = 64,
    /** droplets kept in memory too (the small ones), so a cached start reads no file */
    private readonly memoryCacheLimit = 64,
  ) {
    // droplets are apps' code: root's only (instances get theirs unpacked into their own dirs)
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }

  pathOf(sha: string): string {
    return join(this.dir, `${sha}.tgz`);
  }

  /** Keeps a droplet this agent just staged, so its first start needs no download. */
  put(sha: string, bytes: Uint8Array): void {
    const path = this.pathOf(sha);
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
    this.remember(sha, bytes);
  }

  /** The droplet's bytes, from memory, disk, or `uri`; throws DropletError when the hash differs. */
  get(sha: string, uri: string): Promise<Uint8Array> {
    if (!/^[0-9a-f]{64}$/.test(sha)) return Promise.reject(new DropletError(`droplet_sha256 is not a sha256: ${sha}`));
    const hit = this.memory.get(sha);
    if (hit) {
      touch(this.pathOf(sha));
      return Promise.resolve(hit);
    }
    let p = this.inFlight.get(sha);
    if (!p) {
      p = this.load(sha, uri).finally(() => this.inFlight.delete(sha));
      this.inFlight.set(sha, p);
    }
    return p;
  }

  private async load(sha: string, uri: string): Promise<Uint8Array> {
    const path = this.pathOf(sha);
    if (existsSync(path)) {
      const bytes = new Uint8Array(readFileSync(path));
      if (sha256Hex(bytes) === sha) {
        touch(path);
        return this.remember(sha, bytes);
      }
    }
    let res: Response;
    try {
      res = await fetch(uri, { signal: AbortSignal.timeout(120_000) });
    } catch (err) {
      throw new DropletError(`could not download the droplet from ${uri}: ${(err as Error).message}`);
    }
    if (!res.ok) throw new DropletError(`downloading the droplet from ${uri} answered ${res.status}`);
    const len = Number(res.headers.get("content-length") ?? 0);
    if (len > this.maxBytes) throw new DropletError(`droplet of ${len} bytes is over the ${this.maxBytes} byte cap`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (bytes.length > this.maxBytes) throw new DropletError(`droplet of ${bytes.length} bytes is over the ${this.maxBytes} byte cap`);
    const actual = sha256Hex(bytes);
    if (actual !== sha) throw new DropletError(`droplet sha256 mismatch: expected ${sha}, got ${actual}; refusing to run it`);
    this.put(sha, bytes);
    return bytes;
  }

  /** Removes the least recently used droplets beyond the limit, except those in `inUse`. */
  prune(inUse: ReadonlySet<string>): void {
    let files: { sha: string; used: number }[];
    try {
      files = readdirSync(this.dir)
        .filter((f) => f.endsWith(".tgz"))
        .map((f) => ({ sha: f.slice(0, -4), used: statSync(join(this.dir, f)).mtimeMs }));
    } catch {
      return;
    }
    if (files.length <= this.diskCacheLimit) return;
    files.sort((a, b) => a.used - b.used);
    let excess = files.length - this.diskCacheLimit;
    for (const f of files) {
      if (excess <= 0) break;
      if (inUse.has(f.sha)) continue;
      rmSync(this.pathOf(f.sha), { force: true });
      this.memory.delete(f.sha);
      excess--;
    }
  }

  private remember(sha: string, bytes: Uint8Array): Uint8Array {
    if (bytes.length <= 8 * 1024 * 1024) {
      this.memory.set(sha, bytes);
      if (this.memory.size > this.memoryCacheLimit) this.memory.delete(this.memory.keys().next().value!);
    }
    return bytes;
  }
}
