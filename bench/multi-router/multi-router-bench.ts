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

const quick = process.argv.includes("--quick");
const SECONDS = quick ? 5 : 12;
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

  const [p1, s1, p2, s2, lb] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const routers = [startRouter("r1", nats.url, p1, s1), startRouter("r2", nats.url, p2, s2)];
  for (const r of routers) await waitForPort(r.statusPort, 15_000);

  // Routes are soft state: re-registered every second, as agents do on their interval.
  const bus = await connectBus({ servers: [nats.url], name: "multi-router-bench" }, memoryLogger());
  const register = () => bus.publish(Subjects.routerRegister, "router.register", { host: "127.0.0.1", port: backendPort, uris: [HOST] });
  register();
  const registrar = setInterval(register, 1000);
  for (const r of routers)
    await eventually(async () => {
      const res = await fetch(`http://127.0.0.1:${r.port}/`, { headers: { host: HOST } });
      return res.status === 200 ? true : undefined;
    }, 10_000, `${r.name} routes ${HOST}`);

  // HAProxy as the users' load balancer: health-checks each router's /health (503 while draining),
  // and retries a request whose connection failed before any response (a router that just closed).
  const cfg = join(dir, "haproxy.cfg");
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

  const drainAt = SECONDS * 0.3;
  const load = runWrk({ url: `http://127.0.0.1:${lb}/`, connections: CONNECTIONS, seconds: SECONDS, host: HOST });
  await Bun.sleep(drainAt * 1000);
  const t0 = performance.now();
  routers[0]!.child.kill("SIGTERM");
  const exitCode = await routers[0]!.exited;
  const stoppedAfter = (performance.now() - t0) / 1000;
  const result = await load;
  clearInterval(registrar);
  await bus.close();
  await nats.stop();

  const failed = result.socketErrors + result.non2xx;
  writeReport({
    bench: "multi-router",
    command: `npm run bench -- multi-router${quick ? " --quick" : ""}`,
    quick,
    figures: { requests: result.requests, failed, rps: result.rps, p99_ms: result.p99ms, drained_router_stopped_after_s: stoppedAfter },
    tables: [
      {
        title: `Two routers behind HAProxy; r1 drained (SIGTERM, ${DRAIN_SECONDS} s drain) ${drainAt.toFixed(1)} s into a ${SECONDS} s wrk run at ${CONNECTIONS} connections`,
        columns: ["figure", "value"],
        rows: [
          ["requests", result.requests],
          ["failed (socket errors + non-2xx)", failed],
          ["req/s", result.rps],
          ["p50 (ms)", result.p50ms],
          ["p99 (ms)", result.p99ms],
          ["r1 exit code", String(exitCode)],
          ["r1 stopped after SIGTERM (s)", stoppedAfter],
        ],
      },
    ],
    notes: [
      "HAProxy checks each router's /health every 300 ms (fall 2, check timeout 2 s) and retries requests whose connection failed before any response (retry-on conn-failure empty-response).",
      "The draining router answers /health with 503 for the drain time, keeps serving, then stops accepting and finishes what is in flight.",
    ],
  });
  console.log(`multi-router: ${result.requests} requests, ${failed} failed, ${result.rps.toFixed(0)} req/s, p99 ${result.p99ms} ms; r1 exited ${exitCode} after ${stoppedAfter.toFixed(2)} s`);
  cleanup();
  process.exit(failed === 0 && exitCode === 0 ? 0 : 1);
} catch (err) {
  console.error(err);
  cleanup();
  process.exit(1);
}
