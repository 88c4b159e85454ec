// The controller's API on hostile JSON bodies (issue 19): the short form of tests/fuzz/targets/controller-bodies.ts,
// and what fuzzing found.

import { afterAll, beforeAll, expect, test } from "bun:test";
import * as fc from "fast-check";
import { bodyRoutes, ControllerFuzz, controllerInput } from "../../../tests/fuzz/targets/controller-bodies.ts";
import { nestedDeeperThan } from "./body-depth.ts";

const fuzz = new ControllerFuzz();
beforeAll(() => fuzz.start());
afterAll(() => fuzz.stop());

test("issue 19: no hostile body makes the controller answer 500, and a refused one changes no table", async () => {
  await fc.assert(fc.asyncProperty(controllerInput(bodyRoutes(fuzz.c)), (i) => fuzz.check(i)), { numRuns: 1500 });
}, 60_000);

test("issue 19: a body with a field nested 30,000 deep is a 400, not a 500 (Elysia's ValidationError stringified it)", async () => {
  const deep = '{"a":'.repeat(30_000) + "1" + "}".repeat(30_000);
  for (const [method, path] of [["PATCH", "/v3/apps/x/env"], ["POST", "/v3/spaces"], ["POST", "/v3/service_instances"]] as const) {
    const res = await fuzz.call(method, path, { text: `{"credentials":${deep}}`, contentType: "application/json" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: { detail: string }[] }).errors[0]!.detail).toContain("nested deeper than 64");
  }
});

test("nestedDeeperThan walks without recursion and counts lists and maps alike", () => {
  expect(nestedDeeperThan(JSON.parse("[".repeat(100_000) + "]".repeat(100_000)))).toBe(true);
  expect(nestedDeeperThan({ a: [{ b: [1] }] }, 4)).toBe(false);
  expect(nestedDeeperThan({ a: [{ b: [1] }] }, 3)).toBe(true);
  expect(nestedDeeperThan("x")).toBe(false);
});
