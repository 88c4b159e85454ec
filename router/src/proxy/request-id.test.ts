import { expect, test } from "bun:test";
import { RequestIds } from "./request-id.ts";

test("ids are UUID-shaped and unique across the 256-id prefix boundary", () => {
  const ids = new RequestIds();
  const seen = new Set<string>();
  let last = "";
  for (let i = 0; i < 1000; i++) {
    const id = ids.next();
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    seen.add(id);
    last = id;
  }
  expect(seen.size).toBe(1000);
  expect(last.endsWith("0000000003e7")).toBe(true); // the counter, 999, in the last 48 bits
});
