import { expect, test } from "bun:test";
import { objectField, sameJson, stringField } from "./request-fields.ts";

test("sameJson ignores key order, not values or array order", () => {
  expect(sameJson({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 })).toBe(true);
  expect(sameJson({ a: 1 }, { a: "1" })).toBe(false);
  expect(sameJson({ c: [1, 2] }, { c: [2, 1] })).toBe(false);
  expect(sameJson({}, { a: undefined })).toBe(false);
});

test("fields of untrusted bodies", () => {
  expect(stringField({ a: "x" }, "a")).toBe("x");
  expect(stringField({ a: "" }, "a")).toBeUndefined();
  expect(stringField({ a: 1 }, "a")).toBeUndefined();
  expect(stringField(null, "a")).toBeUndefined();
  expect(objectField({ o: { k: 1 } }, "o")).toEqual({ k: 1 });
  expect(objectField({ o: [1] }, "o")).toBeUndefined();
});
