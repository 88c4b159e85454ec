// `npm run bench [-- NAME…] [--quick]`: runs every benchmark of the project (or the named ones), each
// as its own process, then regenerates bench/README.md from bench/results/*.json.
// `--quick` checks that each bench still works (its <bench>.quick.* results are not shown in the README,
// so the README is left alone); `--readme` only regenerates the README from the stored JSON.
// Stopped (SIGINT, SIGTERM, SIGHUP, or its parent gone), it passes the signal to the bench running,
// waits until that bench has stopped everything it started and exited, and only then exits.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { constants } from "node:os";
import { join } from "node:path";
import { benchRoot } from "./lib/report.ts";
import { writeBenchReadme } from "./lib/readme.ts";
import { BENCHES } from "./benches.ts";
import { onStopRequest } from "../scripts/stop-request.ts";
import { exitOf, stopChild } from "../scripts/stop-child.ts";

const argv = process.argv.slice(2);
const options = ["--quick", "--readme"];
const badOption = argv.find((a) => a.startsWith("--") && !options.includes(a));
if (badOption) {
  console.error(`unknown option ${badOption}; usage: bun bench/run.ts [NAME…] [--quick] | --readme`);
  process.exit(2);
}
const quick = argv.includes("--quick");
const named = argv.filter((a) => !a.startsWith("--"));
const unknown = named.filter((n) => !BENCHES.some((b) => b.name === n));
if (unknown.length) {
  console.error(`unknown bench: ${unknown.join(", ")}; choose from ${BENCHES.map((b) => b.name).join(", ")}`);
  process.exit(2);
}
if (argv.includes("--readme")) {
  if (named.length || quick) {
    console.error("--readme regenerates bench/README.md from every stored result and runs nothing: give it no bench name and no --quick");
    process.exit(2);
  }
  const charts = writeBenchReadme(BENCHES.map((b) => b.name));
  console.log(`wrote ${join(benchRoot, "README.md")} and ${charts.length} charts from bench/results/*.json`);
  process.exit(0);
}
const chosen = named.length ? BENCHES.filter((b) => named.includes(b.name)) : BENCHES;

let current: ChildProcess | undefined;
let stopping = false;
onStopRequest((request) => {
  stopping = true;
  console.error(`\nbench runner: ${request.why}; stopping the bench that runs`);
  // A bench stopping a cluster may take a while (the agent stops its instances): a generous grace.
  const signal = request.kind === "signal" ? request.signal : "SIGTERM";
  void (current ? stopChild(current, { signal, graceMs: 60_000 }) : Promise.resolve()).finally(() => process.exit(request.exitCode));
});

const failed: string[] = [];
for (const b of chosen) {
  const script = join(benchRoot, b.script);
  if (!existsSync(script)) {
    console.error(`bench ${b.name}: ${b.script} does not exist yet`);
    failed.push(b.name);
    continue;
  }
  console.log(`\n=== bench ${b.name}: ${b.what}${quick ? " (quick)" : ""}`);
  const t0 = Date.now();
  const proc = (current = spawn(process.execPath, [script, ...(quick ? ["--quick"] : [])], { stdio: ["ignore", "inherit", "inherit"] }));
  await exitOf(proc);
  if (stopping) await new Promise(() => {}); // the stop handler exits, with the signal's code
  const code = proc.exitCode ?? 128 + constants.signals[proc.signalCode!];
  console.log(`=== bench ${b.name}: ${code === 0 ? "done" : `FAILED (exit ${code})`} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (code !== 0) failed.push(b.name);
}
if (!quick) writeBenchReadme(BENCHES.map((b) => b.name));
if (failed.length) {
  console.error(`\nbenches that failed: ${failed.join(", ")}`);
  process.exit(1);
}
console.log(`\nevery bench chosen ran to the end (${chosen.map((b) => b.name).join(", ")})${quick ? " in quick mode" : ""}`);
