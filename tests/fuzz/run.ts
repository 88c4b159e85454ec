// `npm run fuzz [-- --seconds N] [--targets a,b] [--seed S] [--report FILE]`: each target for a time
// budget (its default in targets/index.ts, or N seconds), inputs from its fast-check arbitrary under
// a new seed whenever one fails (so one run can find several bugs); first the corpus is replayed. A
// failing input is shrunk by fast-check and saved as tests/fuzz/corpus/<target>/crash-<hash>.<ext>,
// which the suite then replays. Prints inputs tried per target, failures, and the process's RSS before
// and after (unbounded memory shows there). Exits 1 when an input failed.

import * as fc from "fast-check";
import { writeFileSync } from "node:fs";
import { corpusFiles, loadCorpusFile, saveToCorpus } from "./lib/corpus.ts";
import type { FuzzTarget } from "./lib/fuzz-target.ts";
import { targets } from "./targets/index.ts";

const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const seconds = arg("seconds") === undefined ? undefined : Number(arg("seconds"));
const chosen = arg("targets")?.split(",") ?? Object.keys(targets);
const baseSeed = Number(arg("seed") ?? Date.now() % 2 ** 31);
const unknown = chosen.filter((n) => !(n in targets));
if (unknown.length) {
  console.error(`unknown targets: ${unknown.join(", ")}; there are ${Object.keys(targets).join(", ")}`);
  process.exit(2);
}

interface Row {
  target: string;
  seconds: number;
  inputs: number;
  perSecond: number;
  corpus: number;
  corpusFailing: number;
  knownFailing: string;
  failures: string[];
  rssBeforeMiB: number;
  rssAfterMiB: number;
}

const rssMiB = () => process.memoryUsage().rss / 2 ** 20;
const rows: Row[] = [];
let stop = false;
process.on("SIGINT", () => (stop = true));
process.on("SIGTERM", () => (stop = true));

for (const name of chosen) {
  if (stop) break;
  const [make, defaultSeconds] = targets[name]!;
  const t: FuzzTarget<unknown> = make();
  const budgetMs = (seconds ?? defaultSeconds) * 1000;
  console.log(`fuzz | ${name}: ${t.describe}; ${budgetMs / 1000} s`);
  await t.start?.();
  const row: Row = { target: name, seconds: 0, inputs: 0, perSecond: 0, corpus: 0, corpusFailing: 0, knownFailing: "", failures: [], rssBeforeMiB: rssMiB(), rssAfterMiB: 0 };
  const t0 = performance.now();
  try {
    // the corpus first: every input saved so far must pass now
    for (const file of corpusFiles(name)) {
      row.corpus++;
      try {
        await t.check(loadCorpusFile(t, file));
      } catch (err) {
        row.corpusFailing++;
        row.failures.push(`corpus ${file.split("/").pop()}: ${(err as Error).message.split("\n")[0]}`);
      }
    }
    const known = corpusFiles(name, "known-failing");
    let stillFailing = 0;
    for (const file of known) {
      try {
        await t.check(loadCorpusFile(t, file));
      } catch {
        stillFailing++;
      }
    }
    if (known.length) row.knownFailing = `${stillFailing} of ${known.length} still fail`;
    let round = 0;
    while (!stop && performance.now() - t0 < budgetMs) {
      const seed = baseSeed + round++;
      const count = (i: unknown) => (row.inputs++, i);
      const remaining = Math.max(1000, budgetMs - (performance.now() - t0));
      const params = { seed, numRuns: 1e9, interruptAfterTimeLimit: remaining, markInterruptAsFailure: false, endOnFailure: false } as const;
      const details = t.async
        ? await fc.check(fc.asyncProperty(t.arbitrary, async (i) => void (await t.check(count(i)))), params)
        : fc.check(fc.property(t.arbitrary, (i) => void t.check(count(i))), params);
      if (details.failed && details.counterexample) {
        const input = details.counterexample[0];
        const path = saveToCorpus(t, input, "crash");
        const why = (details.errorInstance as Error | undefined)?.message?.split("\n")[0] ?? "the property failed";
        row.failures.push(`seed ${seed}: ${why} → ${path.split("/tests/fuzz/")[1]}`);
        console.log(`fuzz | ${name}: FAILED (seed ${seed}, saved ${path}):\n${(details.errorInstance as Error | undefined)?.message ?? "the property failed"}`);
      }
    }
  } finally {
    await t.stop?.();
  }
  row.seconds = (performance.now() - t0) / 1000;
  row.perSecond = row.inputs / row.seconds;
  Bun.gc(true); // what is still held, not what the collector has yet to return
  row.rssAfterMiB = rssMiB();
  rows.push(row);
  console.log(`fuzz | ${name}: ${row.inputs.toLocaleString("en")} inputs in ${row.seconds.toFixed(0)} s, ${row.failures.length} failing, RSS ${row.rssBeforeMiB.toFixed(0)} → ${row.rssAfterMiB.toFixed(0)} MiB`);
}

const table = [
  "| target | seconds | inputs | inputs/s | corpus replayed | known-failing (others' bugs) | failures | RSS before → after (MiB) |",
  "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ...rows.map((r) => `| ${r.target} | ${r.seconds.toFixed(0)} | ${r.inputs.toLocaleString("en")} | ${r.perSecond.toFixed(0)} | ${r.corpus}${r.corpusFailing ? ` (${r.corpusFailing} failing)` : ""} | ${r.knownFailing || "—"} | ${r.failures.length ? r.failures.join("<br>") : "none"} | ${r.rssBeforeMiB.toFixed(0)} → ${r.rssAfterMiB.toFixed(0)} |`),
  "",
  `${rows.reduce((n, r) => n + r.inputs, 0).toLocaleString("en")} inputs in all; base seed ${baseSeed}.`,
].join("\n");
console.log(`\n${table}`);
const report = arg("report");
if (report) writeFileSync(report, `# npm run fuzz, ${new Date().toISOString()}\n\nCommand: \`npm run fuzz -- ${args.join(" ")}\`\n\n${table}\n`);
process.exit(rows.some((r) => r.failures.length > 0) ? 1 : 0);
