// Two skiff routers behind HAProxy as the load balancer; one is drained (SIGTERM) and stops in the
// middle of a wrk run. The promise: zero failed requests. Measured twice over:
//   retry     HAProxy retries a request whose connection failed or got no response (retry-on
//             conn-failure empty-response response-timeout, retries 3, redispatch): a belt and braces LB;
//   no-retry  HAProxy retries nothing (retries 0): what the router's own drain achieves (/health 503 while
//             it keeps serving, Connection: close on every response of the drain window, then it stops
//             accepting and finishes what is in flight).
// Exits non-zero if any request failed in either.
//   bun bench/multi-router/multi-router-bench.ts [--quick] [--variant retry|no-retry]

import { randomBytes } from "node:crypto";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connectBus, memoryLogger, Subjects } from "../../bus/index.ts";
import { startNatsServer, type NatsServer } from "../../tests/support/nats-server.ts";
import { eventually, freePort, waitForPort } from "../../tests/support/ports.ts";
import { startHelloBackend } from "../lib/backend.ts";
import { runWrk, wrkScript, type WrkResult } from "../lib/wrk.ts";
import { writeReport } from "../lib/report.ts";
import { pct, summarize } from "../lib/stats.ts";
import { stopChildren, stopOnSignals } from "../lib/stop-signals.ts";

/** How HAProxy treats a request that met a router going away. */
const VARIANTS = {
  retry: {
    title: "HAProxy retries (retry-on conn-failure empty-response response-timeout)",
    config: ["retries 3", "option redispatch 1", "retry-on conn-failure empty-response response-timeout"],
  },
  "no-retry": {
    title: "no HAProxy retries (retries 0): the router's drain alone",
    config: ["retries 0"],
  },
} as const;
type Variant = keyof typeof VARIANTS;

const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const variantArg = argv.includes("--variant") ? argv[argv.indexOf("--variant") + 1] : undefined;
const bad = argv.find((a, i) => !["--quick", "--variant"].includes(a) && argv[i - 1] !== "--variant");
if (bad || (argv.includes("--variant") && !(variantArg! in VARIANTS))) {
  console.error(`multi-router-bench: ${bad ? `unexpected argument ${bad}` : `--variant takes ${Object.keys(VARIANTS).join(" or ")}`}\nusage: bun bench/multi-router/multi-router-bench.ts [--quick] [--variant ${Object.keys(VARIANTS).join("|")}]`);
  process.exit(2);
}
const variants = (variantArg ? [variantArg] : Object.keys(VARIANTS)) as Variant[];
const SECONDS = quick ? 5 : 12;
// The scenario is one continuous run by nature; it is repeated whole (twice in a full run) for a spread.
const RUNS = quick ? 1 : 2;
// The drain time must exceed the load balancer's detection time (fall × inter + check latency).
const DRAIN_SECONDS = quick ? 2 : 3;
const CONNECTIONS = 64;
const HOST = "drain.skiff.localhost";
const repo = resolve(import.meta.dir, "../..");
const dir = mkdtempSync(join(tmpdir(), "skiff-multi-router-"));
const children: ChildProcess[] = [];
// The router measured is the checked-out source, bundled for Node now (router/dist/router.mjs may be
// older); beside it, where Node finds uWebSockets.js in the repo's node_modules.
const routerBundle = join(repo, "router", "dist", `.bench-multi-${process.pid}.mjs`);

function startRouter(name: string, natsUrl: string, port: number, statusPort: number) {
  const child = spawn("node", [routerBundle], {
    cwd: repo,
    env: {
      ...process.env,
      SKIFF_NATS_URL: natsUrl,
      SKIFF_ROUTER_PORT: String(port),
      SKIFF_ROUTER_STATUS_PORT: String(statusPort),
      SKIFF_ROUTER_STATUS_PASS: randomBytes(12).toString("base64url"), // never a file in the checkout's .skiff/
      SKIFF_ROUTER_DRAIN_SECONDS: String(DRAIN_SECONDS),
      SKIFF_MATCHER_WASM: join(repo, "wasm/dist/matcher.wasm"),
      SKIFF_LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  children.push(child);
  const exited = new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  return { name, child, port, statusPort, exited, output: () => out };
}

let nats: NatsServer | undefined;
/** Stops everything this bench started, on success and on failure alike. */
const cleanup = stopOnSignals(async () => {
  await stopChildren(children, { graceMs: 2_000 });
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(routerBundle, { force: true });
});

interface RunResult {
  variant: Variant;
  run: number;
  result: WrkResult;
  failed: number;
  exitCode: number | null;
  stoppedAfter: number;
}

try {
  execFileSync("node", [join(repo, "router/build.mjs"), routerBundle], { stdio: "ignore" });
  nats = await startNatsServer();
  const natsUrl = nats.url;
  const backendPort = await freePort();
  children.push(startHelloBackend(backendPort));
  await waitForPort(backendPort);
  const script = wrkScript(dir); // p99.9 too

  // Routes are soft state: re-registered every second, as agents do on their interval.
  const bus = await connectBus({ servers: [natsUrl], name: "multi-router-bench" }, memoryLogger());
  const register = () => bus.publish(Subjects.routerRegister, "router.register", { host: "127.0.0.1", port: backendPort, uris: [HOST] });
  register();
  const registrar = setInterval(register, 1000);

  /** One full scenario: two fresh routers behind a fresh HAProxy, r1 drained mid-run; all stopped after. */
  async function scenario(variant: Variant, run: number): Promise<RunResult> {
    const [p1, s1, p2, s2, lb] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const routers = [startRouter(`r1`, natsUrl, p1, s1), startRouter(`r2`, natsUrl, p2, s2)];
    for (const r of routers) {
      // a router that exits (a bad setting) fails the run now, with its output, not after the wait
      const exited = r.exited.then((code) => {
        throw new Error(`${r.name} exited (${code}) before it listened:\n${r.output().slice(-3000)}`);
      });
      await Promise.race([waitForPort(r.statusPort, 15_000), exited]);
      exited.catch(() => {}); // the run goes on; its stop is awaited on `exited` itself
    }
    register();
    for (const r of routers)
      await eventually(async () => {
        const res = await fetch(`http://127.0.0.1:${r.port}/`, { headers: { host: HOST } });
        return res.status === 200 ? true : undefined;
      }, 10_000, `${r.name} routes ${HOST} (${variant} run ${run})`);

    // HAProxy as the users' load balancer: health-checks each router's /health (503 while draining);
    // whether it also retries is the variant.
    const cfg = join(dir, `haproxy-${variant}-${run}.cfg`);
    writeFileSync(
      cfg,
      `global
  maxconn 4096
  nbthread 1
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout check 2s
${VARIANTS[variant].config.map((l) => `  ${l}`).join("\n")}
  http-reuse safe
frontend fe
  bind 127.0.0.1:${lb}
  default_backend routers
backend routers
  balance roundrobin
  option httpchk
  http-check send meth GET uri /health ver HTTP/1.1 hdr Host lb-check
  http-check expect status 200
${routers.map((r) => `  server ${r.name} 127.0.0.1:${r.port} check port ${r.statusPort} inter 300ms fall 2 rise 2`).join("\n")}
`,
    );
    const haproxy = spawn("haproxy", ["-f", cfg, "-db"], { stdio: ["ignore", "ignore", "inherit"] });
    children.push(haproxy);
    await waitForPort(lb);
    await eventually(async () => ((await fetch(`http://127.0.0.1:${lb}/`, { headers: { host: HOST } })).status === 200 ? true : undefined), 10_000, "HAProxy up");

    const load = runWrk({ url: `http://127.0.0.1:${lb}/`, connections: CONNECTIONS, seconds: SECONDS, host: HOST, script });
    await Bun.sleep(drainAt * 1000);
    const t0 = performance.now();
    routers[0]!.child.kill("SIGTERM");
    const exitCode = await routers[0]!.exited;
    const stoppedAfter = (performance.now() - t0) / 1000;
    const result = await load;
    // Tear this run down before the next: HAProxy and the surviving router.
    await stopChildren([haproxy, routers[1]!.child], { signal: "SIGKILL" });
    const failed = result.socketErrors + result.non2xx;
    console.log(`multi-router ${variant} run ${run}: ${result.requests} requests, ${failed} failed, ${result.rps.toFixed(0)} req/s, p99 ${result.p99ms} ms; r1 exited ${exitCode} after ${stoppedAfter.toFixed(2)} s`);
    return { variant, run, result, failed, exitCode, stoppedAfter };
  }

  const drainAt = SECONDS * 0.3;
  const runs: RunResult[] = [];
  // variants alternate run by run, so drifting load from other work hits them alike
  for (let i = 1; i <= RUNS; i++) for (const v of variants) runs.push(await scenario(v, i));
  clearInterval(registrar);
  await bus.close();

  const failed = runs.reduce((n, r) => n + r.failed, 0);
  const allExitedCleanly = runs.every((r) => r.exitCode === 0);
  const figures: Record<string, number> = { runs: runs.length, failed, drain_seconds: DRAIN_SECONDS, connections: CONNECTIONS };
  const summaryRows: (string | number)[][] = [];
  for (const v of variants) {
    const mine = runs.filter((r) => r.variant === v);
    const rps = summarize(mine.map((r) => r.result.rps));
    const p99 = summarize(mine.map((r) => r.result.p99ms));
    const k = v.replace("-", "_");
    const vFailed = mine.reduce((n, r) => n + r.failed, 0);
    Object.assign(figures, {
      [`${k}.runs`]: mine.length,
      [`${k}.requests`]: mine.reduce((n, r) => n + r.result.requests, 0),
      [`${k}.failed`]: vFailed,
      [`${k}.rps`]: rps.median,
      [`${k}.rps_spread`]: rps.spread,
      [`${k}.p99_ms`]: p99.median,
      [`${k}.p99_ms_spread`]: p99.spread,
      [`${k}.drained_router_stopped_after_s`]: summarize(mine.map((r) => r.stoppedAfter)).median,
    });
    for (const r of mine) {
      figures[`${k}.run${r.run}.requests`] = r.result.requests;
      figures[`${k}.run${r.run}.failed`] = r.failed;
      figures[`${k}.run${r.run}.rps`] = r.result.rps;
      figures[`${k}.run${r.run}.p50_ms`] = r.result.p50ms;
      figures[`${k}.run${r.run}.p99_ms`] = r.result.p99ms;
      figures[`${k}.run${r.run}.p999_ms`] = r.result.p999ms;
      figures[`${k}.run${r.run}.drained_router_stopped_after_s`] = r.stoppedAfter;
    }
    summaryRows.push([v, vFailed, rps.median, pct(rps), p99.median, pct(p99)]);
  }
  writeReport({
    bench: "multi-router",
    command: `npm run bench -- multi-router${quick ? " --quick" : ""}${variantArg ? ` (bun bench/multi-router/multi-router-bench.ts --variant ${variantArg})` : ""}`,
    quick,
    figures,
    tables: [
      {
        title: `Two routers behind HAProxy; r1 drained (SIGTERM, ${DRAIN_SECONDS} s drain) ${drainAt.toFixed(1)} s into a ${SECONDS} s wrk run at ${CONNECTIONS} connections; ${RUNS} run${RUNS > 1 ? "s" : ""} per variant, each from scratch`,
        columns: ["variant", "run", "requests", "failed (socket errors + non-2xx)", "req/s", "p50 (ms)", "p99 (ms)", "p99.9 (ms)", "r1 exit code", "r1 stopped after SIGTERM (s)"],
        rows: runs.map((r) => [r.variant, `run ${r.run}`, r.result.requests, r.failed, r.result.rps, r.result.p50ms, r.result.p99ms, r.result.p999ms, String(r.exitCode), r.stoppedAfter]),
        notes: variants.map((v) => `${v}: ${VARIANTS[v].title}.`).join(" "),
        charts: [
          { title: "Latency through HAProxy while r1 drains and stops", values: ["p50 (ms)", "p99 (ms)", "p99.9 (ms)"], groupBy: ["variant", "run"], axis: "ms, whole wrk run (lower is better)" },
        ],
      },
      {
        title: "Summary per variant",
        columns: ["variant", "failed requests, all runs", "req/s, median of runs", "req/s spread", "p99 (ms), median of runs", "p99 spread"],
        rows: summaryRows,
        notes: "spread: ± half the min–max range of the runs, as a percentage of the median.",
        charts: [],
      },
    ],
    notes: [
      "HAProxy checks each router's /health every 300 ms (fall 2, rise 2, check timeout 2 s), balances round-robin and reuses server connections (`http-reuse safe`).",
      `retry: ${VARIANTS.retry.config.join("; ")}. no-retry: ${VARIANTS["no-retry"].config.join("; ")}, no redispatch: every request that meets a closing router fails, so its failures are the router's own.`,
      "The draining router answers /health with 503 for the drain time and keeps serving, each response with Connection: close (the LB reconnects, to the other router once r1 is marked down); then it stops accepting, finishes what is in flight and closes the remaining connections.",
      "Each run is one continuous wrk run by nature (the drain happens inside it), so repetition is whole runs: fresh routers and HAProxy each time, the same backend and nats-server; the variants alternate run by run. The router is bundled from the checked-out source for the run.",
    ],
  });
  console.log(`multi-router: ${runs.length} run(s), ${failed} failed (${variants.map((v) => `${v}: ${figures[`${v.replace("-", "_")}.failed`]}`).join(", ")})`);
  await cleanup();
  process.exit(failed === 0 && allExitedCleanly ? 0 : 1);
} catch (err) {
  console.error(err);
  await cleanup();
  process.exit(1);
}
