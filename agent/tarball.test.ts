import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { execFileSync } from "node:child_process";
import { extractTarGz, safeSegments, symlinkStaysInside, UnsafeArchiveError, writeTar } from "./tarball.ts";

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

describe("extractTarGz", () => {
  test("unpacks files, directories, modes and inside symlinks", () => {
    const root = join(tmp(), "out");
    const r = extractTarGz(
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

  test("reads what GNU tar writes (long names too)", () => {
    const src = tmp();
    const long = "d".repeat(120);
    execFileSync("sh", ["-c", `mkdir -p '${src}/a/${long}' && echo hi > '${src}/a/${long}/f.txt' && ln -s f.txt '${src}/a/${long}/l'`]);
    const bytes = new Uint8Array(execFileSync("tar", ["-czf", "-", "-C", src, "."]));
    const root = join(tmp(), "out");
    extractTarGz(bytes, root, { maxBytes: 1024 });
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
  test.each(hostile)("refuses %s and writes nothing outside", (_what, entries) => {
    const parent = tmp();
    const root = join(parent, "out");
    expect(() => extractTarGz(gz(entries), root, { maxBytes: 1024 })).toThrow(UnsafeArchiveError);
    expect(existsSync(join(parent, "escape"))).toBe(false);
  });

  test("caps the total size, gzip bombs included", () => {
    expect(() => extractTarGz(gz([{ name: "big", data: "x".repeat(5000) }]), join(tmp(), "o"), { maxBytes: 4096 })).toThrow(/more than 4096/);
    const bomb = new Uint8Array(gzipSync(new Uint8Array(200 * 1024 * 1024)));
    expect(() => extractTarGz(bomb, join(tmp(), "o"), { maxBytes: 1024 })).toThrow(UnsafeArchiveError);
  });

  test("refuses garbage", () => {
    expect(() => extractTarGz(new Uint8Array([1, 2, 3]), join(tmp(), "o"), { maxBytes: 1024 })).toThrow(/not a gzip/);
    expect(() => extractTarGz(new Uint8Array(gzipSync(new Uint8Array(512).fill(65))), join(tmp(), "o"), { maxBytes: 1024 })).toThrow(/corrupt/);
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
  });
});
