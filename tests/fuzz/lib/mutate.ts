// Byte-level mutation of seed inputs, as AFL's "havoc" stage does it (bit flips, interesting values,
// block deletes, duplications, splices, truncation), expressed as a fast-check arbitrary so runs are
// seeded and a failure shrinks to the fewest mutations that still fail.

import * as fc from "fast-check";

export type Mutation =
  | { op: "flip"; at: number; bit: number }
  | { op: "set"; at: number; value: number }
  | { op: "insert"; at: number; bytes: Uint8Array }
  | { op: "delete"; at: number; length: number }
  | { op: "duplicate"; at: number; length: number; to: number }
  | { op: "truncate"; at: number };

/** Bytes AFL calls "interesting": edges of signed and unsigned widths, and the characters parsers split on. */
const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x20, 0x0a, 0x0d, 0x3a, 0x2f, 0x22, 0x27, 0x3d, 0x23, 0x2d, 0x7b, 0x5b, 0x09, 0xc0, 0xed, 0xf4];

const position = fc.double({ min: 0, max: 1, noNaN: true });

const mutation: fc.Arbitrary<{ op: Mutation["op"]; where: number; n: number; bytes: Uint8Array; to: number }> = fc.record({
  op: fc.constantFrom("flip", "set", "set", "insert", "delete", "duplicate", "truncate") as fc.Arbitrary<Mutation["op"]>,
  where: position,
  n: fc.nat({ max: 64 }),
  bytes: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.constantFrom(...INTERESTING).map((b) => new Uint8Array([b]))),
  to: position,
});

/** Applies mutations in order; positions are fractions of the current length, so they stay valid. */
export function applyMutations(seed: Uint8Array, ops: readonly { op: Mutation["op"]; where: number; n: number; bytes: Uint8Array; to: number }[]): Uint8Array {
  let b = seed;
  for (const m of ops) {
    const at = Math.min(b.length, Math.floor(m.where * b.length));
    switch (m.op) {
      case "flip":
        if (b.length === 0) break;
        b = b.slice();
        b[Math.min(at, b.length - 1)]! ^= 1 << (m.n % 8);
        break;
      case "set":
        if (b.length === 0) break;
        b = b.slice();
        b[Math.min(at, b.length - 1)] = m.bytes[0]!;
        break;
      case "insert": {
        const out = new Uint8Array(b.length + m.bytes.length);
        out.set(b.subarray(0, at));
        out.set(m.bytes, at);
        out.set(b.subarray(at), at + m.bytes.length);
        b = out;
        break;
      }
      case "delete": {
        const len = Math.min(m.n + 1, b.length - at);
        const out = new Uint8Array(b.length - len);
        out.set(b.subarray(0, at));
        out.set(b.subarray(at + len), at);
        b = out;
        break;
      }
      case "duplicate": {
        const piece = b.slice(at, at + m.n + 1);
        const to = Math.floor(m.to * b.length);
        const out = new Uint8Array(b.length + piece.length);
        out.set(b.subarray(0, to));
        out.set(piece, to);
        out.set(b.subarray(to), to + piece.length);
        b = out;
        break;
      }
      case "truncate":
        b = b.slice(0, at);
        break;
    }
  }
  return b;
}

/** A seed from `seeds` with 1 to `max` mutations applied. */
export function mutated(seeds: fc.Arbitrary<Uint8Array>, max = 8): fc.Arbitrary<Uint8Array> {
  return fc.tuple(seeds, fc.array(mutation, { minLength: 1, maxLength: max })).map(([s, ops]) => applyMutations(s, ops));
}
