import { describe, expect, test } from "bun:test";
import { paxRecords, ustarArchive } from "../../archive/tar-fixtures.ts";
import { checkTar, checkTarGz, PackageRejected, TarScanner } from "./tar-check.ts";

describe("package checks", () => {
  test("accepts an ordinary app", () => {
    expect(checkTar(ustarArchive([{ name: "./index.ts", data: "hi" }, { name: "./lib/", type: "5" }, { name: "./lib/link", type: "2", linkname: "../index.ts" }])).entries).toBe(3);
  });
  test("refuses entries that escape", () => {
    expect(() => checkTar(ustarArchive([{ name: "../evil" }]))).toThrow(PackageRejected);
    expect(() => checkTar(ustarArchive([{ name: "/etc/passwd" }]))).toThrow(/outside/);
    expect(() => checkTar(ustarArchive([{ name: "a/../../b" }]))).toThrow(/outside/);
    expect(() => checkTar(ustarArchive([{ name: "link", type: "2", linkname: "/etc" }]))).toThrow(/symlink/);
    expect(() => checkTar(ustarArchive([{ name: "x/link", type: "2", linkname: "../../up" }]))).toThrow(/symlink/);
    expect(() => checkTar(ustarArchive([{ name: "h", type: "1", linkname: "../x" }]))).toThrow(/hard link/);
    expect(() => checkTar(ustarArchive([{ name: "dev", type: "3" }]))).toThrow(/device/);
  });
  test("long names and links are read as tar reads them (pax, GNU L and K records)", () => {
    expect(() => checkTar(ustarArchive([{ name: "././@LongLink", type: "L", data: "../evil\0" }, { name: "harmless" }]))).toThrow(/evil.*outside/);
    expect(() => checkTar(ustarArchive([{ name: "././@LongLink", type: "K", data: "/etc/shadow\0" }, { name: "l", type: "2", linkname: "ok" }]))).toThrow(/symlink/);
    expect(() => checkTar(ustarArchive([{ name: "PaxHeader", type: "x", data: paxRecords({ linkpath: "../../x" }) }, { name: "l", type: "2", linkname: "ok" }]))).toThrow(/symlink/);
    expect(() => checkTar(ustarArchive([{ name: "g", type: "g", data: paxRecords({ path: "x" }) }, { name: "a" }]))).toThrow(/global/);
  });
  test("a pax size moves the next header where tar finds it", () => {
    // the header says 0 bytes, the pax record 512: the block after is data, not an entry to check
    const t = ustarArchive([{ name: "PaxHeader", type: "x", data: paxRecords({ size: "512" }) }, { name: "a" }, { name: "../hidden-in-data" }]);
    expect(checkTar(t).entries).toBe(1);
    // and the other way round: what tar reads as a header is checked
    const hidden = ustarArchive([{ name: "PaxHeader", type: "x", data: paxRecords({ size: "0" }) }, { name: "a", data: "x".repeat(10), size: 0 }]);
    expect(() => checkTar(hidden)).toThrow(/corrupt|truncated/);
  });
  test("a header with a bad checksum is refused, not skipped (tar would skip it and read on)", () => {
    expect(() => checkTar(ustarArchive([{ name: "cover", size: 512, checksum: "bad" }, { name: "../evil" }]))).toThrow(/corrupt tar header/);
  });
  test("unknown entry types and truncation are refused", () => {
    expect(() => checkTar(ustarArchive([{ name: "sparse", type: "S" }]))).toThrow(/type "S"/);
    expect(() => checkTar(ustarArchive([{ name: "a", data: "x".repeat(600) }], false).subarray(0, 700))).toThrow(/truncated/);
  });
  test("an unreadable archive is refused in the controller's words (archive/tar-reader.ts reads it)", () => {
    const message = (t: Uint8Array) => {
      try {
        checkTar(t, { maxEntries: 2 });
      } catch (err) {
        expect(err).toBeInstanceOf(PackageRejected);
        return (err as Error).message;
      }
      return "accepted";
    };
    expect(message(ustarArchive([{ name: "a", data: "x" }, { name: "b", checksum: "bad" }]))).toBe("corrupt tar header at byte 1024");
    expect(message(ustarArchive([{ name: "a" }], false).subarray(0, 300))).toBe("the archive is truncated or corrupt");
    expect(message(ustarArchive([{ name: "PaxHeader", type: "x", data: paxRecords({ size: "-1" }) }, { name: "a" }]))).toBe("the archive is truncated or corrupt");
    expect(message(ustarArchive([{ name: "g", type: "g", data: paxRecords({ size: "9" }) }]))).toBe('a global pax header sets "size"; pack the app with plain tar');
    expect(message(ustarArchive([{ name: "L", type: "L", size: 2 ** 21 }], false))).toBe("a L header record of 2097152 bytes is larger than the 1048576 allowed");
    expect(message(ustarArchive([{ name: "a" }, { name: "b" }, { name: "c" }]))).toBe("more than 2 entries");
  });
  test("a relative symlink at the top of the package is accepted (issue 7)", () => {
    // `tar -C app .` makes "./current -> lib/x.js"; it was refused as pointing outside the app directory
    expect(checkTar(ustarArchive([{ name: "./lib/x.js", data: "x" }, { name: "./current", type: "2", linkname: "lib/x.js" }, { name: "top", type: "2", linkname: "lib" }])).entries).toBe(3);
    expect(() => checkTar(ustarArchive([{ name: "./up", type: "2", linkname: "../x" }]))).toThrow(/symlink "\.\/up" -> "\.\.\/x" points outside/);
  });
  test("the scanner gives the same answer fed a byte at a time", () => {
    const t = ustarArchive([{ name: "a", data: "x".repeat(1000) }, { name: "PaxHeader", type: "x", data: paxRecords({ path: "long/".repeat(40) + "f" }) }, { name: "short", data: "y" }]);
    const s = new TarScanner();
    for (let i = 0; i < t.length; i++) s.push(t.subarray(i, i + 1));
    expect(s.end()).toEqual(checkTar(t));
    expect(checkTar(t)).toEqual({ entries: 2, bytes: 1001 });
  });
  test("gzip required, with a size cap", async () => {
    await expect(checkTarGz(new TextEncoder().encode("not gzip"), 1e6)).rejects.toThrow(/gzip/);
    const gz = Bun.gzipSync(ustarArchive([{ name: "big", data: "x".repeat(5000) }]) as Uint8Array<ArrayBuffer>);
    await expect(checkTarGz(gz, 1000)).rejects.toThrow(/larger/);
    expect((await checkTarGz(gz, 1e6)).bytes).toBe(5000);
    await expect(checkTarGz(gz.subarray(0, gz.length - 20), 1e6)).rejects.toThrow(PackageRejected);
  });
  test("a gzip bomb is refused at the cap with bounded memory (issue 7)", async () => {
    // 300 MiB of zeros behind one tar header, ~300 KB gzipped, against a 1 MiB cap: the audit saw
    // RSS go from 28 to 627 MiB before the refusal when the whole thing was gunzipped first
    const size = 300 * 1024 * 1024;
    const raw = new Uint8Array(512 + size + 1024);
    raw.set(ustarArchive([{ name: "big", size }], false).subarray(0, 512));
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
