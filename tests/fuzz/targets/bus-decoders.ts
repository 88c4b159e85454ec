// The bus decoders for every subject: CBOR and JSON payloads, valid-shaped messages with a field of the
// wrong type (deep nesting, huge arrays, invalid UTF-8, NaN, tags, cycles), mutated encodings, raw bytes.
// Property: decode throws DecodeError, or returns plain JSON data that its own decoder accepts unchanged
// and that survives a CBOR and a JSON round trip; within a time bound; and the decoder keeps no state
// (the samples still decode to themselves afterwards).

import "../../../bus/cbor-native-off.ts"; // before cbor-x: its native string extractor crashes Bun
import * as fc from "fast-check";
import { Encoder } from "cbor-x";
import { decode, DecodeError, encode } from "../../../bus/codec.ts";
import { sampleMessages } from "../../../bus/fixtures.ts";
import type { MessageKind } from "../../../bus/messages.ts";
import { decoders } from "../../../bus/schemas.ts";
import { Invalid } from "../../../bus/schema.ts";
import { concat, cborItem, deepNesting, head, text } from "../lib/cbor-craft.ts";
import { b64, jsonFile, readJson, timed, unb64, violated, type FuzzTarget } from "../lib/fuzz-target.ts";
import { notJsonData } from "../lib/json-data.ts";
import { mutated } from "../lib/mutate.ts";

export interface BusInput {
  kind: MessageKind;
  bytes: Uint8Array;
}

export const kinds = Object.keys(sampleMessages) as MessageKind[];
const enc = new TextEncoder();
/** cbor-x left to its own devices: it writes tags for Date, Set, RegExp, BigInt, typed arrays. */
const looseEncoder = new Encoder({ useRecords: false, mapsAsObjects: true });
const PLACEHOLDER = "\u0001fuzz-placeholder\u0001";

/** Every path into a sample (objects' keys, arrays' first item), the root included, plus new keys. */
function pathsOf(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(v)) {
    if (v.length > 0) out.push(...pathsOf(v[0], [...prefix, 0]));
    out.push([...prefix, v.length]);
  } else if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) out.push(...pathsOf(x, [...prefix, k]));
    out.push([...prefix, "unknown_field"], [...prefix, "__proto__"]);
  }
  return out;
}
const pathsByKind = Object.fromEntries(kinds.map((k) => [k, pathsOf(sampleMessages[k])])) as Record<MessageKind, (string | number)[][]>;

function withValueAt(kind: MessageKind, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const root = structuredClone(sampleMessages[kind]) as Record<string | number, unknown>;
  let node = root;
  for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
  Object.defineProperty(node, path[path.length - 1]!, { value, enumerable: true, writable: true, configurable: true });
  return root;
}

const HUGE_ARRAY = new Array(100_001).fill(0);
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 1, arbitrary: fc.constant(HUGE_ARRAY) },
  { weight: 8, arbitrary: fc.anything({ maxDepth: 3, withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true, withObjectString: true, withBoxedValues: true, withSparseArray: true }) },
  { weight: 8, arbitrary: fc.constantFrom<unknown>(NaN, Infinity, -Infinity, -0, 2 ** 53, 2 ** 64, 1e308, -1, 0.5, "", "x".repeat(65_537), "\ud800", "a\udc00b", "\u0000", [], {}, null, true, /re(g)+ex/, new Error("e")) },
  { weight: 8, arbitrary: fc.string({ unit: "binary", maxLength: 40 }) },
  { weight: 8, arbitrary: fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 }) },
  { weight: 8, arbitrary: fc.dictionary(fc.string({ maxLength: 4 }), fc.oneof(fc.string({ maxLength: 4 }), fc.integer()), { maxKeys: 3 }) },
);

/** Encodes a value as CBOR (cbor-x, tags and all) or JSON; a value JSON cannot carry goes as CBOR. */
function encodeLoosely(v: unknown, json: boolean): Uint8Array {
  if (json) {
    try {
      const s = JSON.stringify(v);
      if (s !== undefined && s.startsWith("{")) return enc.encode(s);
    } catch {}
  }
  try {
    return looseEncoder.encode(v);
  } catch {
    return encode("router.greet", v as never);
  }
}

/** The sample encoded with `raw` (any bytes) in place of the value at `path`. */
function splice(kind: MessageKind, path: (string | number)[], raw: Uint8Array): Uint8Array {
  const bytes = encode(kind, withValueAt(kind, path, PLACEHOLDER) as never);
  const needle = text(PLACEHOLDER);
  for (let i = 0; i + needle.length <= bytes.length; i++) {
    let j = 0;
    while (j < needle.length && bytes[i + j] === needle[j]) j++;
    if (j === needle.length) return concat(bytes.subarray(0, i), raw, bytes.subarray(i + needle.length));
  }
  return raw;
}

const kind = fc.constantFrom(...kinds);
/** Mostly just past the decoders' limits (64 CBOR levels, 32 for free-form maps), now and then far past. */
const depth = fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: 200 }) }, fc.integer({ min: 201, max: 200_000 }));
const kindAndPath = kind.chain((k) => fc.constantFrom(...pathsByKind[k]).map((p) => [k, p] as const));

/** The kinds of input, by name (the fuzz runner reports how many of each it tried). */
export const busInputBranches: Record<string, fc.Arbitrary<BusInput>> = {
  // a valid-shaped message with one field of a hostile value, as CBOR or JSON
  hostileField: fc.tuple(kindAndPath, hostileValue, fc.boolean()).map(([[k, p], v, json]) => ({ kind: k, bytes: encodeLoosely(withValueAt(k, p, v), json) })),
  // one field replaced by a hand-made CBOR item (tags, bad UTF-8, lying counts)
  craftedField: fc.tuple(kindAndPath, cborItem).map(([[k, p], raw]) => ({ kind: k, bytes: splice(k, p, raw) })),
  // one field nested deep
  deepField: fc.tuple(kindAndPath, depth, fc.constantFrom("array", "map") as fc.Arbitrary<"array" | "map">).map(([[k, p], depth, how]) => ({
    kind: k,
    bytes: splice(k, p, deepNesting(depth, how)),
  })),
  // JSON nested deep, and JSON with invalid UTF-8
  deepJson: fc.tuple(kind, depth).map(([k, depth]) => ({ kind: k, bytes: enc.encode(`{"a":${"[".repeat(depth)}${"]".repeat(depth)}}`) })),
  badUtf8Json: fc.tuple(kind, fc.uint8Array({ minLength: 1, maxLength: 4 })).map(([k, junk]) => ({ kind: k, bytes: concat(enc.encode('{"host":"'), new Uint8Array([0xc0, ...junk]), enc.encode('"}')) })),
  // valid encodings, mutated byte by byte
  mutatedSample: kind.chain((k) =>
    mutated(fc.constantFrom(encode(k, sampleMessages[k] as never), enc.encode(JSON.stringify(sampleMessages[k])))).map((bytes) => ({ kind: k, bytes })),
  ),
  // anything at all
  randomBytes: fc.tuple(kind, fc.uint8Array({ maxLength: 64 })).map(([k, bytes]) => ({ kind: k, bytes })),
  craftedMap: fc.tuple(kind, fc.array(cborItem, { maxLength: 3 })).map(([k, items]) => ({ kind: k, bytes: concat(head(5, items.length), ...items.flatMap((it, i) => [text(`k${i}`), it])) })),
};

export const busInput: fc.Arbitrary<BusInput> = fc.oneof(...Object.values(busInputBranches));

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function checkBusInput({ kind, bytes }: BusInput): void {
  let out: unknown;
  try {
    out = timed(1000, `decoding ${kind} (${bytes.length} bytes)`, () => decode(kind, bytes));
  } catch (err) {
    if (err instanceof DecodeError) return;
    throw err;
  }
  const dirty = notJsonData(out);
  if (dirty) violated(`${kind} decoded to something that is not plain JSON data: ${dirty}`);
  const again = decoders[kind](out);
  if (again instanceof Invalid) violated(`${kind}: the decoder refuses its own output: ${again}`);
  if (!sameJson(again, out)) violated(`${kind}: decoding the decoder's output changed it`);
  if (!sameJson(decode(kind, encode(kind, out as never)), out)) violated(`${kind}: the result does not survive a CBOR round trip`);
  const json = enc.encode(JSON.stringify(out));
  if (json.length <= 1024 * 1024 && !sameJson(decode(kind, json), out)) violated(`${kind}: the result does not survive a JSON round trip`);
  // no state left behind in the decoder (cbor-x record definitions, shared references)
  if (!sameJson(decode(kind, encode(kind, sampleMessages[kind] as never)), sampleMessages[kind])) violated(`after this input, the ${kind} sample no longer decodes to itself`);
}

export const busDecodersTarget: FuzzTarget<BusInput> = {
  name: "bus-decoders",
  describe: "every bus subject's decoder on CBOR/JSON payloads: DecodeError or clean JSON data that round-trips",
  arbitrary: busInput,
  check: checkBusInput,
  save: (i) => jsonFile({ kind: i.kind, bytes: b64(i.bytes) }),
  load: (_name, bytes) => {
    const j = readJson<{ kind: MessageKind; bytes: string }>(bytes);
    return { kind: j.kind, bytes: unb64(j.bytes) };
  },
};
