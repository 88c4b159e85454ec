// Property-based tests of the Procfile parser (agent/procfile.ts; issue 19): the short form of
// tests/fuzz/targets/procfile.ts, and what fuzzing found.

import { expect, test } from "bun:test";
import * as fc from "fast-check";
import { parseProcfile } from "../../agent/procfile.ts";
import { checkProcfile, procfileInput } from "./targets/procfile.ts";

test("issue 19: any text parses to a table of named commands; a written Procfile reads back", () => {
  fc.assert(fc.property(procfileInput, (i) => checkProcfile(i)), { numRuns: 3000 });
}, 60_000);

test("issue 19: a process type named __proto__ is kept as a process type", () => {
  const table = parseProcfile("__proto__: ./evil\nweb: bun server.ts\n");
  expect(Object.entries(table)).toEqual([["__proto__", "./evil"], ["web", "bun server.ts"]]);
  expect(Object.getPrototypeOf(table)).toBe(Object.prototype);
});
