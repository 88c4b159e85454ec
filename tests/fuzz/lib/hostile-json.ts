// Request bodies for JSON APIs: valid-shaped bodies with one field of a hostile value, deep nesting,
// huge arrays, __proto__ keys, lone surrogates, and text that is not JSON at all (or not UTF-8).

import * as fc from "fast-check";

export const hostileJsonValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom<unknown>(null, true, -1, 0, 1.5, 1e308, -0, 2 ** 53 + 1, "", "x".repeat(70_000), "\u0000", "é", "../../etc", "a\nb", [], {}, [[[]]], { __proto__: null }, new Array(100_001).fill(1)),
  fc.string({ maxLength: 12 }),
);

/** JSON text of `body` with one field (a top-level key, existing or new) replaced by a hostile value, or a body that is not JSON. */
export function hostileBody(valid: Record<string, unknown>): fc.Arbitrary<{ text: string; contentType: string }> {
  const keys = [...Object.keys(valid), "__proto__", "constructor", "unknown_field"];
  const json = "application/json";
  return fc.oneof(
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...keys), hostileJsonValue).map(([k, v]) => ({ text: JSON.stringify({ ...valid, [k]: v }).replace(`"${k}":`, `"${k}":`), contentType: json })) },
    fc.tuple(fc.constantFrom(...keys), fc.integer({ min: 1, max: 100_000 })).map(([k, depth]) => ({ text: JSON.stringify({ ...valid, [k]: "__DEEP__" }).replace('"__DEEP__"', "[".repeat(depth) + "]".repeat(depth)), contentType: json })),
    fc.tuple(fc.constantFrom(...keys), fc.integer({ min: 1, max: 50_000 })).map(([k, depth]) => ({ text: JSON.stringify({ ...valid, [k]: "__DEEP__" }).replace('"__DEEP__"', '{"a":'.repeat(depth) + "1" + "}".repeat(depth)), contentType: json })),
    fc.constant({ text: JSON.stringify(valid).replace(/^\{/, '{"__proto__":{"isAdmin":true},'), contentType: json }),
    fc.constant({ text: JSON.stringify(valid).replace(/"$|"(?=[,}])/, '\\ud800"'), contentType: json }),
    fc.constantFrom("", "{", "null", "[]", "1", '"x"', "{}", "{\"a\":1,}", "\u00ff\u00fe", "{\"a\":\"\\x\"}", "x".repeat(10)).map((text) => ({ text, contentType: json })),
    fc.tuple(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom("text/plain", "", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=latin1")).map(([v, ct]) => ({ text: JSON.stringify(v) ?? "", contentType: ct })),
    fc.jsonValue({ maxDepth: 3 }).map((v) => ({ text: JSON.stringify(v) ?? "null", contentType: json })),
  );
}
