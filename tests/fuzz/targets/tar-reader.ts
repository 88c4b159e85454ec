// The tar reader (archive/tar-reader.ts) on hostile archives: headers with every field random but a
// right checksum (so the input gets past it), pax records with odd sizes and paths, GNU long names and
// links, base-256 sizes, lying sizes, truncation, and valid archives mutated byte by byte; each fed in
// random pieces. Property: TarFormatError or a result; the same events however the bytes are split;
// every entry's data is exactly its size; a bounded time.

import * as fc from "fast-check";
import { paxRecords } from "../../../archive/tar-fixtures.ts";
import { TarFormatError, TarReader } from "../../../archive/tar-reader.ts";
import { b64, contentHash, jsonFile, readJson, timed, unb64, violated, type FuzzTarget } from "../lib/fuzz-target.ts";
import { mutated } from "../lib/mutate.ts";

export interface TarInput {
  tar: Uint8Array;
  /** where to cut the bytes into pieces, as fractions of the length */
  cuts: number[];
}

const BLOCK = 512;
const enc = new TextEncoder();

interface HeaderSpec {
  name: Uint8Array;
  type: number;
  mode: string;
  size: { kind: "octal"; value: number } | { kind: "base256"; bytes: Uint8Array } | { kind: "text"; text: string };
  linkname: Uint8Array;
  magic: "ustar\u000000" | "ustar  \u0000" | "";
  prefix: Uint8Array;
  checksum: "unsigned" | "signed" | "bad";
}

function header(h: HeaderSpec): Uint8Array {
  const b = new Uint8Array(BLOCK);
  b.set(h.name.subarray(0, 100), 0);
  b.set(enc.encode(h.mode).subarray(0, 8), 100);
  if (h.size.kind === "octal") b.set(enc.encode(h.size.value.toString(8).padStart(11, "0") + "\0").subarray(-12), 124);
  else if (h.size.kind === "base256") b.set(h.size.bytes.subarray(0, 12), 124);
  else b.set(enc.encode(h.size.text).subarray(0, 12), 124);
  b[156] = h.type;
  b.set(h.linkname.subarray(0, 100), 157);
  b.set(enc.encode(h.magic), 257);
  b.set(h.prefix.subarray(0, 155), 345);
  b.fill(32, 148, 156);
  let sum = 0;
  for (const x of b) sum += h.checksum === "signed" && x > 127 ? x - 256 : x;
  if (h.checksum === "bad") sum++;
  b.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return b;
}

const nameBytes = fc.oneof(
  fc.string({ maxLength: 20 }).map((s) => enc.encode(s)),
  fc.constantFrom("a", "dir/", "../escape", "/abs", "a/./b", "", "x".repeat(100), "x".repeat(150), "ä/ü", "a\nb").map((s) => enc.encode(s)),
  fc.uint8Array({ maxLength: 24 }),
);
const typeByte = fc.oneof(fc.constantFrom(..."0123456789xgLKAVMNSD".split("").map((c) => c.charCodeAt(0)), 0), fc.integer({ min: 0, max: 255 }));
const sizeField: fc.Arbitrary<HeaderSpec["size"]> = fc.oneof(
  fc.nat({ max: 3000 }).map((value) => ({ kind: "octal" as const, value })),
  fc.constantFrom(0, 1, 511, 512, 513, 1024 * 1024, 1024 * 1024 + 1, 8 ** 11 - 1).map((value) => ({ kind: "octal" as const, value })),
  fc.uint8Array({ minLength: 12, maxLength: 12 }).map((bytes) => ((bytes[0]! |= 0x80), { kind: "base256" as const, bytes })),
  fc.constantFrom("  12  ", "12abc", "-1", "", "9", "0x20", "77777777777", "\u0000\u0000\u00001").map((text) => ({ kind: "text" as const, text })),
);
const headerSpec: fc.Arbitrary<HeaderSpec> = fc.record({
  name: nameBytes,
  type: typeByte,
  mode: fc.constantFrom("0000644\0", "0000755\0", "7777777\0", "", "zzz"),
  size: sizeField,
  linkname: nameBytes,
  magic: fc.constantFrom("ustar\u000000", "ustar  \u0000", "") as fc.Arbitrary<HeaderSpec["magic"]>,
  prefix: fc.oneof(fc.constant(new Uint8Array()), nameBytes),
  checksum: fc.constantFrom("unsigned", "unsigned", "unsigned", "signed", "bad") as fc.Arbitrary<HeaderSpec["checksum"]>,
});

const paxValue = fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom("0", "1", "512", "0x200", "1e3", "", " 12", "-1", "99999999999999999999", "x".repeat(300)));
const paxBody = fc.oneof(
  fc.dictionary(fc.constantFrom("path", "linkpath", "size", "mtime", "uid", "comment", "GNU.sparse.size", "a=b", ""), paxValue, { maxKeys: 4 }).map((r) => enc.encode(paxRecords(r))),
  fc.constantFrom("10 path=a\n", "999 path=a\n", "5 a=b\n", "x path=a\n", "12 path=a", "0 path=\n", "11 path=ab\n13 size=0x1\n").map((s) => enc.encode(s)),
  fc.uint8Array({ maxLength: 40 }),
);

/** One member: a header, then data (its own length, not necessarily what the header claims), padded or not. */
const member = fc.record({
  spec: headerSpec,
  data: fc.oneof(paxBody, fc.uint8Array({ maxLength: 1100 })),
  pad: fc.boolean(),
});

function archive(members: { spec: HeaderSpec; data: Uint8Array; pad: boolean }[], endBlocks: number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const m of members) {
    parts.push(header(m.spec));
    parts.push(m.data);
    if (m.pad && m.data.length % BLOCK) parts.push(new Uint8Array(BLOCK - (m.data.length % BLOCK)));
  }
  parts.push(new Uint8Array(endBlocks * BLOCK));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), (o += p.length);
  return out;
}

/** A well-formed member whose header states its data's size (so the next header lands where it should). */
const honestMember = fc.tuple(headerSpec, fc.oneof(paxBody, fc.uint8Array({ maxLength: 700 }))).map(([spec, data]) => ({
  spec: { ...spec, size: { kind: "octal" as const, value: data.length }, checksum: "unsigned" as const },
  data,
  pad: true,
}));

const archives = fc.oneof(
  fc.tuple(fc.array(honestMember, { minLength: 1, maxLength: 6 }), fc.nat({ max: 2 })).map(([ms, end]) => archive(ms, end)),
  fc.tuple(fc.array(member, { minLength: 1, maxLength: 5 }), fc.nat({ max: 2 })).map(([ms, end]) => archive(ms, end)),
);

export const tarInput: fc.Arbitrary<TarInput> = fc.record({
  tar: fc.oneof(archives, mutated(archives, 6), fc.tuple(archives, fc.double({ min: 0, max: 1, noNaN: true })).map(([t, f]) => t.subarray(0, Math.floor(t.length * f)))),
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }),
});

interface Outcome {
  events: string[];
  error?: string;
}

function run(tar: Uint8Array, pieces: Uint8Array[], maxEntries?: number): Outcome {
  const events: string[] = [];
  let dataBytes = 0;
  let chunks: Uint8Array[] = [];
  let expected = -1;
  const flush = () => {
    const all = new Uint8Array(dataBytes);
    let o = 0;
    for (const c of chunks) all.set(c, o), (o += c.length);
    events.push(`data ${dataBytes} ${contentHash(all)}`);
    chunks = [];
    dataBytes = 0;
  };
  const reader = new TarReader(
    {
      entry: (e) => {
        if (expected >= 0) violated(`a new entry began before the previous one ended`);
        expected = e.size;
        events.push(`entry ${JSON.stringify(e)}`);
      },
      data: (b) => {
        if (expected < 0) violated("data outside an entry");
        chunks.push(b.slice());
        dataBytes += b.length;
        if (dataBytes > expected) violated(`an entry of ${expected} bytes got ${dataBytes}`);
      },
      end: () => {
        if (dataBytes !== expected) violated(`an entry of ${expected} bytes ended after ${dataBytes}`);
        flush();
        expected = -1;
        events.push("end");
      },
    },
    { maxEntries },
  );
  try {
    for (const p of pieces) reader.push(p);
    reader.finish();
  } catch (err) {
    if (!(err instanceof TarFormatError)) throw err;
    return { events, error: err.problem.code };
  }
  if (expected >= 0) violated("the archive was accepted with an entry left open");
  if (maxEntries !== undefined && reader.entries > maxEntries) violated(`${reader.entries} entries read past maxEntries ${maxEntries}`);
  if (reader.bytes !== tar.length) violated(`counted ${reader.bytes} bytes of ${tar.length}`);
  return { events };
}

export function checkTar({ tar, cuts }: TarInput): void {
  const whole = timed(2000, `reading ${tar.length} bytes`, () => run(tar, [tar]));
  const at = [...new Set(cuts.map((c) => Math.floor(c * tar.length)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let prev = 0;
  for (const c of at) pieces.push(tar.subarray(prev, c)), (prev = c);
  pieces.push(tar.subarray(prev));
  const split = run(tar, pieces);
  const a = JSON.stringify(whole);
  const b = JSON.stringify(split);
  if (a !== b) violated(`split at ${at.join(",")}, the reader saw something else:\n whole: ${a.slice(0, 400)}\n split: ${b.slice(0, 400)}`);
  // a cap on entries stops the archive at the cap, never later
  const entries = whole.events.filter((e) => e.startsWith("entry ")).length;
  if (entries > 1) {
    const capped = run(tar, [tar], entries - 1);
    if (capped.error !== "too_many_entries" && capped.error === undefined) violated(`maxEntries ${entries - 1} let ${entries} entries through`);
  }
}

export const tarReaderTarget: FuzzTarget<TarInput> = {
  name: "tar-reader",
  describe: "archive/tar-reader.ts on generated and mutated archives in random pieces: TarFormatError or the same entries however split",
  arbitrary: tarInput,
  check: checkTar,
  save: (i) => (i.cuts.length === 0 ? { ext: "tar", bytes: i.tar } : jsonFile({ tar: b64(i.tar), cuts: i.cuts })),
  load: (name, bytes) => {
    if (name.endsWith(".tar")) return { tar: bytes, cuts: [] };
    const j = readJson<{ tar: string; cuts: number[] }>(bytes);
    return { tar: unb64(j.tar), cuts: j.cuts };
  },
};
