// Where the router's time goes for small proxied requests: the router runs under `node --cpu-prof`
// (pinned like router-bench: router on CPU 1, wrk and the backend on CPU 0), wrk drives 0-byte
// requests through it, and the samples taken while wrk ran are summed by function and by kind
// (system calls made from JS show up as the JS or native function that made them). The router runs
// one proxy worker; node writes a profile per thread, and the worker's (the one least idle in wrk's
// window: the main thread only hears the bus) is the one summed.
//
//   ./node_modules/.bin/bun bench/router/router-profile.ts [--quick] [--conns 64] [--duration 10]
//
// Results: bench/results/router-profile.{json,md}. --quick (2 s) checks that it works, not its figures.

import { randomBytes } from "node:crypto";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connectBus, createLogger, Subjects } from "../../bus/index.ts";
import { startNatsServer } from "../../tests/support/nats-server.ts";
import { freePort, waitForPort } from "../../tests/support/ports.ts";
import { startHelloBackend } from "../lib/backend.ts";
import { writeReport } from "../lib/report.ts";
import { stopChildren, stopOnSignals } from "../lib/stop-signals.ts";
import { runWrk } from "../lib/wrk.ts";
import { categorize, summarizeProfile, type CpuProfile } from "./profile-summary.ts";

const root = resolve(import.meta.dir, "../..");
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`router-profile: ${name} wants a positive number`);
  return v;
};
const conns = opt("--conns", 64);
const seconds = quick ? 2 : opt("--duration", 10);
const HOST = "bench.skiff.localhost";
const bundle = join(root, "router/dist/router.mjs");
if (!existsSync(bundle)) throw new Error("router-profile: router/dist/router.mjs is missing: run `node scripts/setup.mjs --build-only`");

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), "skiff-router-profile-"));
const nats = await startNatsServer();
const cleanUp = stopOnSignals(async () => {
  await stopChildren(children, { graceMs: 2_000 });
  await nats.stop();
  rmSync(dir, { recursive: true, force: true });
});
try {
  const backendPort = await freePort();
  children.push(startHelloBackend(backendPort, "0"));
  await waitForPort(backendPort);
  const port = await freePort();
  const statusPort = await freePort();
  const router = spawn("taskset", ["-c", "1", "node", "--cpu-prof", `--cpu-prof-dir=${dir}`, bundle], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, SKIFF_NATS_URL: nats.url, SKIFF_ROUTER_PORT: String(port), SKIFF_ROUTER_STATUS_PORT: String(statusPort), SKIFF_ROUTER_STATUS_PASS: randomBytes(12).toString("base64url"), SKIFF_ROUTER_DRAIN_SECONDS: "0", SKIFF_ROUTER_WORKERS: "1" },
  });
  children.push(router);
  await waitForPort(port);
  const bus = await connectBus({ servers: [nats.url], name: "router-profile" }, createLogger("router-profile", "warn"));
  bus.publish(Subjects.routerRegister, "router.register", { host: "127.0.0.1", port: backendPort, uris: [HOST], app: "bench-app", private_instance_id: "bench-0", private_instance_index: "0" });
  await bus.flush();
  const deadline = Date.now() + 10_000;
  while ((await fetch(`http://127.0.0.1:${port}/`, { headers: { host: HOST } })).status !== 200)
    if (Date.now() > deadline) throw new Error("router-profile: the route never answered 200");
    else await Bun.sleep(50);

  // The profile's clock is CLOCK_MONOTONIC (µs); Bun's hrtime counts from this process's start, so
  // the offset is read from Node's (CLOCK_MONOTONIC) once. The window is wrk's run, less 100 ms at
  // each end for that reading's error and wrk's connection set-up.
  const offset = monotonicOffsetMicros();
  const cpu0 = cpuMicros(router.pid!);
  const from = bunMicros() + offset + 100_000;
  const wrk = await runWrk({ url: `http://127.0.0.1:${port}/`, connections: conns, seconds, host: HOST, cpus: "0" });
  const to = bunMicros() + offset - 100_000;
  const cpuPerRequest = (cpuMicros(router.pid!) - cpu0) / wrk.requests;
  await bus.close();
  const exited = new Promise((r) => router.once("exit", r));
  router.kill("SIGINT"); // the profile is written as the router exits
  await exited;
  // one profile per thread: the proxy worker's is the busy one
  const idle = (s: ReturnType<typeof summarizeProfile>) => s.byFunction.find((f) => f.name === "(idle)")?.share ?? 0;
  const summaries = readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => summarizeProfile(JSON.parse(readFileSync(join(dir, f), "utf8")) as CpuProfile, from, to))
    .filter((s) => s.samples > 0);
  if (summaries.length === 0) throw new Error("router-profile: node wrote no .cpuprofile with samples in wrk's window");
  const summary = summaries.reduce((a, b) => (idle(b) < idle(a) ? b : a));
  if (summary.samples < 100) throw new Error(`router-profile: only ${summary.samples} samples in wrk's window`);
  if (wrk.socketErrors + wrk.non2xx > 0) throw new Error(`router-profile: wrk saw ${wrk.socketErrors} socket errors and ${wrk.non2xx} bad statuses`);

  const kinds = categorize(summary.byFunction);
  const command = `./node_modules/.bin/bun bench/router/router-profile.ts${quick ? " --quick" : ""} --conns ${conns}${quick ? "" : ` --duration ${seconds}`}`;
  const pct = (x: number) => Math.round(x * 1000) / 10;
  const out = writeReport({
    bench: "router-profile",
    command,
    quick,
    tables: [
      {
        title: `Where the router's time goes: 0-byte responses, ${conns} connections, ${seconds} s (node --cpu-prof samples while wrk ran)`,
        columns: ["kind", "% of samples", "what it is"],
        rows: kinds.map((k) => [k.kind, pct(k.share), k.what]),
        notes: `${wrk.rps.toFixed(0)} req/s, ${cpuPerRequest.toFixed(1)} µs of router CPU (user+system) per request, ${summary.samples} samples. A system call made from JS is counted in the function that made it: uWS.js's native calls (cork/end → send(2), getRemoteAddress → getpeername(2)) in the JS function that called them, the upstream write(2) in the libuv handle's writeUtf8String.`,
        charts: [{ values: ["% of samples"], groupBy: ["kind"], axis: "% of the router's samples while wrk ran" }],
      },
      {
        title: "Top functions by self time",
        columns: ["function", "% of samples"],
        rows: summary.byFunction.slice(0, 20).map((f) => [f.name, pct(f.share)]),
        charts: [],
      },
    ],
    figures: Object.fromEntries([["rps", Math.round(wrk.rps)], ["cpu_us_per_request", Math.round(cpuPerRequest * 10) / 10], ...kinds.map((k) => [`share.${k.key}`, pct(k.share)])]),
  });
  console.log(readFileSync(out.md, "utf8"));
} finally {
  await cleanUp();
}

function bunMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** CLOCK_MONOTONIC minus Bun's hrtime, in µs, within Node's start-up time either way */
function monotonicOffsetMicros(): number {
  const before = bunMicros();
  const node = Number(execFileSync("node", ["-p", "process.hrtime.bigint() / 1000n"]).toString().trim().replace(/n$/, ""));
  const after = bunMicros();
  return node - (before + after) / 2;
}

function cpuMicros(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK; // utime + stime (fields 14, 15), in clock ticks
}
