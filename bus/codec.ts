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
      return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    } catch (err) {
      throw new DecodeError(`invalid JSON: ${(err as Error).message}`);
    }
  }
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

function stripUndefined(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripUndefined);
  if (v !== null && typeof v === "object" && !(v instanceof Uint8Array)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = stripUndefined(x);
    return out;
  }
  return v;
}
