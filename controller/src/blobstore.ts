// Packages and droplets on disk, content-addressed by sha256 (`<dir>/<kind>/<ab>/<sha>`), and the
// short-lived HMAC-signed URLs through which agents fetch and upload them.

import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";

export type BlobKind = "packages" | "droplets";

export class Blobstore {
  constructor(private readonly dir: string) {
    for (const k of ["packages", "droplets", "tmp"]) mkdirSync(join(dir, k), { recursive: true });
  }

  path(kind: BlobKind, sha: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new Error(`not a sha256: ${sha}`);
    return join(this.dir, kind, sha.slice(0, 2), sha);
  }

  has(kind: BlobKind, sha: string): boolean {
    return /^[0-9a-f]{64}$/.test(sha) && existsSync(this.path(kind, sha));
  }

  size(kind: BlobKind, sha: string): number {
    return statSync(this.path(kind, sha)).size;
  }

  /** Stores bytes; the write lands under a temporary name and is renamed, so a reader never sees half a blob. */
  async put(kind: BlobKind, bytes: Uint8Array): Promise<string> {
    const sha = createHash("sha256").update(bytes).digest("hex");
    const final = this.path(kind, sha);
    if (existsSync(final)) {
      // fresh again: the sweep spares young blobs, and this one is about to be referenced
      const now = new Date();
      utimesSync(final, now, now);
      return sha;
    }
    mkdirSync(join(this.dir, kind, sha.slice(0, 2)), { recursive: true });
    const tmp = join(this.dir, "tmp", `${sha}.${process.pid}.${Math.random().toString(36).slice(2)}`);
    await Bun.write(tmp, bytes);
    renameSync(tmp, final);
    return sha;
  }

  file(kind: BlobKind, sha: string): ReturnType<typeof Bun.file> {
    return Bun.file(this.path(kind, sha));
  }

  remove(kind: BlobKind, sha: string): void {
    rmSync(this.path(kind, sha), { force: true });
  }

  /** Every stored blob of a kind with its last write time (for the sweep). */
  list(kind: BlobKind): { sha: string; mtimeMs: number }[] {
    const out: { sha: string; mtimeMs: number }[] = [];
    const base = join(this.dir, kind);
    for (const prefix of readdirSync(base)) {
      if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
      for (const sha of readdirSync(join(base, prefix))) {
        if (!/^[0-9a-f]{64}$/.test(sha)) continue;
        const st = statSync(join(base, prefix, sha), { throwIfNoEntry: false });
        if (st) out.push({ sha, mtimeMs: st.mtimeMs });
      }
    }
    return out;
  }

  /** Half-written temporary files older than `before` (left by a process killed mid-write). */
  removeStaleTemp(before: number): number {
    let n = 0;
    for (const name of readdirSync(join(this.dir, "tmp"))) {
      const p = join(this.dir, "tmp", name);
      const st = statSync(p, { throwIfNoEntry: false });
      if (st && st.mtimeMs < before) (rmSync(p, { force: true }), n++);
    }
    return n;
  }
}

/** How long a signed URL is good for: a staging's upload URL must outlive the build (15 min at most). */
export const SIGNED_URL_TTL_MS = 15 * 60_000;
/** How far a signer's clock may run ahead of a verifier's (a health manager on another host signs too). */
const CLOCK_SKEW_MS = 60_000;

/**
 * Signs and checks URLs handed to agents: HMAC-SHA256 over method, path and expiry. A URL whose expiry
 * lies further ahead than any this platform signs is refused, so even a forged or leaked signature is
 * good for minutes, never for years.
 */
export class UrlSigner {
  constructor(private readonly secret: string, private readonly baseUrl: string, private readonly ttlMs = SIGNED_URL_TTL_MS) {}

  private mac(method: string, path: string, expires: number): string {
    return createHmac("sha256", this.secret).update(`${method} ${path} ${expires}`).digest("hex");
  }

  sign(method: "GET" | "PUT", path: string, now = Date.now()): string {
    const expires = now + this.ttlMs;
    return `${this.baseUrl}${path}?expires=${expires}&signature=${this.mac(method, path, expires)}`;
  }

  verify(method: string, path: string, expires: string | null, signature: string | null, now = Date.now()): boolean {
    if (!expires || !signature || !/^\d+$/.test(expires) || !/^[0-9a-f]{64}$/.test(signature)) return false;
    const at = Number(expires);
    if (at < now || at > now + this.ttlMs + CLOCK_SKEW_MS) return false;
    const want = Buffer.from(this.mac(method, path, at), "hex");
    return timingSafeEqual(want, Buffer.from(signature, "hex"));
  }
}
