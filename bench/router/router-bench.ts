// Router benchmark against real peers: wrk against the backend direct, the skiff router, nginx
// (1 worker, upstream keepalive 512) and HAProxy (1 thread, http-reuse always), all in front of the
// same uWS.js backend under Node. Reports req/s, p50/p99, each proxy's CPU µs per request (user +
// system from /proc/<pid>/stat, robust to noise from other processes) and RSS, with ratios to nginx
// and to the backend direct.
//
// Pinned as bench/README.md says, identically for every peer: the proxy on CPU 1 (`taskset -c 1`),
// wrk and the backend on CPU 0. Targets are measured in turn within each round (alternating, so
// drifting load from other work hits them alike); each figure is the median over the rounds.
//
//   ./node_modules/.bin/bun bench/router/router-bench.ts [--quick] [--sizes 0,1024] [--conns 64,256] [--duration 10] [--rounds 3]
//
// Results: bench/results/router.{json,md}; --quick writes bench/results/router.quick.{json,md}.

import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connectBus, createLogger, Subjects } from "../../bus/index.ts";
import { startNatsServer } from "../../tests/support/nats-server.ts";
import { freePort, waitForPort } from "../../tests/support/ports.ts";
import { writeReport, type Table } from "../lib/report.ts";
import { runWrk } from "../lib/wrk.ts";

const root = resolve(import.meta.dir, "../..");
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const opt = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
};
const quick = flag("--quick");
const duration = Number(opt("--duration", quick ? "1" : "10"));
const rounds = Number(opt("--rounds", quick ? "1" : "3"));
const sizes = opt("--sizes", quick ? "0" : "0,1024").split(",").map(Number);
const conns = opt("--conns", quick ? "64" : "64,256").split(",").map(Number);
const targets = opt("--targets", "direct,skiff,nginx,haproxy").split(",");
const HOST = "bench.skiff.localhost";
/** the proxy under test; wrk and the backend share the other core */
const PROXY_CPU = "1";
const LOAD_CPU = "0";

interface Run {
  rps: number;
  p50ms: number;
  p99ms: number;
  failures: number;
  cpuUs: number;
  userUs: number;
  sysUs: number;
}

interface Result {
  target: string;
  size: number;
  connections: number;
  /** medians over the rounds */
  rps: number;
  p50ms: number;
  p99ms: number;
  failures: number;
  cpuUsPerReq: number | null;
  userUsPerReq: number | null;
  sysUsPerReq: number | null;
  rssMiB: number | null;
  rounds: Run[];
}

const dir = mkdtempSync(join(tmpdir(), "skiff-router-bench-"));
const children: ChildProcess[] = [];
let stopping = false;

function start(cpus: string, cmd: string, argv: string[], env: Record<string, string> = {}): ChildProcess {
  // taskset execs the command: the child's pid is the proxy's own, for /proc/<pid>/stat
  const child = spawn("taskset", ["-c", cpus, cmd, ...argv], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  child.on("exit", (code) => {
    if (code && code !== 0 && !stopping) console.error(`${cmd} exited ${code}: ${out.slice(-2000)}`);
  });
  children.push(child);
  return child;
}

function cpuTicks(pid: number): [number, number] {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return [Number(fields[11]), Number(fields[12])]; // utime, stime (fields 14, 15)
}
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const round1 = (n: number) => Math.round(n * 10) / 10;

async function main() {
  const loadBefore = loadavg().map((l) => l.toFixed(2)).join(" ");
  // The backend: uWS.js under Node on the load core, answering /bytes/<n> with n bytes.
  const backendPort = await freePort();
  const backendFile = join(dir, "backend.cjs");
  writeFileSync(
    backendFile,
    `const uws = require(${JSON.stringify(join(root, "node_modules", "uWebSockets.js"))});
const bodies = new Map(); for (const n of ${JSON.stringify(sizes)}) bodies.set('/bytes/' + n, Buffer.alloc(n, 120));
uws.App().any('/*', (res, req) => { res.end(bodies.get(req.getUrl()) ?? 'hello'); })
  .listen('127.0.0.1', ${backendPort}, 1, (s) => { if (!s) process.exit(1); });`,
  );
  start(LOAD_CPU, "node", [backendFile]);
  await waitForPort(backendPort);

  const ports: Record<string, number> = { direct: backendPort };
  const pids: Record<string, number | undefined> = { direct: undefined };

  if (targets.includes("skiff")) {
    const nats = await startNatsServer();
    stopFns.push(() => nats.stop());
    const outfile = join(root, "router", "dist", `.bench-${process.pid}.mjs`);
    execFileSync("node", [join(root, "router/build.mjs"), outfile], { stdio: "ignore" });
    stopFns.push(async () => rmSync(outfile, { force: true }));
    ports.skiff = await freePort();
    const router = start(PROXY_CPU, "node", [outfile], {
      SKIFF_NATS_URL: nats.url,
      SKIFF_ROUTER_PORT: String(ports.skiff),
      SKIFF_ROUTER_STATUS_PORT: "0",
      SKIFF_ROUTER_DRAIN_SECONDS: "0",
      SKIFF_MATCHER_WASM: join(root, "wasm/dist/matcher.wasm"),
    });
    pids.skiff = router.pid;
    await waitForPort(ports.skiff);
    const bus = await connectBus({ servers: [nats.url], name: "bench" }, createLogger("bench", "warn"));
    // Re-registered every 20 s as an agent does: a run longer than the stale threshold (120 s) would
    // otherwise see its route pruned and measure 404s.
    const register = () =>
      bus.publish(Subjects.routerRegister, "router.register", { host: "127.0.0.1", port: backendPort, uris: [HOST], app: "bench-app", private_instance_id: "bench-0", private_instance_index: "0" });
    register();
    const reregister = setInterval(register, 20_000);
    stopFns.unshift(async () => {
      clearInterval(reregister);
      await bus.close();
    });
    await bus.flush();
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && (await fetch(`http://127.0.0.1:${ports.skiff}/`, { headers: { host: HOST } })).status !== 200) await Bun.sleep(50);
  }
  if (targets.includes("nginx")) {
    ports.nginx = await freePort();
    const conf = join(dir, "nginx.conf");
    writeFileSync(
      conf,
      `worker_processes 1; daemon off; master_process off; pid ${dir}/nginx.pid; error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path ${dir}/ngx-body; proxy_temp_path ${dir}/ngx-proxy; fastcgi_temp_path ${dir}/ngx-fcgi; uwsgi_temp_path ${dir}/ngx-uwsgi; scgi_temp_path ${dir}/ngx-scgi;
  upstream backend { server 127.0.0.1:${backendPort}; keepalive 512; }
  server { listen 127.0.0.1:${ports.nginx}; location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_buffering on; } } }`,
    );
    pids.nginx = start(PROXY_CPU, "nginx", ["-c", conf, "-p", dir]).pid;
    await waitForPort(ports.nginx);
  }
  if (targets.includes("haproxy")) {
    ports.haproxy = await freePort();
    const conf = join(dir, "haproxy.cfg");
    writeFileSync(
      conf,
      `global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option forwardfor
  http-reuse always
frontend fe
  bind 127.0.0.1:${ports.haproxy}
  default_backend be
backend be
  server s1 127.0.0.1:${backendPort}
`,
    );
    pids.haproxy = start(PROXY_CPU, "haproxy", ["-f", conf, "-db"]).pid;
    await waitForPort(ports.haproxy);
  }

  const results: Result[] = [];
  for (const size of sizes)
    for (const c of conns) {
      const cell: Record<string, Run[]> = {};
      const live = targets.filter((t) => ports[t] !== undefined);
      const url = (t: string) => `http://127.0.0.1:${ports[t]}/bytes/${size}`;
      // warm-up: JIT, pools sized to the concurrency
      for (const t of live) await runWrk({ url: url(t), connections: c, seconds: quick ? 1 : 3, host: HOST, cpus: LOAD_CPU });
      for (let r = 0; r < rounds; r++)
        for (const t of live) {
          const pid = pids[t];
          const before: [number, number] = pid ? cpuTicks(pid) : [0, 0];
          const w = await runWrk({ url: url(t), connections: c, seconds: duration, host: HOST, cpus: LOAD_CPU });
          const after: [number, number] = pid ? cpuTicks(pid) : [0, 0];
          const per = (ticks: number) => (w.requests ? ((ticks / CLK_TCK) * 1e6) / w.requests : NaN);
          const run: Run = {
            rps: Math.round(w.rps),
            p50ms: w.p50ms,
            p99ms: w.p99ms,
            failures: w.socketErrors + w.non2xx,
            userUs: round1(per(after[0] - before[0])),
            sysUs: round1(per(after[1] - before[1])),
            cpuUs: round1(per(after[0] - before[0] + after[1] - before[1])),
          };
          (cell[t] ??= []).push(run);
          console.log(JSON.stringify({ round: r, target: t, size, connections: c, ...run }));
        }
      for (const t of live) {
        const runs = cell[t]!;
        const pid = pids[t];
        results.push({
          target: t,
          size,
          connections: c,
          rps: Math.round(median(runs.map((x) => x.rps))),
          p50ms: median(runs.map((x) => x.p50ms)),
          p99ms: median(runs.map((x) => x.p99ms)),
          failures: runs.reduce((n, x) => n + x.failures, 0),
          cpuUsPerReq: pid ? round1(median(runs.map((x) => x.cpuUs))) : null,
          userUsPerReq: pid ? round1(median(runs.map((x) => x.userUs))) : null,
          sysUsPerReq: pid ? round1(median(runs.map((x) => x.sysUs))) : null,
          rssMiB: pid ? rssMiB(pid) : null,
          rounds: runs,
        });
      }
    }

  const command = `./node_modules/.bin/bun bench/router/router-bench.ts ${args.join(" ")}`.trim();
  const find = (t: string, r: Result) => results.find((x) => x.target === t && x.size === r.size && x.connections === r.connections);
  const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? Math.round((a / b) * 100) / 100 : NaN);
  const tables: Table[] = [];
  for (const size of sizes) {
    const rows = results
      .filter((r) => r.size === size)
      .map((r) => [
        r.target,
        String(r.connections),
        r.rps,
        ratio(r.rps, find("nginx", r)?.rps),
        ratio(r.rps, find("direct", r)?.rps),
        r.p50ms,
        r.p99ms,
        String(r.failures),
        r.cpuUsPerReq ?? NaN,
        r.userUsPerReq ?? NaN,
        r.sysUsPerReq ?? NaN,
        ratio(r.cpuUsPerReq, find("nginx", r)?.cpuUsPerReq),
        r.rssMiB === null ? NaN : String(r.rssMiB),
      ]);
    tables.push({
      title: `${size}-byte responses (req/s)`,
      columns: ["target", "conns", "req/s", "× nginx req/s", "× direct req/s", "p50 ms", "p99 ms", "failures", "proxy CPU µs/req", "user µs", "sys µs", "× nginx CPU", "RSS MiB"],
      rows,
      notes: `Medians of ${rounds} alternating round(s) of wrk -t1 -d${duration}s; proxy on CPU ${PROXY_CPU}, wrk and backend on CPU ${LOAD_CPU}.`,
    });
  }
  const figures: Record<string, number> = {};
  for (const r of results) {
    const k = `${r.target}.b${r.size}.c${r.connections}`;
    figures[`${k}.req_s`] = r.rps;
    figures[`${k}.p99_ms`] = r.p99ms;
    if (r.cpuUsPerReq !== null) figures[`${k}.cpu_us_per_req`] = r.cpuUsPerReq;
  }
  const failed = results.filter((r) => r.failures > 0);
  if (failed.length) console.error(`requests failed: ${failed.map((r) => `${r.target} ${r.size} B c${r.connections}: ${r.failures}`).join("; ")}`);
  const loadAfter = loadavg().map((l) => l.toFixed(2)).join(" ");
  writeReport({
    bench: "router",
    command,
    quick,
    tables,
    figures,
    notes: [
      `Pinned: every proxy (skiff, nginx 1 worker, HAProxy 1 thread) with \`taskset -c ${PROXY_CPU}\`; wrk -t1 and the uWS.js backend with \`taskset -c ${LOAD_CPU}\`. "direct" is wrk straight to the backend, both on CPU ${LOAD_CPU}.`,
      "Proxy CPU µs/req = (utime + stime of the proxy process over the run) / requests served: the fairest single figure on a shared machine; req/s and p99 move with other work.",
      `The machine's 2 cores were shared with other work while this ran: load average ${loadBefore} before, ${loadAfter} after. Compare ratios within one run.`,
      ...(failed.length ? [`FAILED requests (socket errors or non-2xx): ${failed.map((r) => `${r.target} ${r.size} B c${r.connections}: ${r.failures}`).join("; ")}`] : []),
      `Every run: ${JSON.stringify(results.map((r) => ({ target: r.target, size: r.size, conns: r.connections, rounds: r.rounds.map((x) => [x.rps, x.cpuUs, x.p99ms]) })))}`,
    ],
  });
}

const stopFns: (() => Promise<void>)[] = [];
async function cleanup() {
  stopping = true;
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  for (const f of stopFns) await f().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
}

try {
  await main();
} finally {
  await cleanup();
}
process.exit(0);
