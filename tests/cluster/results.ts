// Writes what the cluster suites measured, one marked section per suite, so the scenario table and
// the simulation figures can be rewritten independently. By default into last-run.log beside this
// file (git-ignored: a test run leaves the tree clean); the committed last-run.md is refreshed only
// when SKIFF_WRITE_LAST_RUN=1 is set, by whoever means to commit new figures.

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const committedLastRun = join(import.meta.dir, "last-run.md");
export const localLastRun = join(import.meta.dir, "last-run.log");

export function lastRunPath(env: Record<string, string | undefined> = process.env): string {
  return env.SKIFF_WRITE_LAST_RUN === "1" ? committedLastRun : localLastRun;
}

export function writeSection(name: string, body: string, path = lastRunPath()): string {
  const begin = `<!-- ${name} -->`;
  const end = `<!-- /${name} -->`;
  let text = existsSync(path)
    ? readFileSync(path, "utf8")
    : "# skiff cluster tests: last run\n\nWritten by `tests/cluster/*.test.ts` (issue 10); see tests/cluster/README.md for the topology.\n";
  const block = `${begin}\n${body.trim()}\n${end}`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(path, text);
  return path;
}
