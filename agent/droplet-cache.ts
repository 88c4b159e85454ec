// Droplets by sha256: fetched from the controller's droplet_uri once, checked against the sha the
// start order names, kept in <data>/droplets/<sha>.tgz and shared by every instance of that version.
// Kept on disk only: a download is streamed to a file while it is hashed, and instances unpack from
// the file (tarball.ts streams too), so no droplet is ever held whole in the agent's memory.

import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, utimesSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";

export class DropletError extends Error {
  override name = "DropletError";
}

export const sha256Hex = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** The chunks of a byte stream. */
async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    void reader.cancel().catch(() => {}); // the consumer stopped early (over a cap): stop the download too
  }
}

/** The sha256 of a file, read as a stream. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of chunksOf(Bun.file(path).stream())) hash.update(chunk);
  return hash.digest("hex");
}

/** Marks a cached droplet as just used (its mtime orders eviction). */
function touch(path: string): void {
  try {
    const now = new Date();
    utimesSync(path, now, now);
  } catch {}
}

let tmpCounter = 0;

export class DropletCache {
  private readonly inFlight = new Map<string, Promise<string>>();
  /** files checked against their name since this agent started (a file from an earlier run is re-hashed once) */
  private readonly verified = new Set<string>();

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    /** droplets kept on disk; the least recently used beyond this are removed when unused */
    private readonly diskCacheLimit = 64,
  ) {
    // droplets are apps' code: root's only (instances get theirs unpacked into their own dirs)
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }

  pathOf(sha: string): string {
    return join(this.dir, `${sha}.tgz`);
  }

  private tmpPath(sha: string): string {
    return `${this.pathOf(sha)}.${process.pid}.${++tmpCounter}.tmp`;
  }

  /** Keeps a droplet file this agent just staged and hashed, so its first start needs no download. */
  putFile(sha: string, file: string): void {
    const tmp = this.tmpPath(sha);
    try {
      renameSync(file, tmp);
    } catch {
      copyFileSync(file, tmp); // another file system
    }
    renameSync(tmp, this.pathOf(sha));
    this.verified.add(sha);
  }

  /** Keeps droplet bytes (tests, fixtures). */
  async put(sha: string, bytes: Uint8Array): Promise<void> {
    const tmp = this.tmpPath(sha);
    await Bun.write(tmp, bytes);
    this.putFile(sha, tmp);
  }

  /**
   * The path of the droplet's file, from the cache or downloaded from `uri`; throws DropletError when
   * its bytes hash differently. Concurrent gets of one droplet share one download.
   */
  get(sha: string, uri: string): Promise<string> {
    if (!/^[0-9a-f]{64}$/.test(sha)) return Promise.reject(new DropletError(`droplet_sha256 is not a sha256: ${sha}`));
    const path = this.pathOf(sha);
    if (this.verified.has(sha) && existsSync(path)) {
      touch(path);
      return Promise.resolve(path);
    }
    let p = this.inFlight.get(sha);
    if (!p) {
      p = this.load(sha, uri).finally(() => this.inFlight.delete(sha));
      this.inFlight.set(sha, p);
    }
    return p;
  }

  private async load(sha: string, uri: string): Promise<string> {
    const path = this.pathOf(sha);
    if (existsSync(path)) {
      if ((await sha256File(path)) === sha) {
        this.verified.add(sha);
        touch(path);
        return path;
      }
      rmSync(path, { force: true });
    }
    let res: Response;
    try {
      res = await fetch(uri, { signal: AbortSignal.timeout(120_000) });
    } catch (err) {
      throw new DropletError(`could not download the droplet from ${uri}: ${(err as Error).message}`);
    }
    if (!res.ok) throw new DropletError(`downloading the droplet from ${uri} answered ${res.status}`);
    const tmp = this.tmpPath(sha);
    try {
      const actual = await download(res, tmp, this.maxBytes, "droplet");
      if (actual !== sha) throw new DropletError(`droplet sha256 mismatch: expected ${sha}, got ${actual}; refusing to run it`);
      renameSync(tmp, path);
    } finally {
      rmSync(tmp, { force: true });
    }
    this.verified.add(sha);
    return path;
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
      this.verified.delete(f.sha);
      excess--;
    }
  }
}

/**
 * Streams a response body into `file` (created, never followed through a link), hashing it on the
 * way, and refusing more than `maxBytes` (the announced length first, then what really arrives).
 * Returns the sha256. `what` names the thing in errors ("droplet", "app package").
 */
export async function download(res: Response, file: string, maxBytes: number, what: string): Promise<string> {
  const announced = Number(res.headers.get("content-length") ?? 0);
  if (announced > maxBytes) throw new DropletError(`${what} of ${announced} bytes is over the ${maxBytes} byte cap`);
  const hash = createHash("sha256");
  const out = await open(file, "wx", 0o600);
  let total = 0;
  try {
    if (res.body)
      for await (const chunk of chunksOf(res.body)) {
        total += chunk.length;
        if (total > maxBytes) throw new DropletError(`${what} of more than ${maxBytes} bytes is over the ${maxBytes} byte cap`);
        hash.update(chunk);
        await out.write(chunk);
      }
  } catch (err) {
    if (err instanceof DropletError) throw err;
    throw new DropletError(`downloading the ${what} failed: ${(err as Error).message}`);
  } finally {
    await out.close();
  }
  return hash.digest("hex");
}
