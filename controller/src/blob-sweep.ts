// Deletes blobs no row points at any more: droplets pruned beyond the last few kept for rollback,
// packages replaced by a newer upload, apps deleted. A blob younger than the grace period is always
// spared, so one just written (an upload whose row is still to come, a staging in progress) is safe:
// `Blobstore.put` refreshes the time of a blob it finds already there.

import type { Logger } from "../../bus/index.ts";
import type { BlobKind, Blobstore } from "./blobstore.ts";
import type { Store } from "./db/store.ts";

/** Longer than any staging (15 min) or upload: a blob this young may be about to be referenced. */
export const BLOB_GRACE_MS = 60 * 60_000;
export const SWEEP_INTERVAL_MS = 10 * 60_000;

/** The blobs to delete: on disk, not referenced, and last written before `before`. Pure. */
export function unreferenced(onDisk: readonly { sha: string; mtimeMs: number }[], referenced: ReadonlySet<string>, before: number): string[] {
  return onDisk.filter((b) => !referenced.has(b.sha) && b.mtimeMs < before).map((b) => b.sha);
}

export interface SweepResult {
  droplets: number;
  packages: number;
  temp: number;
}

export class BlobSweeper {
  private timer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<SweepResult> | undefined;

  constructor(
    private readonly deps: {
      store: Store; blobs: Blobstore; log: Logger;
      /** blobs in use by work with no row yet (staging tasks) */
      inUse: () => { droplets: Iterable<string>; packages: Iterable<string> };
    },
    private readonly opts: { intervalMs?: number; graceMs?: number } = {},
  ) {}

  start(): void {
    const every = this.opts.intervalMs ?? SWEEP_INTERVAL_MS;
    this.timer = setInterval(() => void this.sweep().catch((err) => this.deps.log.error("blob sweep failed", { error: err })), every);
    this.timer.unref?.();
    void this.sweep().catch((err) => this.deps.log.error("blob sweep failed", { error: err }));
  }

  stop(): Promise<unknown> {
    if (this.timer) clearInterval(this.timer);
    return this.running ?? Promise.resolve();
  }

  /** One sweep (never two at once). */
  sweep(now = Date.now()): Promise<SweepResult> {
    this.running ??= this.run(now).finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(now: number): Promise<SweepResult> {
    const { store, blobs, log } = this.deps;
    const before = now - (this.opts.graceMs ?? BLOB_GRACE_MS);
    const refs = await store.referencedBlobs();
    const busy = this.deps.inUse();
    for (const s of busy.droplets) refs.droplets.add(s);
    for (const s of busy.packages) refs.packages.add(s);
    const gone = (kind: BlobKind, keep: Set<string>) => {
      const doomed = unreferenced(blobs.list(kind), keep, before);
      for (const sha of doomed) blobs.remove(kind, sha);
      return doomed.length;
    };
    const result = { droplets: gone("droplets", refs.droplets), packages: gone("packages", refs.packages), temp: blobs.removeStaleTemp(before) };
    if (result.droplets || result.packages || result.temp) log.info("blobs swept", { ...result });
    return result;
  }
}
