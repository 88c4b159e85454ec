import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { execFileSync } from "node:child_process";
import { paxRecords, ustarArchive } from "../archive/tar-fixtures.ts";
import { extractTarGz, resolveInside, safeSegments, symlinkStaysInside, UnsafeArchiveError, writeTar } from "./tarball.ts";

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "skiff-tar-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const gz = (entries: Parameters<typeof writeTar>[0]) => new Uint8Array(gzipSync(writeTar(entries)));

/** Every symlink under `root` whose real path (where it exists) is outside `root`. */
function linksLeadingOut(root: string): string[] {
  if (!existsSync(root)) return [];
  const realRoot = realpathSync(root);
  const out: string[] = [];
  for (const name of readdirSync(root, { recursive: true }) as string[]) {
    const abs = join(root, name);
    if (!lstatSync(abs).isSymbolicLink()) continue;
    try {
      const real = realpathSync(abs);
      if (real !== realRoot && !real.startsWith(realRoot + "/")) out.push(`${name} -> ${real}`);
    } catch {}
  }
  return out;
}

// Link chains whose every target stays inside as text, but that resolve outside through each other
// (the audit's: a/b/c -> ../../z, then a link through a/b/c/../../..), in both orders.
const chainFirst: Parameters<typeof writeTar>[0] = [
  { name: "app/", type: "5" },
  { name: "z/", type: "5" },
  { name: "a/b/", type: "5" },
  { name: "a/b/c", type: "2", linkname: "../../z" },
  { name: "app/x", type: "2", linkname: "../a/b/c/../../.." },
];
const chainLast: Parameters<typeof writeTar>[0] = [
  { name: "app/x", type: "2", linkname: "../a/b/c/../../.." },
  { name: "z/", type: "5" },
  { name: "a/b/", type: "5" },
  { name: "a/b/c", type: "2", linkname: "../../z" },
];

describe("extractTarGz", () => {
  test("unpacks files, directories, modes and inside symlinks", async () => {
    const root = join(tmp(), "out");
    const r = await extractTarGz(
      gz([
        { name: "./app/", type: "5" },
        { name: "./app/run.sh", data: "#!/bin/sh\n", mode: 0o4777 },
        { name: "./app/lib/x.txt", data: "x" },
        { name: "./app/current", type: "2", linkname: "lib/x.txt" },
        { name: "./app/copy.txt", type: "1", linkname: "app/lib/x.txt" },
      ]),
      root,
      { maxBytes: 1024 },
    );
    expect(r.files).toBe(3);
    expect(statSync(join(root, "app/run.sh")).mode & 0o7777).toBe(0o755);
    expect(readlinkSync(join(root, "app/current"))).toBe("lib/x.txt");
    expect(readFileSync(join(root, "app/copy.txt"), "utf8")).toBe("x");
  });

  test("reads what GNU tar writes (long names too)", async () => {
    const src = tmp();
    const long = "d".repeat(120);
    execFileSync("sh", ["-c", `mkdir -p '${src}/a/${long}' && echo hi > '${src}/a/${long}/f.txt' && ln -s f.txt '${src}/a/${long}/l'`]);
    const bytes = new Uint8Array(execFileSync("tar", ["-czf", "-", "-C", src, "."]));
    const root = join(tmp(), "out");
    await extractTarGz(bytes, root, { maxBytes: 1024 });
    expect(readFileSync(join(root, "a", long, "f.txt"), "utf8")).toBe("hi\n");
    expect(lstatSync(join(root, "a", long, "l")).isSymbolicLink()).toBe(true);
  });

  const hostile: [string, Parameters<typeof writeTar>[0]][] = [
    ["..", [{ name: "../escape", data: "x" }]],
    ["nested ..", [{ name: "a/../../escape", data: "x" }]],
    ["absolute path", [{ name: "/escape", data: "x" }]],
    ["absolute symlink", [{ name: "l", type: "2", linkname: "/etc" }]],
    ["symlink up", [{ name: "a/l", type: "2", linkname: "../../escape" }]],
    ["write through a symlink", [{ name: "l", type: "2", linkname: "." }, { name: "l/x", data: "x" }]],
    ["symlink chain", [{ name: "d", type: "2", linkname: "." }, { name: "d/l", type: "2", linkname: "../escape" }]],
    ["hard link outside", [{ name: "h", type: "1", linkname: "../escape" }]],
  ];
  test.each(hostile)("refuses %s and writes nothing outside", async (_what, entries) => {
    const parent = tmp();
    const root = join(parent, "out");
    await expect(extractTarGz(gz(entries), root, { maxBytes: 1024 })).rejects.toThrow(UnsafeArchiveError);
    expect(existsSync(join(parent, "escape"))).toBe(false);
  });

  test.each([
    ["a link through an earlier link", chainFirst],
    ["an earlier link made outward by a later one", chainLast],
    ["app itself as such a link", [{ name: "z/", type: "5" }, { name: "a/b/c/", type: "5" }, { name: "a/b/c/d", type: "2", linkname: "../../../z" }, { name: "app", type: "2", linkname: "a/b/c/d/../../.." }]],
    ["a link loop", [{ name: "l1", type: "2", linkname: "l2" }, { name: "l2", type: "2", linkname: "l1" }]],
  ] as const)("refuses %s and leaves no link leading out (issue 6)", async (_what, entries) => {
    const parent = tmp();
    const root = join(parent, "inst", "id");
    await expect(extractTarGz(gz([...entries]), root, { maxBytes: 1024 })).rejects.toThrow(UnsafeArchiveError);
    expect(linksLeadingOut(root)).toEqual([]);
  });

  test("keeps links that pass through other links and stay inside (npm's file: dependencies)", async () => {
    const root = join(tmp(), "out");
    await extractTarGz(
      gz([
        { name: "app/vendor/dep/bin.js", data: "x" },
        { name: "app/node_modules/dep", type: "2", linkname: "../vendor/dep" },
        { name: "app/node_modules/.bin/dep", type: "2", linkname: "../dep/bin.js" },
        { name: "app/self", type: "2", linkname: "node_modules/dep/../.." },
      ]),
      root,
      { maxBytes: 1024 },
    );
    expect(readFileSync(join(root, "app/node_modules/.bin/dep"), "utf8")).toBe("x");
    expect(realpathSync(join(root, "app/self"))).toBe(realpathSync(join(root, "app")));
  });

  test("caps the total size, gzip bombs included", async () => {
    await expect(extractTarGz(gz([{ name: "big", data: "x".repeat(5000) }]), join(tmp(), "o"), { maxBytes: 4096 })).rejects.toThrow(/more than 4096/);
    // all zeros: an end-of-archive marker at once, then 200 MiB that still count against the cap
    const bomb = new Uint8Array(gzipSync(new Uint8Array(200 * 1024 * 1024)));
    await expect(extractTarGz(bomb, join(tmp(), "o"), { maxBytes: 1024 })).rejects.toThrow(/unpacks to more than 1024/);
  });

  test("refuses garbage", async () => {
    await expect(extractTarGz(new Uint8Array([1, 2, 3]), join(tmp(), "o"), { maxBytes: 1024 })).rejects.toThrow(/not a gzip/);
    await expect(extractTarGz(new Uint8Array(gzipSync(new Uint8Array(512).fill(65))), join(tmp(), "o"), { maxBytes: 1024 })).rejects.toThrow(/corrupt/);
    const whole = writeTar([{ name: "f", data: "x".repeat(2000) }]);
    await expect(extractTarGz(new Uint8Array(gzipSync(whole.subarray(0, 1024))), join(tmp(), "o"), { maxBytes: 4096 })).rejects.toThrow(/truncated/);
  });

  test("refuses what the shared tar reader finds unreadable, in the agent's words", async () => {
    const refusal = (tar: Uint8Array) => extractTarGz(new Uint8Array(gzipSync(tar)), join(tmp(), "o"), { maxBytes: 4096 }).then(() => "accepted", (e: Error) => `${e.name}: ${e.message}`);
    expect(await refusal(ustarArchive([{ name: "f", data: "x" }, { name: "g", checksum: "bad" }]))).toBe("UnsafeArchiveError: corrupt tar header near byte 1024");
    expect(await refusal(ustarArchive([{ name: "PaxHeader", type: "x", data: paxRecords({ size: "x" }) }, { name: "f" }]))).toBe("UnsafeArchiveError: tar entry with an invalid size");
    expect(await refusal(ustarArchive([{ name: "././@LongLink", type: "L", size: 2 ** 21 }], false))).toBe("UnsafeArchiveError: a tar L record of 2097152 bytes");
    // stricter since the reader is shared with the controller: a header cut short at the end, and a
    // global pax record that would rename or resize every later entry
    expect(await refusal(ustarArchive([{ name: "f", data: "x" }, { name: "g" }], false).subarray(0, 1024 + 100))).toBe("UnsafeArchiveError: truncated tar entry");
    expect(await refusal(ustarArchive([{ name: "g", type: "g", data: paxRecords({ path: "x" }) }, { name: "f" }]))).toBe('UnsafeArchiveError: a global pax header sets "path"');
    expect(await refusal(ustarArchive([{ name: "a" }, { name: "b" }]))).toBe("accepted");
  });

  test("caps the number of entries", async () => {
    const three = new Uint8Array(gzipSync(ustarArchive([{ name: "a" }, { name: "b" }, { name: "c" }])));
    await expect(extractTarGz(three, join(tmp(), "o"), { maxBytes: 4096, maxEntries: 2 })).rejects.toThrow(new UnsafeArchiveError("more than 2 entries"));
    expect((await extractTarGz(three, join(tmp(), "o"), { maxBytes: 4096, maxEntries: 3 })).files).toBe(3);
  });

  // The droplet was gunzipped whole with gunzipSync (up to 1 GiB, blocking the event loop: heartbeats
  // and health checks stalled) and written with writeFileSync. Now it streams in small slices.
  test("unpacks a large archive without holding it or blocking the event loop for long (issue 6)", async () => {
    // 1,500 files of 32 KiB: many entries and 48 MiB of data, as a droplet with node_modules
    const entries: Parameters<typeof writeTar>[0] = [{ name: "app/", type: "5" }];
    const body = new Uint8Array(32 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 2654435761) >>> 24;
    for (let k = 0; k < 1500; k++) entries.push({ name: `app/m${k % 30}/f${k}.js`, data: body });
    const big = new Uint8Array(gzipSync(writeTar(entries), { level: 1 }));
    const root = join(tmp(), "out");
    let worstGap = 0;
    let ticks = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      ticks++;
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
    }, 1);
    const t0 = performance.now();
    try {
      const r = await extractTarGz(big, root, { maxBytes: 128 * 1024 * 1024 });
      expect(r).toEqual({ files: 1500, bytes: 1500 * body.length });
    } finally {
      clearInterval(ticker);
    }
    const took = performance.now() - t0;
    expect(readFileSync(join(root, "app/m27/f1497.js"))).toEqual(Buffer.from(body));
    // timers ran all along (a synchronous unpack lets none run), and never waited long
    expect(ticks).toBeGreaterThan(took / 50);
    expect(worstGap).toBeLessThan(Math.max(60, took / 4));
  });
});

describe("path rules", () => {
  test("safeSegments", () => {
    expect(safeSegments("./a//b/./c")).toEqual(["a", "b", "c"]);
    expect(() => safeSegments("a/../b")).toThrow();
  });
  test("symlinkStaysInside", () => {
    expect(symlinkStaysInside(["a", "l"], "../b")).toBe(true);
    expect(symlinkStaysInside(["a", "l"], "../../b")).toBe(false);
    expect(symlinkStaysInside(["l"], "/etc/passwd")).toBe(false);
    // the textual test alone passes the audit's chain: resolveInside is what catches it
    expect(symlinkStaysInside(["app", "x"], "../a/b/c/../../..")).toBe(true);
  });
  test("resolveInside follows the links in the tree (issue 6)", async () => {
    const root = join(tmp(), "r");
    await extractTarGz(gz([{ name: "z/", type: "5" }, { name: "a/b/c", type: "2", linkname: "../../z" }]), root, { maxBytes: 1024 });
    expect(resolveInside(root, ["a", "b", "c"])).toEqual(["z"]);
    expect(resolveInside(root, ["a", "b", "c", ".."])).toEqual([]);
    expect(resolveInside(root, ["a", "b", "c", "..", ".."])).toBeUndefined();
    expect(resolveInside(root, ["missing", "..", "z"])).toEqual(["z"]);
  });
});
