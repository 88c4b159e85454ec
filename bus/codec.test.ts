import { describe, expect, test } from "bun:test";
import { decode, DecodeError, encode, parse } from "./codec.ts";
import { brokenMessage, sampleMessages } from "./fixtures.ts";
import type { MessageKind } from "./messages.ts";

const kinds = Object.keys(sampleMessages) as MessageKind[];

describe("codec", () => {
  test.each(kinds)("%s round-trips through standard CBOR", (kind) => {
    const bytes = encode(kind, sampleMessages[kind] as never);
    expect(decode(kind, bytes)).toEqual(sampleMessages[kind] as never);
  });

  test.each(kinds)("%s round-trips through JSON too", (kind) => {
    const bytes = new TextEncoder().encode(JSON.stringify(sampleMessages[kind]));
    expect(decode(kind, bytes)).toEqual(sampleMessages[kind] as never);
  });

  test("encodes a map as a plain CBOR map, not a cbor-x record", () => {
    const bytes = encode("router.unregister", { host: "h", port: 1, uris: [] });
    expect(bytes[0]).toBe(0xa3); // major type 5 (map), 3 pairs
    expect(Array.from(bytes).includes(0xd9)).toBe(false); // no tag 0xd9xx record extension
  });

  test("leaves out undefined fields rather than encoding CBOR undefined", () => {
    const bytes = encode("router.unregister", { host: "h", port: 1, uris: [], app: undefined });
    expect(parse(bytes)).toEqual({ host: "h", port: 1, uris: [] });
  });

  test("an empty payload is an empty map, for messages without fields", () => {
    expect(decode("router.greet", new Uint8Array())).toEqual({});
  });

  test.each(kinds)("%s rejects wrong shapes with the field named", (kind) => {
    for (const bad of [[], "x", 42, null, brokenMessage(kind) ?? { anything: 1 }]) {
      const bytes = encode(kind, bad as never);
      if (brokenMessage(kind) === undefined) {
        if (!Array.isArray(bad) && typeof bad === "object" && bad !== null) continue; // any map is a valid empty message
      }
      expect(() => decode(kind, bytes)).toThrow(DecodeError);
    }
  });

  test("rejects garbage bytes, truncated CBOR and broken JSON", () => {
    for (const bytes of [
      new Uint8Array([0xff, 0x00, 0x12]),
      new Uint8Array([0xa1]),
      new Uint8Array([0xa1, 0x61, 0x61, 0x01, 0x05]),
      new TextEncoder().encode("{not json"),
      new Uint8Array([0x7b, 0xff, 0xfe]),
    ]) {
      expect(() => decode("router.register", bytes)).toThrow(DecodeError);
    }
  });

  test("names the offending field", () => {
    const bytes = encode("router.register", { host: "h", port: 70000, uris: ["a"] });
    expect(() => decode("router.register", bytes)).toThrow(/port: expected an integer/);
  });

  test("drops unknown fields so nothing unchecked reaches a handler", () => {
    const bytes = encode("router.unregister", { host: "h", port: 1, uris: ["a"], evil: { x: 1 } } as never);
    expect(decode("router.unregister", bytes)).toEqual({ host: "h", port: 1, uris: ["a"] });
  });

  test("accepts Cloud Foundry's JSON register with a numeric instance index", () => {
    const json = '{"host":"10.0.0.1","port":8080,"uris":["a.example.com"],"private_instance_index":3,"tags":{"component":"x"}}';
    const m = decode("router.register", new TextEncoder().encode(json));
    expect(m.private_instance_index).toBe("3");
  });

  test("refuses payloads over 1 MiB", () => {
    const big = new Uint8Array(1024 * 1024 + 1).fill(0x61);
    expect(() => parse(big)).toThrow(/over/);
  });
});

/** A field of the message set to a value of the wrong type. */
test("long strings survive the codec (cbor-x's native extractor broke them under Bun)", () => {
  const line = "x".repeat(16_000) + "é✓";
  const bytes = encode("logs", { app: "a", source: "APP", index: 0, stream: "out", ts: 1, line });
  expect(decode("logs", bytes).line).toBe(line);
});

test("a problem deep in a message names its whole path", () => {
  const badUri = encode("router.register", { host: "h", port: 1, uris: ["ok", 7] } as never);
  expect(() => decode("router.register", badUri)).toThrow("router.register: uris[1]: expected a non-empty string");
  const badOption = encode("router.register", { host: "h", port: 1, uris: [], options: { loadbalancing: "random" } } as never);
  expect(() => decode("router.register", badOption)).toThrow(/options\.loadbalancing: expected one of round-robin, least-connection/);
  const badDroplet = encode("dea.heartbeat", { dea: "a", droplets: [{ ...sampleMessages["dea.heartbeat"].droplets[0], state: "DEAD" }] } as never);
  expect(() => decode("dea.heartbeat", badDroplet)).toThrow(/droplets\[0\]\.state: expected one of/);
});
