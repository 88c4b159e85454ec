// The broker's OSB API on hostile requests (issue 19): the short form of tests/fuzz/targets/broker-bodies.ts,
// and what fuzzing found.

import { expect, test } from "bun:test";
import * as fc from "fast-check";
import { BrokerFuzz, brokerInput } from "../../tests/fuzz/targets/broker-bodies.ts";

test("issue 19: no hostile request makes the broker answer 500, and a refused one changes nothing", async () => {
  const fuzz = new BrokerFuzz();
  await fuzz.start();
  await fc.assert(fc.asyncProperty(brokerInput, (i) => fuzz.check(i)), { numRuns: 2000 });
}, 60_000);

test("issue 19: parameters nested 50,000 deep are a 400 (they overflowed the stack: a 500), and nothing is stored", async () => {
  const fuzz = new BrokerFuzz();
  await fuzz.start();
  const deep = '{"a":'.repeat(50_000) + "1" + "}".repeat(50_000);
  const body = `{"service_id":"memory-service-id","plan_id":"memory-small-id","organization_guid":"o","space_guid":"s","parameters":${deep}}`;
  const res = await fuzz.call("PUT", "/v2/service_instances/deep-1?accepts_incomplete=true", { text: body, contentType: "application/json" });
  expect(res.status).toBe(400);
  expect(((await res.json()) as { description: string }).description).toContain("nested deeper than 32");
  expect((await fuzz.call("GET", "/v2/service_instances/deep-1")).status).toBe(404);
  const patch = await fuzz.call("PATCH", "/v2/service_instances/inst-1", { text: `{"service_id":"memory-service-id","parameters":${deep}}`, contentType: "application/json" });
  expect(patch.status).toBe(400);
});
