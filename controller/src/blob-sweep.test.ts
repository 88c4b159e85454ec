import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { memoryLogger } from "../../bus/index.ts";
import { BlobSweeper, unreferenced } from "./blob-sweep.ts";
import { Blobstore } from "./blobstore.ts";
import type { Store } from "./db/store.ts";

const dir = mkdtempSync(join(tmpdir(), "skiff-sweep-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const HOUR = 3600_000;
const age = (blobs: Blobstore, kind: "droplets" | "packages", sha: string, ms: number) => {
  const t = new Date(Date.now() - ms);
  utimesSync(blobs.path(kind, sha), t, t);
};

describe("blob sweep (issue 7)", () => {
  test("unreferenced: not referenced and older than the cutoff", () => {
    const disk = [{ sha: "a", mtimeMs: 10 }, { sha: "b", mtimeMs: 10 }, { sha: "c", mtimeMs: 100 }];
    expect(unreferenced(disk, new Set(["a"]), 50)).toEqual(["b"]);
  });

  test("deletes old blobs no row and no staging task points at; spares referenced, busy and young ones", async () => {
    const blobs = new Blobstore(join(dir, "b1"));
    const enc = (s: string) => new TextEncoder().encode(s);
    const [kept, pruned, busy, young] = await Promise.all(["kept", "pruned", "busy", "young"].map((s) => blobs.put("droplets", enc(s))));
    const [pkgKept, pkgOld] = await Promise.all(["p-kept", "p-old"].map((s) => blobs.put("packages", enc(s))));
    for (const sha of [kept!, pruned!, busy!]) age(blobs, "droplets", sha, 2 * HOUR);
    for (const sha of [pkgKept!, pkgOld!]) age(blobs, "packages", sha, 2 * HOUR);
    writeFileSync(join(dir, "b1/tmp/half-written"), "x");
    utimesSync(join(dir, "b1/tmp/half-written"), new Date(Date.now() - 2 * HOUR), new Date(Date.now() - 2 * HOUR));
    const store = { referencedBlobs: async () => ({ droplets: new Set([kept!]), packages: new Set([pkgKept!]) }) } as unknown as Store;
    const sweeper = new BlobSweeper({ store, blobs, log: memoryLogger(), inUse: () => ({ droplets: [busy!], packages: [] }) });
    expect(await sweeper.sweep()).toEqual({ droplets: 1, packages: 1, temp: 1 });
    expect([kept, pruned, busy, young].map((s) => blobs.has("droplets", s!))).toEqual([true, false, true, true]);
    expect([pkgKept, pkgOld].map((s) => blobs.has("packages", s!))).toEqual([true, false]);
  });

  test("storing a blob that is already there makes it young again (its row is about to come)", async () => {
    const blobs = new Blobstore(join(dir, "b2"));
    const sha = await blobs.put("packages", new TextEncoder().encode("same"));
    age(blobs, "packages", sha, 2 * HOUR);
    expect(await blobs.put("packages", new TextEncoder().encode("same"))).toBe(sha);
    expect(Date.now() - statSync(blobs.path("packages", sha)).mtimeMs).toBeLessThan(60_000);
    const store = { referencedBlobs: async () => ({ droplets: new Set<string>(), packages: new Set<string>() }) } as unknown as Store;
    await new BlobSweeper({ store, blobs, log: memoryLogger(), inUse: () => ({ droplets: [], packages: [] }) }).sweep();
    expect(blobs.has("packages", sha)).toBe(true);
  });
});
