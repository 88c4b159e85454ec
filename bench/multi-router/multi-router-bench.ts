// Two skiff routers behind HAProxy as the load balancer; one is drained (SIGTERM) and stops in the
// middle of a wrk run. The promise: zero failed requests. Exits non-zero if any request failed.
//   bun bench/multi-router/multi-router-bench.ts [--quick]

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connectBus, memoryLogger, Subjects } from "../../bus/index.ts";
import { startNatsServer } from "../../tests/support/nats-server.ts";
import { eventually, freePort, waitForPort } from "../../tests/support/ports.ts";
import { startHelloBackend } from "../lib/backend.ts";
import { runWrk } from "../lib/wrk.ts";
import { writeReport } from "../lib/report.ts";
import { pct, summarize } from "../lib/stats.ts";

const quick = process.argv.includes("--quick");
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

function startRouter(name: string, natsUrl: string, port: number, statusPort: number) {
  const child = spawn("node", [join(repo, "router/dist/router.mjs")], {
    env: {
      ...process.env,
      SKIFF_NATS_URL: natsUrl,
      SKIFF_ROUTER_PORT: String(port),
      SKIFF_ROUTER_STATUS_PORT: String(statusPort),
      SKIFF_ROUTER_DRAIN_SECONDS: String(DRAIN_SECONDS),
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

const cleanup = () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
};

try {
  const nats = await startNatsServer();
  const backendPort = await freePort();
  children.push(startHelloBackend(backendPort));
  await waitForPort(backendPort);

  // Routes are soft state: re-registered every second, as agents do on their interval.
  const bus = await connectBus({ servers: [nats.url], name: "multi-router-bench" }, memoryLogger());
  const register = () => bus.publish(Subjects.routerRegister, "router.register", { host: "127.0.0.1", port: backendPort, uris: [HOST] });
  register();
  const registrar = setInterval(register, 1000);

  /** One full scenario: two fresh routers behind a fresh HAProxy, r1 drained mid-run; all stopped after. */
  async function scenario(run: number) {
    const [p1, s1, p2, s2, lb] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    const routers = [startRouter(`r1`, nats.url, p1, s1), startRouter(`r2`, nats.url, p2, s2)];
    for (const r of routers) await waitForPort(r.statusPort, 15_000);
    register();
    for (const r of routers)
      await eventually(async () => {
        const res = await fetch(`http://127.0.0.1:${r.port}/`, { headers: { host: HOST } });
        return res.status === 200 ? true : undefined;
      }, 10_000, `${r.name} routes ${HOST} (run ${run})`);

    // HAProxy as the users' load balancer: health-checks each router's /health (503 while draining),
    // and retries a request whose connection failed before any response (a router that just closed).
    const cfg = join(dir, `haproxy-${run}.cfg`);
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
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response response-timeout
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

    const load = runWrk({ url: `http://127.0.0.1:${lb}/`, connections: CONNECTIONS, seconds: SECONDS, host: HOST });
    await Bun.sleep(drainAt * 1000);
    const t0 = performance.now();
    routers[0]!.child.kill("SIGTERM");
    const exitCode = await routers[0]!.exited;
    const stoppedAfter = (performance.now() - t0) / 1000;
    const result = await load;
    // Tear this run down before the next: HAProxy and the surviving router.
    const haproxyExited = new Promise((r) => (haproxy.exitCode !== null || haproxy.signalCode !== null ? r(null) : haproxy.once("exit", r)));
    haproxy.kill("SIGKILL");
    routers[1]!.child.kill("SIGKILL");
    await Promise.all([haproxyExited, routers[1]!.exited]);
    const failed = result.socketErrors + result.non2xx;
    console.log(`multi-router run ${run}: ${result.requests} requests, ${failed} failed, ${result.rps.toFixed(0)} req/s, p99 ${result.p99ms} ms; r1 exited ${exitCode} after ${stoppedAfter.toFixed(2)} s`);
    return { run, result, failed, exitCode, stoppedAfter };
  }

  const drainAt = SECONDS * 0.3;
  const runs = [];
  for (let i = 1; i <= RUNS; i++) runs.push(await scenario(i));
  clearInterval(registrar);
  await bus.close();
  await nats.stop();

  const rps = summarize(runs.map((r) => r.result.rps));
  const p99 = summarize(runs.map((r) => r.result.p99ms));
  const failed = runs.reduce((n, r) => n + r.failed, 0);
  const allExitedCleanly = runs.every((r) => r.exitCode === 0);
  const figures: Record<string, number> = {
    runs: runs.length,
    requests: runs.reduce((n, r) => n + r.result.requests, 0),
    failed,
    rps: rps.median,
    rps_spread: rps.spread,
    rps_min: rps.min,
    rps_max: rps.max,
    p99_ms: p99.median,
    p99_ms_spread: p99.spread,
    drained_router_stopped_after_s: summarize(runs.map((r) => r.stoppedAfter)).median,
  };
  for (const r of runs) {
    figures[`run${r.run}.requests`] = r.result.requests;
    figures[`run${r.run}.failed`] = r.failed;
    figures[`run${r.run}.rps`] = r.result.rps;
    figures[`run${r.run}.p99_ms`] = r.result.p99ms;
    figures[`run${r.run}.drained_router_stopped_after_s`] = r.stoppedAfter;
  }
  writeReport({
    bench: "multi-router",
    command: `npm run bench -- multi-router${quick ? " --quick" : ""}`,
    quick,
    figures,
    tables: [
      {
        title: `Two routers behind HAProxy; r1 drained (SIGTERM, ${DRAIN_SECONDS} s drain) ${drainAt.toFixed(1)} s into a ${SECONDS} s wrk run at ${CONNECTIONS} connections; ${RUNS} run${RUNS > 1 ? "s" : ""}, each from scratch`,
        columns: ["run", "requests", "failed (socket errors + non-2xx)", "req/s", "p50 (ms)", "p99 (ms)", "r1 exit code", "r1 stopped after SIGTERM (s)"],
        rows: runs.map((r) => [`run ${r.run}`, r.result.requests, r.failed, r.result.rps, r.result.p50ms, r.result.p99ms, String(r.exitCode), r.stoppedAfter]),
      },
      {
        title: "Summary over the runs",
        columns: ["figure", "value"],
        rows: [
          ["failed requests, all runs", failed],
          ["req/s, median of runs", rps.median],
          ["req/s spread (± half the min–max range)", pct(rps)],
          ["req/s min – max", `${Math.round(rps.min)} – ${Math.round(rps.max)}`],
          ["p99 (ms), median of runs", p99.median],
          ["p99 spread", pct(p99)],
        ],
      },
    ],
    notes: [
      "HAProxy checks each router's /health every 300 ms (fall 2, check timeout 2 s) and retries requests whose connection failed before any response (retry-on conn-failure empty-response).",
      "The draining router answers /health with 503 for the drain time, keeps serving, then stops accepting and finishes what is in flight.",
      "Each run is one continuous wrk run by nature (the drain happens inside it), so repetition is whole runs: fresh routers and HAProxy each time, the same backend and nats-server.",
    ],
  });
  console.log(`multi-router: ${runs.length} run(s), ${failed} failed, median ${rps.median.toFixed(0)} req/s ${pct(rps)}`);
  cleanup();
  process.exit(failed === 0 && allExitedCleanly ? 0 : 1);
} catch (err) {
  console.error(err);
  cleanup();
  process.exit(1);
}
