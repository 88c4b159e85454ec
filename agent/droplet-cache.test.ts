import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DropletCache, DropletError, sha256Hex } from "./droplet-cache.ts";

let server: ReturnType<typeof Bun.serve>;
let hits = 0;
const blobs = new Map<string, Uint8Array>();
const dir = mkdtempSync(join(tmpdir(), "skiff-droplets-"));

beforeAll(() => {
  server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch(req) {
      hits++;
      const path = new URL(req.url).pathname.slice(1);
      if (path.startsWith("chunked")) {
        // no content-length: only counting what arrives can enforce the cap; "chunked-cut" dies midway
        const cut = path === "chunked-cut";
        let sent = 0;
        return new Response(
          new ReadableStream({
            async pull(c) {
              if (sent >= 10) return c.close();
              if (cut && sent === 3) return c.error(new Error("connection lost"));
              c.enqueue(new Uint8Array(1000).fill(65 + sent++));
              await Bun.sleep(1);
            },
          }),
        );
      }
      const b = blobs.get(path);
      return b ? new Response(b as Uint8Array<ArrayBuffer>) : new Response("no", { status: 404 });
    },
  });
});
afterAll(() => {
  server.stop(true);
  rmSync(dir, { recursive: true, force: true });
});

const add = (name: string, text: string) => {
  const bytes = new TextEncoder().encode(text);
  blobs.set(name, bytes);
  return { uri: `http://127.0.0.1:${server.port}/${name}`, sha: sha256Hex(bytes) };
};

describe("DropletCache", () => {
  test("downloads once (concurrent gets share it), then serves from cache", async () => {
    const cache = new DropletCache(join(dir, "a"), 1 << 20);
    const d = add("one", "droplet one");
    hits = 0;
    const [x, y] = await Promise.all([cache.get(d.sha, d.uri), cache.get(d.sha, d.uri)]);
    expect(readFileSync(x, "utf8")).toBe("droplet one");
    expect(y).toBe(x);
    await cache.get(d.sha, d.uri);
    expect(hits).toBe(1);
    // a new cache over the same dir reads the file, not the network
    await new DropletCache(join(dir, "a"), 1 << 20).get(d.sha, d.uri);
    expect(hits).toBe(1);
  });

  test("refuses bytes whose sha256 differs, and keeps nothing", async () => {
    const cache = new DropletCache(join(dir, "b"), 1 << 20);
    const d = add("two", "droplet two");
    const wrong = "f".repeat(64);
    await expect(cache.get(wrong, d.uri)).rejects.toThrow(/sha256 mismatch/);
    expect(existsSync(cache.pathOf(wrong))).toBe(false);
    await expect(cache.get("nope", d.uri)).rejects.toThrow(DropletError);
    await expect(cache.get(wrong, `http://127.0.0.1:${server.port}/missing`)).rejects.toThrow(/answered 404/);
  });

  test("caps the size and evicts the least recently used unused droplets", async () => {
    const small = new DropletCache(join(dir, "c"), 4);
    const d = add("big", "more than four bytes");
    await expect(small.get(d.sha, d.uri)).rejects.toThrow(/over the 4 byte cap/);
    const cache = new DropletCache(join(dir, "d"), 1 << 20, 2);
    const shas = [];
    for (const n of [1, 2, 3]) {
      const x = add(`e${n}`, `droplet ${n}`);
      await cache.get(x.sha, x.uri);
      shas.push(x.sha);
      await Bun.sleep(5);
    }
    cache.prune(new Set([shas[0]!]));
    expect(shas.map((s) => existsSync(cache.pathOf(s)))).toEqual([true, false, true]);
  });

  // Downloads were buffered whole (arrayBuffer) and up to 64 droplets of 8 MiB stayed in memory.
  test("streams a download to disk while hashing: the cap holds without a content-length, and a failed download leaves no file (issue 6)", async () => {
    const cache = new DropletCache(join(dir, "f"), 4096);
    const uri = (p: string) => `http://127.0.0.1:${server.port}/${p}`;
    await expect(cache.get("a".repeat(64), uri("chunked"))).rejects.toThrow(/over the 4096 byte cap/);
    const big = new DropletCache(join(dir, "g"), 1 << 20);
    await expect(big.get("b".repeat(64), uri("chunked-cut"))).rejects.toThrow(DropletError);
    const whole = new Uint8Array(10_000);
    for (let k = 0; k < 10; k++) whole.fill(65 + k, k * 1000, (k + 1) * 1000);
    const path = await big.get(sha256Hex(whole), uri("chunked"));
    expect(new Uint8Array(readFileSync(path))).toEqual(whole);
    for (const d of ["f", "g"]) expect(readdirSync(join(dir, d)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    // nothing is kept in memory: a file that vanished is downloaded again
    rmSync(path);
    hits = 0;
    expect(readFileSync(await big.get(sha256Hex(whole), uri("chunked")))).toEqual(Buffer.from(whole));
    expect(hits).toBe(1);
  });
});
