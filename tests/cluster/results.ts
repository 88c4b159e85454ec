// Writes what the cluster suites measured to tests/cluster/last-run.md, one marked section per
// suite, so the scenario table and the simulation figures can be rewritten independently.

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const lastRunPath = join(import.meta.dir, "last-run.md");

export function writeSection(name: string, body: string): void {
  const begin = `<!-- ${name} -->`;
  const end = `<!-- /${name} -->`;
  let text = existsSync(lastRunPath)
    ? readFileSync(lastRunPath, "utf8")
    : "# skiff cluster tests: last run\n\nWritten by `tests/cluster/*.test.ts` (issue 10); see tests/cluster/README.md for the topology.\n";
  const block = `${begin}\n${body.trim()}\n${end}`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(lastRunPath, text);
}
