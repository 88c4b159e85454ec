// Property-based tests of every bus decoder (issue 19): the short form of tests/fuzz/targets/bus-decoders.ts,
// a few thousand generated payloads per run (`npm run fuzz` runs the same target for minutes), and the
// inputs that fuzzing found, each as a regression test.

import { describe, expect, test } from "bun:test";
import * as fc from "fast-check";
import { checkBusInput, busInput } from "../tests/fuzz/targets/bus-decoders.ts";
import { concat, deepNesting, head, text } from "../tests/fuzz/lib/cbor-craft.ts";
import { cborProblem, decode, DecodeError, encode, parse } from "./codec.ts";
import { sampleMessages } from "./fixtures.ts";

test("issue 19: any payload on any subject decodes to clean data or a DecodeError", () => {
  fc.assert(fc.property(busInput, (i) => checkBusInput(i)), { numRuns: 3000 });
}, 60_000);

const enc = new TextEncoder();
const start = sampleMessages["dea.start"];
/** dea.start with `vcap_application` replaced by raw CBOR bytes. */
const withVcap = (raw: Uint8Array) => {
  const bytes = encode("dea.start", { ...start, vcap_application: { placeholder: "PLACEHOLDER" } });
  const needle = concat(text("placeholder"), text("PLACEHOLDER"));
  const at = Buffer.from(bytes).indexOf(Buffer.from(needle));
  return concat(bytes.subarray(0, at - 1), raw, bytes.subarray(at + needle.length));
};

describe("issue 19: what fuzzing found in the bus decoders", () => {
  test("a cycle (CBOR shared references, tags 28/29) never reaches a handler", () => {
    const cycle = concat(head(6, 28), head(5, 1), text("self"), head(6, 29), head(0, 0));
    expect(() => decode("dea.start", withVcap(cycle))).toThrow(/tag/);
  });
  test("tags that cbor-x turns into a RegExp, a Date, a Map or a record definition are refused", () => {
    const regexp = concat(head(6, 27), head(4, 3), text("RegExp"), text("(a+)+$"), text("g"));
    const date = concat(head(6, 1), head(0, 1));
    const map = concat(head(6, 259), head(5, 1), text("a"), head(0, 1));
    const record = concat(head(6, 105), head(4, 3), head(0, 0xe000), concat(head(4, 1), text("a")), head(0, 1));
    for (const raw of [regexp, date, map, record]) expect(() => decode("dea.start", withVcap(raw))).toThrow(DecodeError);
  });
  test("JSON data nested deeper than 32 levels, a Date or a Map in credentials is refused", () => {
    const deep = JSON.stringify({ ...start, vcap_application: JSON.parse(`${'{"a":'.repeat(40)}1${"}".repeat(40)}`) });
    expect(() => decode("dea.start", enc.encode(deep))).toThrow(/nested deeper than 32/);
  });
  test("CBOR nested 200,000 deep is refused before cbor-x recurses into it", () => {
    expect(cborProblem(deepNesting(200_000, "array"))).toMatch(/nested deeper than 64/);
    expect(() => decode("dea.stop", deepNesting(200_000, "map"))).toThrow(DecodeError);
  });
  test("invalid UTF-8 in a CBOR text string is refused, as JSON's is", () => {
    for (const bad of [[0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xff]]) {
      const raw = concat(new Uint8Array([0xa1]), text("host"), head(3, bad.length), new Uint8Array(bad));
      expect(() => parse(raw)).toThrow(/not valid UTF-8/);
    }
  });
  test("a lone surrogate escape in JSON is refused; the encoder writes one as U+FFFD", () => {
    expect(() => decode("router.unregister", enc.encode('{"host":"h\\ud800","port":1,"uris":[]}'))).toThrow(/surrogate/);
    expect(decode("router.unregister", enc.encode('{"host":"h\\ud83d\\ude00","port":1,"uris":[]}')).host).toBe("h😀");
    const bytes = encode("router.unregister", { host: "h\ud800", port: 1, uris: [] });
    expect(decode("router.unregister", bytes).host).toBe("h\ufffd");
  });
  test("a __proto__ key is refused in maps of any keys, whether CBOR or JSON", () => {
    const json = JSON.stringify({ ...start, env: {} }).replace('"env":{}', '"env":{"__proto__":"x"}');
    expect(() => decode("dea.start", enc.encode(json))).toThrow(/__proto__/);
    expect(() => parse(concat(head(5, 1), text("__proto__"), head(0, 1)))).toThrow(/__proto__/);
  });
  test("a count larger than the payload could hold is refused without allocating it", () => {
    expect(cborProblem(concat(head(5, 1), text("a"), new Uint8Array([0x9a, 0xff, 0xff, 0xff, 0xff])))).toMatch(/count larger/);
  });
  test("well-formed CBOR from other encoders still decodes: indefinite maps and arrays, half floats, null", () => {
    expect(cborProblem(concat(new Uint8Array([0x7f]), text("a"), new Uint8Array([0xff])))).toMatch(/indefinite-length string/);
    const raw = concat(new Uint8Array([0xbf]), text("host"), text("ab"), text("port"), new Uint8Array([0xf9, 0x3c, 0x00]), text("uris"), new Uint8Array([0x9f, 0xff]), text("app"), new Uint8Array([0xf6, 0xff]));
    expect(decode("router.unregister", raw)).toEqual({ host: "ab", port: 1, uris: [] });
  });
});
