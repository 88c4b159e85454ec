import { describe, expect, test } from "bun:test";
import { checkTar, checkTarGz, PackageRejected } from "./tar-check.ts";

/** A minimal ustar writer for test fixtures. */
function tar(entries: { name: string; type?: string; link?: string; data?: string }[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const e of entries) {
    const h = new Uint8Array(512);
    h.set(enc.encode(e.name).subarray(0, 100), 0);
    h.set(enc.encode("0000644\0"), 100);
    const data = enc.encode(e.data ?? "");
    h.set(enc.encode(data.length.toString(8).padStart(11, "0") + "\0"), 124);
    h[156] = (e.type ?? "0").charCodeAt(0);
    if (e.link) h.set(enc.encode(e.link), 157);
    h.set(enc.encode("ustar\0"), 257);
    blocks.push(h);
    const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
    padded.set(data);
    blocks.push(padded);
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let off = 0;
  for (const b of blocks) (out.set(b, off), (off += b.length));
  return out;
}

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
  test("gzip required, with a size cap", () => {
    expect(() => checkTarGz(new TextEncoder().encode("not gzip"), 1e6)).toThrow(/gzip/);
    const gz = Bun.gzipSync(tar([{ name: "big", data: "x".repeat(5000) }]) as Uint8Array<ArrayBuffer>);
    expect(() => checkTarGz(gz, 1000)).toThrow(/larger/);
    expect(checkTarGz(gz, 1e6).bytes).toBe(5000);
  });
});
