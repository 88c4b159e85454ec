import { describe, expect, test } from "bun:test";
import { checkTar, checkTarGz, PackageRejected, TarScanner } from "./tar-check.ts";

/** A minimal ustar writer for test fixtures (checksums included, as tar writes them). */
export function tar(entries: { name: string; type?: string; link?: string; data?: string; size?: number; checksum?: "bad" }[], end = true): Uint8Array {
  const blocks: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const e of entries) {
    const h = new Uint8Array(512);
    h.set(enc.encode(e.name).subarray(0, 100), 0);
    h.set(enc.encode("0000644\0"), 100);
    const data = enc.encode(e.data ?? "");
    h.set(enc.encode((e.size ?? data.length).toString(8).padStart(11, "0") + "\0"), 124);
    h[156] = (e.type ?? "0").charCodeAt(0);
    if (e.link) h.set(enc.encode(e.link), 157);
    h.set(enc.encode("ustar\0"), 257);
    h.fill(32, 148, 156);
    let sum = h.reduce((n, b) => n + b, 0);
    if (e.checksum === "bad") sum += 1;
    h.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
    blocks.push(h);
    const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
    padded.set(data);
    blocks.push(padded);
  }
  if (end) blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let off = 0;
  for (const b of blocks) (out.set(b, off), (off += b.length));
  return out;
}

const pax = (records: Record<string, string>) =>
  Object.entries(records).map(([k, v]) => {
    const body = ` ${k}=${v}\n`;
    let len = body.length + 2;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    return `${len}${body}`;
  }).join("");

describe("package checks", () => {
  test("accepts an ordinary app", () => {
    expect(checkTar(tar([{ name: "./index.ts", data: "hi" }, { name: "./lib/", type: "5" }, { name: "./lib/link", type: "2", link: "../index.ts" }])).entries).toBe(3);
  });
  test("refuses entries that escape", () => {
    expect(() => checkTar(tar([{ name: "../evil" }]))).toThrow(PackageRejected);
    expect(() => checkTar(tar([{ name: "/etc/passwd" }]))).toThrow(/outside/);
    expect(() => checkTar(tar([{ name: "a/../../b" }]))).toThrow(/outside/);
    expect(() => checkTar(tar([{ name: "link", type: "2", link: "/etc" }]))).toThrow(/symlink/);
    expect(() => checkTar(tar([{ name: "x/link", type: "2", link: "../../up" }]))).toThrow(/symlink/);
    expect(() => checkTar(tar([{ name: "h", type: "1", link: "../x" }]))).toThrow(/hard link/);
    expect(() => checkTar(tar([{ name: "dev", type: "3" }]))).toThrow(/device/);
  });
  test("long names and links are read as tar reads them (pax, GNU L and K records)", () => {
    expect(() => checkTar(tar([{ name: "././@LongLink", type: "L", data: "../evil\0" }, { name: "harmless" }]))).toThrow(/evil.*outside/);
    expect(() => checkTar(tar([{ name: "././@LongLink", type: "K", data: "/etc/shadow\0" }, { name: "l", type: "2", link: "ok" }]))).toThrow(/symlink/);
    expect(() => checkTar(tar([{ name: "PaxHeader", type: "x", data: pax({ linkpath: "../../x" }) }, { name: "l", type: "2", link: "ok" }]))).toThrow(/symlink/);
    expect(() => checkTar(tar([{ name: "g", type: "g", data: pax({ path: "x" }) }, { name: "a" }]))).toThrow(/global/);
  });
  test("a pax size moves the next header where tar finds it", () => {
    // the header says 0 bytes, the pax record 512: the block after is data, not an entry to check
    const t = tar([{ name: "PaxHeader", type: "x", data: pax({ size: "512" }) }, { name: "a" }, { name: "../hidden-in-data" }]);
    expect(checkTar(t).entries).toBe(1);
    // and the other way round: what tar reads as a header is checked
    const hidden = tar([{ name: "PaxHeader", type: "x", data: pax({ size: "0" }) }, { name: "a", data: "x".repeat(10), size: 0 }]);
    expect(() => checkTar(hidden)).toThrow(/corrupt|truncated/);
  });
  test("a header with a bad checksum is refused, not skipped (tar would skip it and read on)", () => {
    expect(() => checkTar(tar([{ name: "cover", size: 512, checksum: "bad" }, { name: "../evil" }]))).toThrow(/corrupt tar header/);
  });
  test("unknown entry types and truncation are refused", () => {
    expect(() => checkTar(tar([{ name: "sparse", type: "S" }]))).toThrow(/type "S"/);
    expect(() => checkTar(tar([{ name: "a", data: "x".repeat(600) }], false).subarray(0, 700))).toThrow(/truncated/);
  });
  test("the scanner gives the same answer fed a byte at a time", () => {
    const t = tar([{ name: "a", data: "x".repeat(1000) }, { name: "PaxHeader", type: "x", data: pax({ path: "long/".repeat(40) + "f" }) }, { name: "short", data: "y" }]);
    const s = new TarScanner();
    for (let i = 0; i < t.length; i++) s.push(t.subarray(i, i + 1));
    expect(s.end()).toEqual(checkTar(t));
    expect(checkTar(t)).toEqual({ entries: 2, bytes: 1001 });
  });
  test("gzip required, with a size cap", async () => {
    await expect(checkTarGz(new TextEncoder().encode("not gzip"), 1e6)).rejects.toThrow(/gzip/);
    const gz = Bun.gzipSync(tar([{ name: "big", data: "x".repeat(5000) }]) as Uint8Array<ArrayBuffer>);
    await expect(checkTarGz(gz, 1000)).rejects.toThrow(/larger/);
    expect((await checkTarGz(gz, 1e6)).bytes).toBe(5000);
    await expect(checkTarGz(gz.subarray(0, gz.length - 20), 1e6)).rejects.toThrow(PackageRejected);
  });
  test("a gzip bomb is refused at the cap with bounded memory (issue 7)", async () => {
    // 300 MiB of zeros behind one tar header, ~300 KB gzipped, against a 1 MiB cap: the audit saw
    // RSS go from 28 to 627 MiB before the refusal when the whole thing was gunzipped first
    const size = 300 * 1024 * 1024;
    const raw = new Uint8Array(512 + size + 1024);
    raw.set(tar([{ name: "big", size }], false).subarray(0, 512));
    const gz = Bun.gzipSync(raw);
    expect(gz.length).toBeLessThan(1024 * 1024);
    Bun.gc(true);
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 1);
    const err = await checkTarGz(gz, 1024 * 1024).catch((e) => e);
    clearInterval(sampler);
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(err).toBeInstanceOf(PackageRejected);
    expect(err.message).toBe("the unpacked package is larger than the limit of 1048576 bytes");
    expect((peak - before) / 1048576).toBeLessThan(32);
  });
});
