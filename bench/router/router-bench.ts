// Router benchmark against real peers: wrk against the backend direct, the skiff router, nginx
// (1 worker, upstream keepalive 512) and HAProxy (1 thread, http-reuse always), all in front of the
// same uWS.js backend under Node. Reports req/s, p50/p99, each proxy's CPU µs per request (user +
// system from /proc/<pid>/stat, robust to noise from other processes) and RSS, with ratios to nginx
// and to the backend direct.
//
// Pinned as bench/README.md says, identically for every peer: the proxy on CPU 1 (`taskset -c 1`),
// wrk and the backend on CPU 0. Targets are measured in turn within each round (alternating, so
// drifting load from other work hits them alike); each figure is the median over the rounds, with its
// spread (±half the min–max range, as % of the median) beside it.
//
//   ./node_modules/.bin/bun bench/router/router-bench.ts [--quick] [--sizes 0,1024] [--conns 64,256] [--duration 10] [--rounds 3]
//       [--targets direct,skiff,nginx,haproxy] [--post 65536] [--routes 1000000] [--churn 1000] [--merge]
//
// --post N     every request is a POST with an N-byte body (wrk Lua script written to the temp dir); the
//              backend reads the whole body before answering; nginx streams it (proxy_request_buffering off,
//              as skiff does), HAProxy streams by default.
// --routes N   adds a second skiff router ("skiff+routes", its own NATS) with N extra routes loaded over
//              router.register before measuring, alternated with the 10-route skiff in the same rounds.
// --churn N    adds a third skiff router ("skiff+churn", its own NATS) that, while it is measured, gets N
//              router.register and N router.unregister per second of distinct routes from this process.
// --merge      keeps the tables and figures of the existing results file that this run does not re-measure
//              (each table says which run it comes from).
//
// Results: bench/results/router.{json,md}; --quick writes bench/results/router.quick.{json,md}.

import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connectBus, createLogger, encode, Subjects, type Bus, type RouterRegister } from "../../bus/index.ts";
import { startNatsServer } from "../../tests/support/nats-server.ts";
import { freePort, waitForPort } from "../../tests/support/ports.ts";
import { resultsDir, writeReport, type Table } from "../lib/report.ts";
import { summarize } from "../lib/stats.ts";
import { parseWrk, type WrkResult } from "../lib/wrk.ts";

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
/** request body bytes per POST; 0 = GET */
const postBytes = Number(opt("--post", "0"));
const extraRoutes = Number(opt("--routes", "0"));
const churnPerSec = Number(opt("--churn", "0"));
const merge = flag("--merge");
/** routes in every skiff router's table besides the loaded ones: the bench host and 9 others */
const BASE_ROUTES = 10;
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
  /** (max - min) / median over the rounds, as a fraction */
  rpsSpread: number;
  cpuSpread: number | null;
  rounds: Run[];
}

const dir = mkdtempSync(join(tmpdir(), "skiff-router-bench-"));
const children: ChildProcess[] = [];
let stopping = false;

function start(cpus: string | null, cmd: string, argv: string[], env: Record<string, string> = {}): ChildProcess {
  // taskset execs the command: the child's pid is the proxy's own, for /proc/<pid>/stat
  const [c, a] = cpus ? ["taskset", ["-c", cpus, cmd, ...argv]] : [cmd, argv];
  const child = spawn(c, a, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let out = "";
  child.stdout!.on("data", (d) => (out = (out + d).slice(-4000)));
  child.stderr!.on("data", (d) => (out = (out + d).slice(-4000)));
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
const fmtSpread = (f: number | null) => (f === null || !Number.isFinite(f) ? "—" : `±${(f * 50).toFixed(0)}%`);

/** wrk -t1 pinned to the load core, with an optional Lua script (the POST body). */
function runWrk(opts: { url: string; connections: number; seconds: number; host: string; cpus: string; script?: string }): Promise<WrkResult> {
  const argv = ["-c", opts.cpus, "wrk", "-t1", `-c${opts.connections}`, `-d${opts.seconds}s`, "--latency", "-H", `Host: ${opts.host}`, ...(opts.script ? ["-s", opts.script] : []), opts.url];
  return new Promise((resolve, reject) => {
    const p = spawn("taskset", argv, { stdio: ["ignore", "pipe", "pipe"] });
    let s = "";
    p.stdout.on("data", (d) => (s += d));
    p.stderr.on("data", (d) => (s += d));
    p.on("exit", (code) => (code === 0 ? resolve(parseWrk(s)) : reject(new Error(`wrk failed (${code}): ${s}`))));
  });
}

interface Skiff {
  port: number;
  statusPort: number;
  pid: number;
  bus: Bus;
}

const routeCount = async (s: Skiff) => Number(/^skiff_router_routes (\d+)/m.exec(await (await fetch(`http://127.0.0.1:${s.statusPort}/metrics`)).text())?.[1] ?? NaN);

let routerBundle: string | undefined;
/** One skiff router on the proxy core with a NATS server of its own and the 10 base routes. */
async function startSkiff(backendPort: number): Promise<Skiff> {
  const nats = await startNatsServer();
  stopFns.push(() => nats.stop());
  if (!routerBundle) {
    routerBundle = join(root, "router", "dist", `.bench-${process.pid}.mjs`);
    execFileSync("node", [join(root, "router/build.mjs"), routerBundle], { stdio: "ignore" });
    const f = routerBundle;
    stopFns.push(async () => rmSync(f, { force: true }));
  }
  const port = await freePort();
  const statusPort = await freePort();
  const router = start(PROXY_CPU, "node", [routerBundle], {
    SKIFF_NATS_URL: nats.url,
    SKIFF_ROUTER_PORT: String(port),
    SKIFF_ROUTER_STATUS_PORT: String(statusPort),
    SKIFF_ROUTER_DRAIN_SECONDS: "0",
    SKIFF_MATCHER_WASM: join(root, "wasm/dist/matcher.wasm"),
  });
  await waitForPort(port);
  await waitForPort(statusPort);
  const bus = await connectBus({ servers: [nats.url], name: "bench" }, createLogger("bench", "warn"));
  // The bench host plus 9 others on the same backend: a 10-route table. Re-registered every 20 s as an
  // agent does: a run longer than the stale threshold (120 s) would otherwise see them pruned.
  const uris = [HOST, ...Array.from({ length: BASE_ROUTES - 1 }, (_, i) => `app-${i}.${HOST}`)];
  const register = () =>
    bus.publish(Subjects.routerRegister, "router.register", { host: "127.0.0.1", port: backendPort, uris, app: "bench-app", private_instance_id: "bench-0", private_instance_index: "0" });
  register();
  const reregister = setInterval(register, 20_000);
  stopFns.unshift(async () => {
    clearInterval(reregister);
    await bus.close();
  });
  await bus.flush();
  const s: Skiff = { port, statusPort, pid: router.pid!, bus };
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (await fetch(`http://127.0.0.1:${port}/`, { headers: { host: HOST } })).status !== 200) await Bun.sleep(50);
  if ((await routeCount(s)) !== BASE_ROUTES) throw new Error(`skiff router has ${await routeCount(s)} routes, expected ${BASE_ROUTES}`);
  return s;
}

const loadRoute = (i: number, prefix: string): RouterRegister => ({
  // a distinct endpoint per route, as distinct app instances have; nothing listens there
  host: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
  port: 61_000,
  uris: [`${prefix}-${i}.load.skiff.localhost`],
  app: `${prefix}-app-${i}`,
  private_instance_id: `${prefix}-${i}`,
  private_instance_index: "0",
  // kept for the whole run without re-registering
  stale_threshold_in_seconds: 3600,
});

/** Publishes n router.register in batches, never more than maxLag ahead of the router's route count. */
async function loadRoutes(s: Skiff, n: number): Promise<{ seconds: number; perSec: number; routes: number }> {
  const t0 = performance.now();
  const batch = 5000;
  const maxLag = 50_000;
  let lastLog = t0;
  for (let i = 0; i < n; ) {
    const end = Math.min(n, i + batch);
    for (; i < end; i++) s.bus.publishRaw(Subjects.routerRegister, encode("router.register", loadRoute(i, "load")));
    await s.bus.flush();
    for (;;) {
      const have = (await routeCount(s)) - BASE_ROUTES;
      if (i - have <= maxLag) break;
      await Bun.sleep(20);
    }
    if (performance.now() - lastLog > 5000) {
      lastLog = performance.now();
      console.log(`loading routes: ${i} published, ${(await routeCount(s)) - BASE_ROUTES} in the table`);
    }
  }
  const deadline = Date.now() + 120_000;
  let routes = 0;
  while (Date.now() < deadline && (routes = await routeCount(s)) < n + BASE_ROUTES) await Bun.sleep(100);
  if (routes !== n + BASE_ROUTES) throw new Error(`skiff router has ${routes} routes after loading ${n}, expected ${n + BASE_ROUTES}`);
  const seconds = (performance.now() - t0) / 1000;
  return { seconds: round1(seconds), perSec: Math.round(n / seconds), routes };
}

/** Registers perSec new distinct routes per second and unregisters those registered a second earlier. */
function startChurn(s: Skiff, perSec: number) {
  const t0 = performance.now();
  const live: Uint8Array[] = [];
  let k = 0;
  let registered = 0;
  let unregistered = 0;
  const tick = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * perSec) - registered;
    for (let j = 0; j < due; j++) {
      const msg = encode("router.register", loadRoute(k++, "churn"));
      s.bus.publishRaw(Subjects.routerRegister, msg);
      live.push(msg);
      registered++;
      while (live.length > perSec) {
        s.bus.publishRaw(Subjects.routerUnregister, live.shift()!);
        unregistered++;
      }
    }
  }, 10);
  return {
    counts: () => ({ registered, unregistered }),
    async stop() {
      clearInterval(tick);
      for (const m of live.splice(0)) s.bus.publishRaw(Subjects.routerUnregister, m);
      await s.bus.flush();
    },
  };
}

async function main() {
  const loadBefore = loadavg().map((l) => l.toFixed(2)).join(" ");
  const stamp = new Date().toISOString();
  // The backend: uWS.js under Node on the load core, answering /bytes/<n> with n bytes; a request with a
  // body is read to its end first (400 when it is not the --post size, so wrk counts it as failed).
  const backendPort = await freePort();
  const backendFile = join(dir, "backend.cjs");
  writeFileSync(
    backendFile,
    `const uws = require(${JSON.stringify(join(root, "node_modules", "uWebSockets.js"))});
const bodies = new Map(); for (const n of ${JSON.stringify(sizes)}) bodies.set('/bytes/' + n, Buffer.alloc(n, 120));
uws.App().any('/*', (res, req) => {
  const body = bodies.get(req.getUrl()) ?? 'hello';
  const m = req.getMethod();
  if (m === 'get' || m === 'head') return void res.end(body);
  let n = 0, aborted = false;
  res.onAborted(() => { aborted = true; });
  res.onData((chunk, last) => {
    n += chunk.byteLength;
    if (last && !aborted) res.cork(() => { if (n !== ${postBytes}) res.writeStatus('400 Bad Request'); res.end(body); });
  });
}).listen('127.0.0.1', ${backendPort}, 1, (s) => { if (!s) process.exit(1); });`,
  );
  start(LOAD_CPU, "node", [backendFile]);
  await waitForPort(backendPort);

  let script: string | undefined;
  if (postBytes > 0) {
    script = join(dir, "post.lua");
    writeFileSync(script, `wrk.method = "POST"\nwrk.body = string.rep("x", ${postBytes})\nwrk.headers["Content-Type"] = "application/octet-stream"\n`);
  }

  const ports: Record<string, number> = { direct: backendPort };
  const pids: Record<string, number | undefined> = { direct: undefined };
  const skiffs: Record<string, Skiff> = {};
  const extraNotes: string[] = [];
  const ROUTES_T = "skiff+routes";
  const CHURN_T = "skiff+churn";
  const order = ["direct", "skiff", ...(extraRoutes > 0 ? [ROUTES_T] : []), ...(churnPerSec > 0 ? [CHURN_T] : []), "nginx", "haproxy"];

  if (targets.includes("skiff")) {
    for (const t of ["skiff", ...(extraRoutes > 0 ? [ROUTES_T] : []), ...(churnPerSec > 0 ? [CHURN_T] : [])]) {
      skiffs[t] = await startSkiff(backendPort);
      ports[t] = skiffs[t]!.port;
      pids[t] = skiffs[t]!.pid;
    }
    if (extraRoutes > 0) {
      const rssBefore = rssMiB(pids[ROUTES_T]!);
      const l = await loadRoutes(skiffs[ROUTES_T]!, extraRoutes);
      const msg = `${ROUTES_T}: ${extraRoutes.toLocaleString("en-US")} extra routes (one router.register each, a distinct endpoint per route, stale threshold 3600 s) loaded over NATS in ${l.seconds} s (${l.perSec.toLocaleString("en-US")}/s, batches of 5,000, at most 50,000 ahead of the router's /metrics route count); table ${l.routes.toLocaleString("en-US")} routes; RSS ${rssBefore} MiB before loading, ${rssMiB(pids[ROUTES_T]!)} MiB after.`;
      console.log(msg);
      extraNotes.push(msg);
    }
  }
  if (targets.includes("nginx")) {
    ports.nginx = await freePort();
    const conf = join(dir, "nginx.conf");
    writeFileSync(
      conf,
      `worker_processes 1; daemon off; master_process off; pid ${dir}/nginx.pid; error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path ${dir}/ngx-body; proxy_temp_path ${dir}/ngx-proxy; fastcgi_temp_path ${dir}/ngx-fcgi; uwsgi_temp_path ${dir}/ngx-uwsgi; scgi_temp_path ${dir}/ngx-scgi;
  client_max_body_size 1g; proxy_request_buffering off;
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
  const churnRates: number[] = [];
  for (const size of sizes)
    for (const c of conns) {
      const cell: Record<string, Run[]> = {};
      const live = order.filter((t) => ports[t] !== undefined);
      const url = (t: string) => `http://127.0.0.1:${ports[t]}/bytes/${size}`;
      const measure = async (t: string, seconds: number) => {
        if (t !== CHURN_T) return runWrk({ url: url(t), connections: c, seconds, host: HOST, cpus: LOAD_CPU, script });
        // churn from 1 s before the measurement, so the unregisters run too
        const churn = startChurn(skiffs[CHURN_T]!, churnPerSec);
        await Bun.sleep(1000);
        const before = churn.counts();
        const t0 = performance.now();
        const w = await runWrk({ url: url(t), connections: c, seconds, host: HOST, cpus: LOAD_CPU, script });
        const after = churn.counts();
        const secs = (performance.now() - t0) / 1000;
        await churn.stop();
        churnRates.push(Math.round((after.registered - before.registered) / secs), Math.round((after.unregistered - before.unregistered) / secs));
        return w;
      };
      // warm-up: JIT, pools sized to the concurrency
      for (const t of live) await measure(t, quick ? 1 : 3);
      for (let r = 0; r < rounds; r++)
        for (const t of live) {
          const pid = pids[t];
          const before: [number, number] = pid ? cpuTicks(pid) : [0, 0];
          const w = await measure(t, duration);
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
          console.log(JSON.stringify({ round: r, target: t, size, connections: c, post: postBytes, ...run }));
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
          rpsSpread: summarize(runs.map((x) => x.rps)).spread,
          cpuSpread: pid ? summarize(runs.map((x) => x.cpuUs)).spread : null,
          rounds: runs,
        });
      }
    }

  const command = `./node_modules/.bin/bun bench/router/router-bench.ts ${args.join(" ")}`.trim();
  const runOf = `Measured in the run of ${stamp} (\`${command}\`).`;
  const find = (t: string, r: Result) => results.find((x) => x.target === t && x.size === r.size && x.connections === r.connections);
  const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? Math.round((a / b) * 100) / 100 : NaN);
  const withSkiffBase = extraRoutes > 0 || churnPerSec > 0;
  const label = (t: string) =>
    t === ROUTES_T ? `skiff +${extraRoutes.toLocaleString("en-US")} routes` : t === CHURN_T ? `skiff, ${churnPerSec.toLocaleString("en-US")} reg+unreg/s` : t === "skiff" && withSkiffBase ? `skiff (${BASE_ROUTES} routes)` : t;
  const kind = postBytes > 0 ? `POST ${postBytes.toLocaleString("en-US")}-byte bodies, ` : "";
  const scenario = withSkiffBase
    ? `: ${BASE_ROUTES} routes${extraRoutes > 0 ? ` vs +${extraRoutes.toLocaleString("en-US")} routes` : ""}${churnPerSec > 0 ? ` vs ${churnPerSec.toLocaleString("en-US")} routes/s churn` : ""}`
    : "";
  const tables: Table[] = [];
  for (const size of sizes) {
    const rows = results
      .filter((r) => r.size === size)
      .map((r) => [
        label(r.target),
        String(r.connections),
        r.rps,
        fmtSpread(r.rpsSpread),
        ratio(r.rps, find("nginx", r)?.rps),
        ratio(r.rps, find("direct", r)?.rps),
        ...(withSkiffBase ? [ratio(r.rps, find("skiff", r)?.rps)] : []),
        r.p50ms,
        r.p99ms,
        String(r.failures),
        r.cpuUsPerReq ?? NaN,
        fmtSpread(r.cpuSpread),
        r.userUsPerReq ?? NaN,
        r.sysUsPerReq ?? NaN,
        ratio(r.cpuUsPerReq, find("nginx", r)?.cpuUsPerReq),
        ...(withSkiffBase ? [ratio(r.cpuUsPerReq, find("skiff", r)?.cpuUsPerReq)] : []),
        r.rssMiB === null ? NaN : String(r.rssMiB),
      ]);
    tables.push({
      title: `${kind}${size}-byte responses${scenario} (req/s)`,
      columns: [
        "target",
        "conns",
        "req/s",
        "req/s spread",
        "× nginx req/s",
        "× direct req/s",
        ...(withSkiffBase ? ["× skiff req/s"] : []),
        "p50 ms",
        "p99 ms",
        "failures",
        "proxy CPU µs/req",
        "CPU spread",
        "user µs",
        "sys µs",
        "× nginx CPU",
        ...(withSkiffBase ? ["× skiff CPU"] : []),
        "RSS MiB",
      ],
      rows,
      notes:
        `${runOf} Medians of ${rounds} alternating round(s) of wrk -t1 -d${duration}s; spread = ±half the min–max range over the rounds, as % of the median; proxy on CPU ${PROXY_CPU}, wrk and backend on CPU ${LOAD_CPU}.` +
        (postBytes > 0 ? ` Every request a POST with a ${postBytes}-byte body (wrk Lua script), read to its end by the backend before it answers; nginx with \`proxy_request_buffering off\` (streams the body as skiff does) and \`client_max_body_size 1g\`; HAProxy streams bodies by default.` : "") +
        (withSkiffBase ? ` Every skiff router has its own NATS server and the same ${BASE_ROUTES} base routes; "× skiff" is against the ${BASE_ROUTES}-route skiff measured in the same rounds. nginx and HAProxy have no route table to load or churn (one static upstream).` : ""),
    });
  }
  const figures: Record<string, number> = {};
  const fk = postBytes > 0 ? `post${postBytes}.` : "";
  for (const r of results) {
    const t = r.target === ROUTES_T ? `skiff_routes${extraRoutes}` : r.target === CHURN_T ? `skiff_churn${churnPerSec}` : r.target;
    const k = `${fk}${t}.b${r.size}.c${r.connections}`;
    figures[`${k}.req_s`] = r.rps;
    figures[`${k}.p99_ms`] = r.p99ms;
    if (r.cpuUsPerReq !== null) figures[`${k}.cpu_us_per_req`] = r.cpuUsPerReq;
    if (r.rssMiB !== null) figures[`${k}.rss_mib`] = r.rssMiB;
  }
  if (churnRates.length) {
    const reg = churnRates.filter((_, i) => i % 2 === 0);
    const unreg = churnRates.filter((_, i) => i % 2 === 1);
    extraNotes.push(
      `${CHURN_T}: router.register and router.unregister published from the bench process (one route per message, distinct hosts, each unregistered 1 s after it was registered) from 1 s before each of its wrk runs to the end of it; measured rates per run: register ${reg.join(", ")}/s, unregister ${unreg.join(", ")}/s. The bench process and nats-server are not pinned.`,
    );
  }
  const failed = results.filter((r) => r.failures > 0);
  if (failed.length) console.error(`requests failed: ${failed.map((r) => `${r.target} ${r.size} B c${r.connections}: ${r.failures}`).join("; ")}`);
  const loadAfter = loadavg().map((l) => l.toFixed(2)).join(" ");
  let notes = [
    `Pinned: every proxy (skiff, nginx 1 worker, HAProxy 1 thread) with \`taskset -c ${PROXY_CPU}\`; wrk -t1 and the uWS.js backend with \`taskset -c ${LOAD_CPU}\`. "direct" is wrk straight to the backend, both on CPU ${LOAD_CPU}.`,
    "Proxy CPU µs/req = (utime + stime of the proxy process over the run) / requests served: the fairest single figure on a shared machine; req/s and p99 move with other work.",
    `Run of ${stamp}: the machine's 2 cores were shared with other work while this ran: load average ${loadBefore} before, ${loadAfter} after. Compare ratios within one run.`,
    ...extraNotes.map((n) => `Run of ${stamp}: ${n}`),
    ...(failed.length ? [`Run of ${stamp}: FAILED requests (socket errors or non-2xx): ${failed.map((r) => `${r.target} ${r.size} B c${r.connections}: ${r.failures}`).join("; ")}`] : []),
    `Run of ${stamp}, every round [req/s, CPU µs/req, p99 ms]: ${JSON.stringify(results.map((r) => ({ target: r.target, size: r.size, post: postBytes, conns: r.connections, rounds: r.rounds.map((x) => [x.rps, x.cpuUs, x.p99ms]) })))}`,
  ];
  let allFigures = figures;
  if (merge) {
    // keep what the existing results file has and this run did not re-measure, each part marked with its run
    const file = join(resultsDir, `router${quick ? ".quick" : ""}.json`);
    if (existsSync(file)) {
      const old = JSON.parse(readFileSync(file, "utf8")) as { date: string; command: string; tables: Table[]; figures: Record<string, number>; notes?: string[] };
      // the old tables in their order, each replaced in place by this run's table of the same title; new ones after
      const fresh = new Map(tables.map((t) => [t.title, t]));
      const mergedTables = old.tables.map((t) =>
        fresh.get(t.title) ?? (t.notes?.startsWith("Measured in the run of") ? t : { ...t, notes: `Measured in the run of ${old.date} (\`${old.command}\`). ${t.notes ?? ""}` }),
      );
      const oldTitles = new Set(old.tables.map((t) => t.title));
      tables.splice(0, tables.length, ...mergedTables, ...tables.filter((t) => !oldTitles.has(t.title)));
      const oldNotes = (old.notes ?? []).filter((n) => !notes.includes(n)).map((n) => (n.startsWith("Run of ") || n.startsWith("Pinned") || n.startsWith("Proxy CPU") ? n : `Run of ${old.date}: ${n}`));
      notes = [...notes.slice(0, 2), ...oldNotes.filter((n) => !n.startsWith("Pinned") && !n.startsWith("Proxy CPU")), ...notes.slice(2)];
      // drop the notes of runs none of whose tables is left
      const runsLeft = new Set(tables.map((t) => /^Measured in the run of (\S+)/.exec(t.notes ?? "")?.[1]));
      notes = notes.filter((n) => {
        const run = /^Run of (\S+?Z)[,:]/.exec(n)?.[1];
        return !run || runsLeft.has(run);
      });
      allFigures = { ...old.figures, ...figures };
      notes.unshift("Merged with --merge from several runs: the command above is the last one; each table names the run and command it comes from.");
    }
  }
  writeReport({ bench: "router", command, quick, tables, figures: allFigures, notes });
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
