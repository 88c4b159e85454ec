// Replays every saved fuzz input (issue 19): the seeds and each input a fuzz run found failing, under
// tests/fuzz/corpus/<target>/, must pass every property now. (The router's corpus is replayed by
// router-requests.fuzz.test.ts, which starts the router; known-failing/ folders by `npm run fuzz` only.)

import { afterAll, describe, expect, test } from "bun:test";
import { corpusFiles, loadCorpusFile } from "./lib/corpus.ts";
import type { FuzzTarget } from "./lib/fuzz-target.ts";
import { replayedBySuite, targets } from "./targets/index.ts";

const started: FuzzTarget<unknown>[] = [];
afterAll(async () => {
  for (const t of started) await t.stop?.();
});

for (const name of replayedBySuite) {
  describe(`corpus of ${name}`, () => {
    const files = corpusFiles(name);
    test(`has seeds`, () => expect(files.length).toBeGreaterThan(0));
    test(`issue 19: every saved input of ${name} passes (${files.length})`, async () => {
      const t = targets[name]![0]();
      if (t.start) await t.start(), started.push(t);
      for (const file of files) {
        try {
          await t.check(loadCorpusFile(t, file));
        } catch (err) {
          throw new Error(`${file}: ${(err as Error).message}`);
        }
      }
    }, 60_000);
  });
}
