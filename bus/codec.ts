// The wire encoding: standard CBOR maps (RFC 8949, no cbor-x record extension), so a client in any
// language can speak the bus. A payload starting with `{` is JSON, as Cloud Foundry's own clients send.

import "./cbor-native-off.ts"; // must run before cbor-x loads
import { Decoder, Encoder } from "cbor-x";
import { decoders } from "./schemas.ts";
import { Invalid } from "./schema.ts";
import type { MessageKind, MessageKinds } from "./messages.ts";

const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, tagUint8Array: false, variableMapSize: true });
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true });
const MAX_PAYLOAD = 1024 * 1024;
const OPEN_BRACE = 0x7b;
/** Deeper than any message (the deepest, dea.start's service credentials, are a few levels). */
export const MAX_DEPTH = 64;

export class DecodeError extends Error {
  override name = "DecodeError";
}

/** Encodes a message as a standard CBOR map, leaving out undefined fields. */
export function encode<K extends MessageKind>(_kind: K, message: MessageKinds[K]): Uint8Array {
  return encoder.encode(stripUndefined(message));
}

/** Parses bytes (CBOR, or JSON when they start with `{`; empty means `{}`) without validating. */
export function parse(bytes: Uint8Array): unknown {
  if (bytes.length === 0) return {};
  if (bytes.length > MAX_PAYLOAD) throw new DecodeError(`payload of ${bytes.length} bytes is over ${MAX_PAYLOAD}`);
  if (bytes[0] === OPEN_BRACE) {
    try {
      const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      // only a \u escape can make a lone surrogate; CBOR refuses its UTF-8 form, so JSON refuses it too
      return text.includes("\\u") ? JSON.parse(text, refuseLoneSurrogates) : JSON.parse(text);
    } catch (err) {
      throw new DecodeError(`invalid JSON: ${(err as Error).message}`);
    }
  }
  const problem = cborProblem(bytes);
  if (problem) throw new DecodeError(`invalid CBOR: ${problem}`);
  try {
    return decoder.decode(bytes);
  } catch (err) {
    throw new DecodeError(`invalid CBOR: ${(err as Error).message}`);
  }
}

/** Parses and validates; throws DecodeError naming the first bad field. */
export function decode<K extends MessageKind>(kind: K, bytes: Uint8Array): MessageKinds[K] {
  const checked = decoders[kind](parse(bytes));
  if (checked instanceof Invalid) throw new DecodeError(`${kind}: ${checked}`);
  return checked as MessageKinds[K];
}

/**
 * Checks that bytes are one well-formed item of plain CBOR data before cbor-x sees them (issue 19), in
 * one pass without recursion: no tags (cbor-x turns some into dates, regexps, sets, maps, shared
 * references that make cycles, or record definitions that outlive the message), text strings in valid
 * UTF-8 (as the JSON path requires), text map keys, false/true/null/undefined and floats as the only
 * simple values, at most MAX_DEPTH levels (cbor-x recurses, and a deep message overflowed the stack),
 * and no count larger than the bytes left could hold. Returns the problem, or "" when there is none.
 */
export function cborProblem(b: Uint8Array): string {
  // per open array or map: items still to come (-1: indefinite length), whether a map, items read so far
  const left: number[] = [];
  const inMap: boolean[] = [];
  const seen: number[] = [];
  const end = b.length;
  let i = 0;
  for (;;) {
    if (i >= end) return "the data ends inside an item";
    const ib = b[i++]!;
    const major = ib >> 5;
    const ai = ib & 31;
    const d = left.length;
    if (ib === 0xff) {
      if (d === 0 || left[d - 1] !== -1) return "a break outside an indefinite-length item";
      if (inMap[d - 1] && seen[d - 1]! % 2 === 1) return "a map that ends between a key and its value";
      left.pop(), inMap.pop(), seen.pop();
    } else {
      if (d > 0 && inMap[d - 1] && seen[d - 1]! % 2 === 0 && major !== 3) return "a map key that is not a text string";
      let arg = 0;
      if (ai < 24) arg = ai;
      else if (ai <= 27) {
        const n = 1 << (ai - 24);
        if (i + n > end) return "the data ends inside an item";
        for (let k = 0; k < n; k++) arg = arg * 256 + b[i + k]!;
        i += n;
      } else if (ai !== 31 || major < 2 || major === 6) return `reserved additional information ${ai}`;
      if (major === 2 || major === 3) {
        if (ai !== 31) {
          if (arg > end - i) return "a string longer than the data";
          if (major === 3 && !validUtf8(b, i, i + arg)) return "a text string that is not valid UTF-8";
          // cbor-x would quietly rename it "__proto_"; JSON's decoders refuse it (schema.ts), so CBOR's do too
          if (arg === 9 && d > 0 && inMap[d - 1] && seen[d - 1]! % 2 === 0 && isProtoKey(b, i)) return "a map key __proto__";
          i += arg;
        } else return "an indefinite-length string (cbor-x cannot read one; send its length)";
      } else if (major === 4 || major === 5) {
        if (d >= MAX_DEPTH) return `nested deeper than ${MAX_DEPTH} levels`;
        const items = major === 5 ? arg * 2 : arg;
        if (ai === 31 || items > 0) {
          if (ai !== 31 && items > end - i) return "a count larger than the data could hold";
          left.push(ai === 31 ? -1 : items), inMap.push(major === 5), seen.push(0);
          continue; // the container is finished by its items
        }
      } else if (major === 6) return "a tag (tags are not part of the bus protocol)";
      else if (major === 7 && !((ai >= 20 && ai <= 23) || (ai >= 25 && ai <= 27))) return `simple value ${ai === 24 ? b[i - 1] : ai}`;
    }
    // an item is finished: count it in its container, closing the definite ones it fills
    for (;;) {
      const depth = left.length;
      if (depth === 0) return i === end ? "" : "bytes after the message";
      seen[depth - 1]!++;
      if (left[depth - 1] === -1 || --left[depth - 1]! > 0) break;
      left.pop(), inMap.pop(), seen.pop();
    }
  }
}

const PROTO = new TextEncoder().encode("__proto__");
const isProtoKey = (b: Uint8Array, at: number) => PROTO.every((c, k) => b[at + k] === c);

/** Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing past U+10FFFF, nothing cut short. */
function validUtf8(b: Uint8Array, from: number, to: number): boolean {
  let i = from;
  while (i < to) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number, min: number, cp: number;
    if (c >= 0xc2 && c <= 0xdf) (n = 1), (min = 0x80), (cp = c & 0x1f);
    else if (c >= 0xe0 && c <= 0xef) (n = 2), (min = 0x800), (cp = c & 0x0f);
    else if (c >= 0xf0 && c <= 0xf4) (n = 3), (min = 0x10000), (cp = c & 0x07);
    else return false;
    if (i + n >= to) return false;
    for (let k = 1; k <= n; k++) {
      const cc = b[i + k]!;
      if ((cc & 0xc0) !== 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += n + 1;
  }
  return true;
}

type UnicodeString = string & { isWellFormed(): boolean; toWellFormed(): string };
const wellFormed = (s: string) => (s as UnicodeString).isWellFormed();

function refuseLoneSurrogates(key: string, value: unknown): unknown {
  if (!wellFormed(key) || (typeof value === "string" && !wellFormed(value))) throw new Error("a lone UTF-16 surrogate escape is not a character");
  return value;
}

/** Leaves out undefined fields, and writes a lone surrogate as U+FFFD (as TextEncoder does) so peers can decode it. */
function stripUndefined(v: unknown): unknown {
  if (typeof v === "string") return wellFormed(v) ? v : (v as UnicodeString).toWellFormed();
  if (Array.isArray(v)) return v.map(stripUndefined);
  if (v !== null && typeof v === "object" && !(v instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) continue;
      const key = wellFormed(k) ? k : (k as UnicodeString).toWellFormed();
      // a plain assignment to "__proto__" would set the prototype instead of writing the key
      if (key === "__proto__") Object.defineProperty(out, key, { value: stripUndefined(x), enumerable: true, writable: true, configurable: true });
      else out[key] = stripUndefined(x);
    }
    return out;
  }
  return v;
}
