import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { paxRecords, ustarArchive, type FixtureEntry } from "./tar-fixtures.ts";
import { octal, parsePax, TarFormatError, TarReader, type TarEntry, type TarFormatProblem } from "./tar-reader.ts";

/** Everything the sink saw, data joined per entry. */
interface Seen {
  entry: TarEntry;
  data: string;
  ended: boolean;
}

function read(tar: Uint8Array, opts: { pieces?: number; maxEntries?: number } = {}): { seen: Seen[]; reader: TarReader } {
  const seen: Seen[] = [];
  const dec = new TextDecoder();
  const reader = new TarReader(
    {
      entry: (entry) => void seen.push({ entry, data: "", ended: false }),
      data: (bytes) => void (seen.at(-1)!.data += dec.decode(bytes)),
      end: () => void (seen.at(-1)!.ended = true),
    },
    { maxEntries: opts.maxEntries },
  );
  const step = opts.pieces ?? tar.length;
  for (let i = 0; i < tar.length; i += step) reader.push(tar.subarray(i, i + step));
  reader.finish();
  return { seen, reader };
}

/** Changes the header at `at` in place and sums it again. */
function editHeader(tar: Uint8Array, at: number, change: (h: Uint8Array) => void): void {
  const h = tar.subarray(at, at + 512);
  change(h);
  h.fill(32, 148, 156);
  const sum = h.reduce((n, b) => n + b, 0);
  h.set(new TextEncoder().encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
}

const names = (entries: FixtureEntry[]) => read(ustarArchive(entries)).seen.map((s) => s.entry.name);

function problemOf(run: () => unknown): TarFormatProblem {
  try {
    run();
  } catch (err) {
    if (err instanceof TarFormatError) return err.problem;
    throw err;
  }
  throw new Error("no TarFormatError");
}

describe("TarReader: entries", () => {
  test("reports each header, its data in pieces and its end, empty entries included", () => {
    const tar = ustarArchive([
      { name: "app/", type: "5" },
      { name: "app/run.sh", data: "#!/bin/sh\n", mode: 0o755 },
      { name: "app/empty" },
      { name: "app/l", type: "2", linkname: "run.sh" },
      { name: "app/big", data: "x".repeat(1500) },
    ]);
    const { seen, reader } = read(tar);
    expect(seen.map((s) => [s.entry.name, s.entry.type, s.entry.size, s.ended])).toEqual([
      ["app/", "5", 0, true],
      ["app/run.sh", "0", 10, true],
      ["app/empty", "0", 0, true],
      ["app/l", "2", 0, true],
      ["app/big", "0", 1500, true],
    ]);
    expect(seen[1]!.entry.mode).toBe(0o755);
    expect(seen[1]!.data).toBe("#!/bin/sh\n");
    expect(seen[3]!.entry.linkname).toBe("run.sh");
    expect(seen[4]!.data).toBe("x".repeat(1500));
    expect(reader.entries).toBe(5);
    expect(reader.bytes).toBe(tar.length);
  });

  test("the same events fed a byte at a time and in odd pieces", () => {
    const tar = ustarArchive([
      { name: "a", data: "x".repeat(1000) },
      { name: "PaxHeader", type: "x", data: paxRecords({ path: "long/".repeat(40) + "f" }) },
      { name: "short", data: "y" },
      { name: "././@LongLink", type: "L", data: "l".repeat(300) + "\0" },
      { name: "cut" },
    ]);
    const whole = read(tar).seen;
    expect(whole.map((s) => s.entry.name)).toEqual(["a", "long/".repeat(40) + "f", "l".repeat(300)]);
    for (const pieces of [1, 7, 511, 513]) expect(read(tar, { pieces }).seen, `pieces of ${pieces}`).toEqual(whole);
  });

  test("a type byte of NUL is a file; other types are passed on for the caller to judge", () => {
    const tar = ustarArchive([{ name: "old" }, { name: "dev", type: "3" }, { name: "sparse", type: "S" }]);
    editHeader(tar, 0, (h) => (h[156] = 0));
    expect(read(tar).seen.map((s) => s.entry.type)).toEqual(["0", "3", "S"]);
  });

  test("the ustar prefix field is joined to the name", () => {
    const tar = ustarArchive([{ name: "f.txt", data: "hi" }]);
    editHeader(tar, 0, (h) => h.set(new TextEncoder().encode("deep/dir"), 345));
    expect(read(tar).seen[0]!.entry.name).toBe("deep/dir/f.txt");
  });

  test("after the end-of-archive block input is counted, never read", () => {
    const tar = new Uint8Array(ustarArchive([{ name: "a", data: "x" }]).length + 2048).fill(65);
    tar.set(ustarArchive([{ name: "a", data: "x" }]));
    const { seen, reader } = read(tar);
    expect(seen.length).toBe(1);
    expect(reader.ended).toBe(true);
    expect(reader.bytes).toBe(tar.length);
  });

  test("a sink's own error passes through as it is", () => {
    const refused = new Error("no links here");
    const reader = new TarReader({
      entry: (e) => {
        if (e.type === "2") throw refused;
      },
    });
    expect(() => reader.push(ustarArchive([{ name: "a" }, { name: "l", type: "2", linkname: "a" }]))).toThrow(refused);
  });
});

describe("TarReader: pax and GNU long names, as tar reads them", () => {
  test("pax path and linkpath, GNU L and K records name the next entry only", () => {
    expect(names([{ name: "PaxHeader", type: "x", data: paxRecords({ path: "../evil" }) }, { name: "harmless" }, { name: "next" }])).toEqual(["../evil", "next"]);
    expect(names([{ name: "././@LongLink", type: "L", data: "../evil\0" }, { name: "harmless" }, { name: "next" }])).toEqual(["../evil", "next"]);
    const links = read(
      ustarArchive([
        { name: "././@LongLink", type: "K", data: "/etc/shadow\0" },
        { name: "l", type: "2", linkname: "ok" },
        { name: "PaxHeader", type: "x", data: paxRecords({ linkpath: "../../x" }) },
        { name: "m", type: "2", linkname: "ok" },
        { name: "n", type: "2", linkname: "ok" },
      ]),
    ).seen.map((s) => s.entry.linkname);
    expect(links).toEqual(["/etc/shadow", "../../x", "ok"]);
  });

  test("a pax size moves the next header where tar finds it", () => {
    // the header says 0 bytes, the pax record 512: the block after is data, not an entry
    const hidden = read(ustarArchive([{ name: "PaxHeader", type: "x", data: paxRecords({ size: "512" }) }, { name: "a" }, { name: "../hidden-in-data" }]));
    expect(hidden.seen.map((s) => [s.entry.name, s.entry.size])).toEqual([["a", 512]]);
    expect(hidden.reader.entries).toBe(1);
    // and the other way round: what tar reads as the next header is read as one (here: file data, corrupt)
    const tar = ustarArchive([{ name: "PaxHeader", type: "x", data: paxRecords({ size: "0" }) }, { name: "a", data: "x".repeat(10), size: 0 }]);
    expect(problemOf(() => read(tar)).code).toBe("corrupt_header");
  });

  test("a pax size does not apply to a long-name record after it", () => {
    const tar = ustarArchive([
      { name: "PaxHeader", type: "x", data: paxRecords({ size: "3" }) },
      { name: "././@LongLink", type: "L", data: "long-name\0" },
      { name: "short", data: "abc" },
    ]);
    expect(read(tar).seen.map((s) => [s.entry.name, s.entry.size, s.data])).toEqual([["long-name", 3, "abc"]]);
  });

  test("global pax records: harmless keys are ignored, ones that would move entries refused", () => {
    expect(names([{ name: "g", type: "g", data: paxRecords({ comment: "made here", mtime: "1" }) }, { name: "a" }])).toEqual(["a"]);
    for (const key of ["path", "linkpath", "size"]) {
      const tar = ustarArchive([{ name: "g", type: "g", data: paxRecords({ [key]: "1" }) }, { name: "a" }]);
      expect(problemOf(() => read(tar))).toEqual({ code: "global_override", key });
    }
  });

  test("a pax or long-name record over 1 MiB is refused before it is collected", () => {
    const tar = ustarArchive([{ name: "././@LongLink", type: "L", size: 2 * 1024 * 1024 }], false);
    expect(problemOf(() => new TarReader({ entry() {} }).push(tar))).toEqual({ code: "meta_too_large", type: "L", size: 2 * 1024 * 1024, limit: 1024 * 1024 });
  });

  test("pax lengths count bytes: a UTF-8 name is read whole, and the record after it too (issue 7)", () => {
    // lengths were applied to the decoded text: "café.txt" came out as "café.txt\n" and ate the next record
    expect(parsePax(new TextEncoder().encode(paxRecords({ path: "café.txt", linkpath: "ü/x" })))).toEqual({ path: "café.txt", linkpath: "ü/x" });
    const tar = ustarArchive([{ name: "PaxHeader", type: "x", data: paxRecords({ path: "é/" + "x".repeat(150) }) }, { name: "short" }]);
    expect(read(tar).seen[0]!.entry.name).toBe("é/" + "x".repeat(150));
  });

  test("parsePax stops at the first malformed record, as tar does", () => {
    const enc = new TextEncoder();
    const good = paxRecords({ path: "a" });
    expect(parsePax(enc.encode(good + "zz junk\n" + paxRecords({ linkpath: "b" })))).toEqual({ path: "a" });
    expect(parsePax(enc.encode(good + "0x10 path=b\n"))).toEqual({ path: "a" });
    expect(parsePax(enc.encode(good + "99 path=past-the-end\n"))).toEqual({ path: "a" });
    expect(parsePax(enc.encode("3 x"))).toEqual({});
  });

  test("reads what GNU tar writes: long names and links, in gnu and pax formats", () => {
    const src = mkdtempSync(join(tmpdir(), "skiff-tar-reader-"));
    try {
      const long = "d".repeat(120);
      execFileSync("sh", ["-c", `mkdir -p '${src}/a/${long}' && printf hi > '${src}/a/${long}/f.txt' && ln -s '${"t".repeat(150)}' '${src}/a/${long}/l'`]);
      for (const format of ["gnu", "pax"]) {
        const tar = new Uint8Array(execFileSync("tar", [`--format=${format}`, "-cf", "-", "-C", src, "a"]));
        const seen = read(tar, { pieces: 4096 }).seen;
        const file = seen.find((s) => s.entry.name === `a/${long}/f.txt`);
        expect(file?.data, format).toBe("hi");
        expect(seen.find((s) => s.entry.name === `a/${long}/l`)?.entry.linkname, format).toBe("t".repeat(150));
      }
    } finally {
      rmSync(src, { recursive: true, force: true });
    }
  });
});

describe("TarReader: headers it refuses", () => {
  test("a bad checksum is refused, not skipped (tar would skip it and read on), with where it was", () => {
    const tar = ustarArchive([{ name: "ok", data: "x" }, { name: "cover", size: 512, checksum: "bad" }, { name: "../evil" }]);
    expect(problemOf(() => read(tar))).toEqual({ code: "corrupt_header", offset: 1024 });
    expect(problemOf(() => read(new Uint8Array(512).fill(65)))).toEqual({ code: "corrupt_header", offset: 0 });
  });

  test("a checksum summed as signed bytes is accepted, as GNU tar accepts it", () => {
    const entry = { name: "caf\u00e9-\u00fc.txt", data: "x" };
    expect(names([{ ...entry, checksum: "signed" }])).toEqual([entry.name]);
    expect(names([entry])).toEqual([entry.name]);
  });

  test("sizes: GNU base-256, and an invalid pax size refused", () => {
    const field = new Uint8Array(12);
    field[0] = 0x80;
    field[8] = 0x01; // 2^24
    expect(octal(field, 0, 12)).toBe(2 ** 24);
    expect(octal(new TextEncoder().encode("0000644 \0"), 0, 8)).toBe(0o644);
    for (const size of ["-1", "abc", "1e400"]) {
      const tar = ustarArchive([{ name: "PaxHeader", type: "x", data: paxRecords({ size }) }, { name: "a" }]);
      expect(problemOf(() => read(tar)), size).toEqual({ code: "invalid_size", offset: 1024 });
    }
  });

  test("more entries than the cap are refused; pax and long-name records do not count", () => {
    const entries: FixtureEntry[] = [];
    for (let i = 0; i < 3; i++) entries.push({ name: "PaxHeader", type: "x", data: paxRecords({ path: `f${i}` }) }, { name: "x" });
    expect(read(ustarArchive(entries), { maxEntries: 3 }).reader.entries).toBe(3);
    expect(problemOf(() => read(ustarArchive([...entries, { name: "one-more" }]), { maxEntries: 3 }))).toEqual({ code: "too_many_entries", limit: 3 });
  });
});

describe("TarReader: the end of the input", () => {
  const whole = ustarArchive([{ name: "a", data: "x".repeat(600) }, { name: "PaxHeader", type: "x", data: paxRecords({ path: "b" }) }, { name: "c" }], false);
  test("stopping inside an entry's data, a header or a pax record is truncation", () => {
    for (const at of [700, 1000, 1536 + 100, 2048 + 5, 2560 + 100])
      expect(problemOf(() => read(whole.subarray(0, at))), `cut at ${at}`).toEqual({ code: "truncated" });
  });
  test("an archive that ends on an entry boundary without the end blocks is whole, as tar reads it", () => {
    expect(read(whole).seen.map((s) => s.entry.name)).toEqual(["a", "b"]);
    expect(read(whole.subarray(0, 1536)).seen.map((s) => s.entry.name)).toEqual(["a"]);
  });
});
