// Property-based tests of the tar reader (issue 19): the short form of tests/fuzz/targets/tar-reader.ts.

import { test } from "bun:test";
import * as fc from "fast-check";
import { checkTar, tarInput } from "../tests/fuzz/targets/tar-reader.ts";

test("issue 19: any archive, split anywhere, reads the same or fails with a TarFormatError", () => {
  fc.assert(fc.property(tarInput, (i) => checkTar(i)), { numRuns: 3000 });
}, 60_000);
