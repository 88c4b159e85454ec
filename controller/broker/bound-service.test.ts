import { describe, expect, test } from "bun:test";
import { serviceBindingOf } from "./bound-service.ts";

describe("serviceBindingOf", () => {
  test("the bus's field names; no tags is an empty list", () => {
    const credentials = { uri: "redis://u:p@h:6379", password: "p" };
    expect(serviceBindingOf({ name: "cache", label: "redis", plan: "shared", instanceGuid: "i-1", bindingGuid: "b-1", credentials })).toEqual({
      name: "cache",
      label: "redis",
      plan: "shared",
      tags: [],
      instance_guid: "i-1",
      binding_guid: "b-1",
      credentials,
    });
    expect(serviceBindingOf({ name: "db", label: "postgresql", plan: "p", tags: ["sql"], instanceGuid: "i", bindingGuid: "b", credentials: {} }).tags).toEqual(["sql"]);
  });
});
