// The corpus: tests/fuzz/corpus/<target>/ holds seeds (seed-*) and every input a fuzz run found failing
// (crash-*), each a file; known-failing/ holds inputs that fail because of a bug in code another
// engineer owns, reported and not yet fixed (replayed by `npm run fuzz`, not by the suite).

import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { contentHash, type FuzzTarget } from "./fuzz-target.ts";

export const corpusRoot = join(import.meta.dir, "..", "corpus");

export function corpusFiles(target: string, sub = ""): string[] {
  const dir = join(corpusRoot, target, sub);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => statSync(join(dir, f)).isFile() && !f.startsWith(".") && !f.endsWith(".md"))
    .sort()
    .map((f) => join(dir, f));
}

export function loadCorpusFile<I>(t: FuzzTarget<I>, path: string): I {
  return t.load(path, new Uint8Array(readFileSync(path)));
}

/** Saves an input under the target's corpus as `<prefix>-<hash>.<ext>`; returns the path. */
export function saveToCorpus<I>(t: FuzzTarget<I>, input: I, prefix: "seed" | "crash", sub = ""): string {
  const { ext, bytes } = t.save(input);
  const dir = join(corpusRoot, t.name, sub);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${prefix}-${contentHash(bytes)}.${ext}`);
  writeFileSync(path, bytes);
  return path;
}
