// The WASM matcher against the TypeScript reference (issue 19): the short form of tests/fuzz/targets/matcher.ts.

import { test } from "bun:test";
import * as fc from "fast-check";
import { checkMatcher, matcherInput } from "./targets/matcher.ts";

test("issue 19: the WASM matcher (writer and reader) answers as the reference on random tables and requests", () => {
  fc.assert(fc.property(matcherInput, (ops) => checkMatcher(ops)), { numRuns: 2000 });
}, 60_000);
