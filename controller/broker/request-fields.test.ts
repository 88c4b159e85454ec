import { expect, test } from "bun:test";
import { objectField, optionalObject, requiredString, sameJson, stringField } from "./request-fields.ts";

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

test("required strings say which field is wrong and how (issue 22)", () => {
  expect(requiredString({ organization_guid: "o" }, "organization_guid")).toEqual({ value: "o" });
  expect(requiredString({}, "organization_guid")).toEqual({ missing: "organization_guid is missing: it is required, a non-empty string" });
  expect(requiredString({ organization_guid: "" }, "organization_guid")).toEqual({ missing: "organization_guid is empty: it is required, a non-empty string" });
  expect(requiredString({ service_id: 3 }, "service_id", "query")).toEqual({ missing: "query parameter service_id is not a string: it is required, a non-empty string" });
  expect(optionalObject({}, "context")).toBeUndefined();
  expect(optionalObject({ context: { a: 1 } }, "context")).toEqual({ a: 1 });
  expect(optionalObject({ context: "x" }, "context")).toBe(false);
});
