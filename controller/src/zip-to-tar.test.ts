import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync, chmodSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateRawSync } from "node:zlib";
import { TarReader } from "../../archive/tar-reader.ts";
import { checkTarGz, PackageRejected } from "./tar-check.ts";
import { isZip, readZipDirectory, tarHeader, zipToTarGz } from "./zip-to-tar.ts";

const LIMITS = { maxBytes: 10 * 1024 * 1024, maxEntries: 1000 };

/** A minimal zip writer: deflated entries, optionally lying about their unpacked size. */
function zip(entries: { name: string; data: Uint8Array; declaredSize?: number; unixMode?: number }[]): Uint8Array {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = enc.encode(e.name);
    const packed = deflateRawSync(e.data);
    const size = e.declaredSize ?? e.data.length;
    const l = new DataView(new ArrayBuffer(30));
    l.setUint32(0, 0x04034b50, true);
    l.setUint16(4, 20, true);
    l.setUint16(8, 8, true);
    l.setUint32(18, packed.length, true);
    l.setUint32(22, size, true);
    l.setUint16(26, name.length, true);
    const local = Buffer.concat([new Uint8Array(l.buffer), name, packed]);
    const c = new DataView(new ArrayBuffer(46));
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, 0x0314, true); // made by unix
    c.setUint16(6, 20, true);
    c.setUint16(10, 8, true);
    c.setUint16(14, 0x5a21, true);
    c.setUint32(20, packed.length, true);
    c.setUint32(24, size, true);
    c.setUint16(28, name.length, true);
    c.setUint32(38, ((e.unixMode ?? 0o100644) << 16) >>> 0, true);
    c.setUint32(42, offset, true);
    centrals.push(Buffer.concat([new Uint8Array(c.buffer), name]));
    locals.push(local);
    offset += local.length;
  }
  const cd = Buffer.concat(centrals);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, cd.length, true);
  end.setUint32(16, offset, true);
  return Buffer.concat([...locals, cd, new Uint8Array(end.buffer)]);
}

async function untar(gz: Uint8Array): Promise<string> {
  const d = mkdtempSync(join(tmpdir(), "skiff-unzip-t-"));
  try {
    await Bun.write(join(d, "p.tar.gz"), gz);
    const p = Bun.spawnSync(["tar", "-tvzf", join(d, "p.tar.gz")]);
    expect(p.exitCode, p.stderr.toString()).toBe(0);
    return p.stdout.toString();
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}

describe("zip uploads", () => {
  test("a zip made by `zip` becomes a tar that GNU tar lists, with modes, dirs and symlinks", async () => {
    const d = mkdtempSync(join(tmpdir(), "skiff-zip-t-"));
    mkdirSync(join(d, "lib"));
    writeFileSync(join(d, "index.ts"), "console.log('zip')");
    writeFileSync(join(d, "lib", "run.sh"), "#!/bin/sh\n");
    chmodSync(join(d, "lib", "run.sh"), 0o755);
    writeFileSync(join(d, "lib", "n".repeat(120)), "long name");
    symlinkSync("../index.ts", join(d, "lib", "link"));
    Bun.spawnSync(["zip", "-q", "-r", "-y", join(d, "app.zip"), "index.ts", "lib"], { cwd: d });
    const z = new Uint8Array(await Bun.file(join(d, "app.zip")).arrayBuffer());
    rmSync(d, { recursive: true, force: true });
    expect(isZip(z)).toBe(true);
    const gz = await zipToTarGz(z, LIMITS);
    expect((await checkTarGz(gz, LIMITS.maxBytes)).entries).toBe(5);
    const listing = await untar(gz);
    expect(listing).toMatch(/-rw-r--r-- .* index\.ts/);
    expect(listing).toMatch(/-rwxr-xr-x .* lib\/run\.sh/);
    expect(listing).toMatch(/drwxr-xr-x .* lib\//);
    expect(listing).toMatch(/lrwxrwxrwx .* lib\/link -> \.\.\/index\.ts/);
    expect(listing).toContain("lib/" + "n".repeat(120));
  });

  test("a zip bomb is refused from its directory before anything is inflated (issue 7)", async () => {
    // 300 MiB of zeros, ~300 KB zipped, against a 10 MiB cap
    const z = zip([{ name: "zeros", data: new Uint8Array(300 * 1024 * 1024) }]);
    expect(z.length).toBeLessThan(1024 * 1024);
    Bun.gc(true);
    const before = process.memoryUsage().rss;
    const err = await zipToTarGz(z, LIMITS).catch((e) => e);
    expect(err).toBeInstanceOf(PackageRejected);
    expect(err.message).toBe("the unpacked package is larger than the limit of 10485760 bytes");
    expect((process.memoryUsage().rss - before) / 1048576).toBeLessThan(32);
  });

  test("an entry that lies about its size is stopped as soon as it passes what it declared (issue 7)", async () => {
    const z = zip([{ name: "liar", data: new Uint8Array(300 * 1024 * 1024), declaredSize: 1000 }]);
    Bun.gc(true);
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 1);
    const err = await zipToTarGz(z, LIMITS).catch((e) => e);
    clearInterval(sampler);
    expect(err).toBeInstanceOf(PackageRejected);
    expect(err.message).toContain(`"liar" unpacks to more than the 1000 bytes it declares`);
    expect((Math.max(peak, process.memoryUsage().rss) - before) / 1048576).toBeLessThan(32);
    // and one that gives less than it declared is corrupt too
    await expect(zipToTarGz(zip([{ name: "short", data: new Uint8Array(10), declaredSize: 20 }]), LIMITS)).rejects.toThrow(/10 bytes, not the 20/);
  });

  test("escaping names, devices and too many entries are refused", () => {
    expect(() => readZipDirectory(zip([{ name: "../evil", data: new Uint8Array(1) }]), LIMITS)).toThrow(/outside/);
    expect(() => readZipDirectory(zip([{ name: "/etc/x", data: new Uint8Array(1) }]), LIMITS)).toThrow(/outside/);
    expect(() => readZipDirectory(zip([{ name: "fifo", data: new Uint8Array(0), unixMode: 0o010644 }]), LIMITS)).toThrow(/device, fifo/);
    const many = zip(Array.from({ length: 5 }, (_, i) => ({ name: `f${i}`, data: new Uint8Array(1) })));
    expect(() => readZipDirectory(many, { ...LIMITS, maxEntries: 4 })).toThrow(/more than 4 entries/);
    expect(() => readZipDirectory(new Uint8Array([0x50, 0x4b, 3, 4, 0, 0]), LIMITS)).toThrow(/central directory/);
  });

  test("an escaping symlink target survives conversion and is refused by the tar check", async () => {
    const gz = await zipToTarGz(zip([{ name: "l", data: new TextEncoder().encode("/etc/passwd"), unixMode: 0o120777 }]), LIMITS);
    await expect(checkTarGz(gz, LIMITS.maxBytes)).rejects.toThrow(/symlink "l" -> "\/etc\/passwd"/);
  });

  test("tar headers carry valid checksums and pax records for long names", async () => {
    const h = tarHeader({ name: "é/" + "x".repeat(150), type: "0", mode: 0o644, size: 0, mtime: 0 });
    expect(h.length).toBe(512 * 3);
    expect(String.fromCharCode(h[156]!)).toBe("x");
    expect(await untar(Bun.gzipSync(Buffer.concat([h, new Uint8Array(1024)])))).toContain("é/" + "x".repeat(150));
  });

  test("a non-ASCII name in a zip reaches the agent's tar reader as it was (issue 7)", async () => {
    // the pax record's byte length was applied to decoded text: "café.txt" unpacked as "café.txt\n"
    const enc = new TextEncoder();
    const gz = await zipToTarGz(zip([{ name: "café.txt", data: enc.encode("hi") }, { name: "ü/" + "x".repeat(120), data: enc.encode("x") }]), LIMITS);
    const names: string[] = [];
    const reader = new TarReader({ entry: (e) => void names.push(e.name) });
    reader.push(Bun.gunzipSync(gz as Uint8Array<ArrayBuffer>)).finish();
    expect(names).toEqual(["café.txt", "ü/" + "x".repeat(120)]);
  });
});
