// Hand-made CBOR items, well-formed or not, that an encoder would never write: tags of every kind
// (cbor-x gives some of them meaning: dates, regexps, sets, maps, shared references that make cycles,
// record definitions), invalid UTF-8 in text strings, indefinite lengths, counts that lie, non-text map
// keys, reserved additional-information values and simple values.

import * as fc from "fast-check";

export function head(major: number, arg: number | bigint, width?: 0 | 1 | 2 | 4 | 8): Uint8Array {
  const n = BigInt(arg);
  const w = width ?? (n < 24n ? 0 : n < 256n ? 1 : n < 65536n ? 2 : n < 4294967296n ? 4 : 8);
  const ai = w === 0 ? Number(n) : w === 1 ? 24 : w === 2 ? 25 : w === 4 ? 26 : 27;
  const out = new Uint8Array(1 + w);
  out[0] = (major << 5) | ai;
  for (let i = 0; i < w; i++) out[w - i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const enc = new TextEncoder();
export const text = (s: string) => concat(head(3, enc.encode(s).length), enc.encode(s));
export const bytesItem = (b: Uint8Array) => concat(head(2, b.length), b);

/** Tags cbor-x interprets, plus a few it does not. */
const TAGS = [0, 1, 2, 3, 4, 5, 14, 15, 21, 24, 25, 27, 28, 29, 51, 64, 69, 105, 256, 258, 259, 0xe000, 0xe001, 55799, 0x53687264, 1879052288];

/** Byte sequences that are not UTF-8: lone continuation, overlong, surrogate, beyond U+10FFFF, cut short. */
const BAD_UTF8 = [[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xff], [0xfe, 0xff], [0xc3]].map((a) => new Uint8Array(a));

const smallText = fc.string({ maxLength: 8 }).map(text);

/** One CBOR item (possibly ill-formed), up to `depth` levels of nesting. */
export const cborItem: fc.Arbitrary<Uint8Array> = fc.letrec<{ item: Uint8Array }>((tie) => ({
  item: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.integer({ min: 0, max: 3 }).chain((major) => fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((n) => head(major === 2 ? 0 : major, n))),
    smallText,
    fc.tuple(fc.uint8Array({ maxLength: 6 }), fc.constantFrom(...BAD_UTF8), fc.uint8Array({ maxLength: 6 })).map(([a, bad, b]) => {
      const body = concat(a, bad, b);
      return concat(head(3, body.length), body);
    }),
    fc.tuple(fc.constantFrom(...TAGS), tie("item")).map(([tag, inner]) => concat(head(6, tag), inner)),
    fc.tuple(fc.constantFrom("RegExp", "Error", "Function", "eval", "constructor"), smallText).map(([name, arg]) =>
      concat(head(6, 27), head(4, 3), text(name), arg, text("g")),
    ),
    // a shared value that refers to itself: a cycle once decoded
    fc.constant(concat(head(6, 28), head(5, 1), text("self"), head(6, 29), head(0, 0))),
    fc.constant(concat(head(6, 28), head(4, 1), head(6, 29), head(0, 0))),
    fc.tuple(fc.nat({ max: 6 }), fc.array(tie("item"), { maxLength: 4 })).map(([claimed, items]) => concat(head(4, claimed), ...items)),
    fc.array(tie("item"), { maxLength: 4 }).map((items) => concat(new Uint8Array([0x9f]), ...items, new Uint8Array([0xff]))),
    fc.array(fc.tuple(fc.oneof(smallText, tie("item")), tie("item")), { maxLength: 3 }).map((pairs) => concat(head(5, pairs.length), ...pairs.flat())),
    fc.array(fc.tuple(smallText, tie("item")), { maxLength: 3 }).map((pairs) => concat(new Uint8Array([0xbf]), ...pairs.flat(), new Uint8Array([0xff]))),
    fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }).map((parts) => concat(new Uint8Array([0x7f]), ...parts.map(text), new Uint8Array([0xff]))),
    fc.constantFrom(0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xfc, 0xfd, 0xfe, 0xff, 0x1c, 0x5d, 0xe0, 0xf0).map((b) => new Uint8Array([b])),
    fc.constantFrom(
      new Uint8Array([0xf9, 0x7e, 0x00]), // half NaN
      new Uint8Array([0xf9, 0x7c, 0x00]), // half Infinity
      new Uint8Array([0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1]), // NaN with a payload
      new Uint8Array([0xfb, 0x80, 0, 0, 0, 0, 0, 0, 0]), // -0
      new Uint8Array([0x1b, 0x00, 0x20, 0, 0, 0, 0, 0, 1]), // 2^53 + 1
      new Uint8Array([0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // -2^64
      new Uint8Array([0x9b, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // an array claiming 2^53 items
      new Uint8Array([0x5a, 0xff, 0xff, 0xff, 0xff]), // a byte string claiming 4 GiB
    ),
    fc.uint8Array({ maxLength: 4 }).map(bytesItem),
  ),
})).item;

/** `depth` nested single-item arrays or maps around `inner`: what a recursive decoder overflows on. */
export function deepNesting(depth: number, kind: "array" | "map", inner: Uint8Array = head(0, 1)): Uint8Array {
  const opener = kind === "array" ? new Uint8Array([0x81]) : concat(new Uint8Array([0xa1]), text("a"));
  const out = new Uint8Array(opener.length * depth + inner.length);
  for (let i = 0; i < depth; i++) out.set(opener, i * opener.length);
  out.set(inner, opener.length * depth);
  return out;
}
