// Router benchmark against real peers: wrk against the backend direct, the skiff router, nginx
// (1 worker, upstream keepalive 512) and HAProxy (1 thread, http-reuse always), all in front of the
// same uWS.js backend under Node. Reports req/s, p50/p99/p99.9, each proxy's CPU µs per request (user +
// system from /proc/<pid>/stat, robust to noise from other processes) and RSS, with ratios to nginx
// and to the backend direct; every round's figures are kept in the JSON.
//
// Pinned as bench/README.md says, identically for every peer: the proxy on CPU 1 (`taskset -c 1`),
// wrk and the backend on CPU 0. Targets are measured in turn within each round (alternating, so
// drifting load from other work hits them alike); each figure is the median over the rounds, with its
// spread (±half the min–max range, as % of the median) beside it.
//
//   ./node_modules/.bin/bun bench/router/router-bench.ts [--quick] [--conns 64,256] [--duration 10] [--rounds 3]
//       [--targets direct,skiff,nginx,haproxy] [--sizes 0,1024] [--post 65536] [--routes 1000000] [--churn 1000] [--merge]
//
// With none of --sizes/--post/--routes/--churn, it runs every scenario (about 30 minutes at the defaults,
// 3 rounds of wrk -d10s, each at 64 and 256 connections):
//   1. GET, responses of 0 B, 1 KiB, 64 KiB and 1 MiB: direct, skiff, nginx, HAProxy;
//   2. POST with 64 KiB bodies, 0-byte responses: the same four;
//   3. 0-byte responses from a skiff router with 1,000,000 extra routes and one with 1,000 routes/s of
//      churn, beside the 10-route skiff, direct and nginx.
// --quick runs the same three scenarios for a second each, at 64 connections, with 1,000 extra routes and
// 100 routes/s of churn: it checks that everything works, not its figures.
// With any of those four options it runs that one scenario:
// --sizes N,…  response sizes (default 0)
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

import { randomBytes } from "node:crypto";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connectBus, createLogger, encode, Subjects, type Bus, type RouterRegister } from "../../bus/index.ts";
import { startNatsServer } from "../../tests/support/nats-server.ts";
import { freePort, waitForPort } from "../../tests/support/ports.ts";
import { resultsDir, writeReport, type Table } from "../lib/report.ts";
import { stopChildren, stopOnSignals } from "../lib/stop-signals.ts";
import { runWrk, wrkScript } from "../lib/wrk.ts";
import { BASE_ROUTES, CHURN_T, ROUTES_T, routerFigures, routerTables, summarizeRuns, targetLabel, type Result, type Run, type Scenario } from "./router-results.ts";

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
const conns = opt("--conns", quick ? "64" : "64,256").split(",").map(Number);
const merge = flag("--merge");

const ALL_TARGETS = ["direct", "skiff", "nginx", "haproxy"];
const oneScenario = ["--sizes", "--post", "--routes", "--churn"].some(flag);
const scenarios: Scenario[] = oneScenario
  ? [{
      sizes: opt("--sizes", "0").split(",").map(Number),
      post: Number(opt("--post", "0")),
      routes: Number(opt("--routes", "0")),
      churn: Number(opt("--churn", "0")),
      targets: opt("--targets", ALL_TARGETS.join(",")).split(","),
    }]
  : [
      { sizes: quick ? [0] : [0, 1024, 65536, 1048576], post: 0, routes: 0, churn: 0, targets: ALL_TARGETS },
      { sizes: [0], post: 65536, routes: 0, churn: 0, targets: ALL_TARGETS },
      { sizes: [0], post: 0, routes: quick ? 1000 : 1_000_000, churn: quick ? 100 : 1000, targets: ["direct", "skiff", "nginx"] },
    ].map((sc) => (flag("--targets") ? { ...sc, targets: opt("--targets", "").split(",") } : sc));

// Bad options stop the bench before it starts anything, saying which and what is expected.
{
  const usage = (msg: string) => {
    console.error(`router-bench: ${msg}\nusage: bun bench/router/router-bench.ts [--quick] [--conns 64,256] [--duration 10] [--rounds 3] [--targets ${ALL_TARGETS.join(",")}] [--sizes 0,1024] [--post BYTES] [--routes N] [--churn PER_S] [--merge]`);
    process.exit(2);
  };
  const known = ["--quick", "--merge", "--conns", "--duration", "--rounds", "--targets", "--sizes", "--post", "--routes", "--churn"];
  args.forEach((a, i) => {
    if (a.startsWith("--") && !known.includes(a)) usage(`unknown option ${a}`);
    if (!a.startsWith("--") && !(i > 0 && known.slice(2).includes(args[i - 1]!))) usage(`unexpected argument ${a}`);
  });
  const whole = (name: string, xs: number[], min: number) => {
    if (xs.some((x) => !Number.isInteger(x) || x < min)) usage(`${name} takes whole numbers >= ${min}, got ${opt(name, "")}`);
  };
  whole("--duration", [duration], 1);
  whole("--rounds", [rounds], 1);
  whole("--conns", conns, 1);
  for (const sc of scenarios) {
    whole("--sizes", sc.sizes, 0);
    whole("--post", [sc.post], 0);
    whole("--routes", [sc.routes], 0);
    whole("--churn", [sc.churn], 0);
    const unknown = sc.targets.filter((t) => !ALL_TARGETS.includes(t));
    if (unknown.length) usage(`unknown target ${unknown.join(", ")}; choose from ${ALL_TARGETS.join(", ")}`);
  }
}
const HOST = "bench.skiff.localhost";
/** the proxy under test; wrk and the backend share the other core */
const PROXY_CPU = "1";
const LOAD_CPU = "0";

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
const round1 = (n: number) => Math.round(n * 10) / 10;

interface Skiff {
  port: number;
  statusPort: number;
  pid: number;
  bus: Bus;
}

/** the bench's own routers' status password (/metrics wants it; never the one in .skiff/) */
const STATUS_PASS = randomBytes(12).toString("base64url");
const STATUS_AUTH = { authorization: `Basic ${btoa(`router-status:${STATUS_PASS}`)}` };
const routeCount = async (s: Skiff) => Number(/^skiff_router_routes (\d+)/m.exec(await (await fetch(`http://127.0.0.1:${s.statusPort}/metrics`, { headers: STATUS_AUTH })).text())?.[1] ?? NaN);

let routerBundle: string | undefined;
/** One skiff router on the proxy core with a NATS server of its own and the 10 base routes. */
async function startSkiff(backendPort: number): Promise<Skiff> {
  const nats = await startNatsServer();
  stopFns.push(() => nats.stop());
  if (!routerBundle) {
    routerBundle = join(root, "router", "dist", `.bench-${process.pid}.mjs`);
    execFileSync("node", [join(root, "router/build.mjs"), routerBundle], { stdio: "ignore" }); // removed on the way out
  }
  const port = await freePort();
  const statusPort = await freePort();
  const router = start(PROXY_CPU, "node", [routerBundle], {
    SKIFF_NATS_URL: nats.url,
    SKIFF_ROUTER_PORT: String(port),
    SKIFF_ROUTER_STATUS_PORT: String(statusPort),
    SKIFF_ROUTER_STATUS_PASS: STATUS_PASS,
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

/** Starts the backend and the proxies a scenario needs, measures every cell, and stops them all again. */
async function runScenario(sc: Scenario): Promise<{ results: Result[]; notes: string[] }> {
  // The backend: uWS.js under Node on the load core, answering /bytes/<n> with n bytes; a request with a
  // body is read to its end first (400 when it is not the POST size, so wrk counts it as failed).
  const backendPort = await freePort();
  const backendFile = join(dir, "backend.cjs");
  writeFileSync(
    backendFile,
    `const uws = require(${JSON.stringify(join(root, "node_modules", "uWebSockets.js"))});
const bodies = new Map(); for (const n of ${JSON.stringify(sc.sizes)}) bodies.set('/bytes/' + n, Buffer.alloc(n, 120));
uws.App().any('/*', (res, req) => {
  const body = bodies.get(req.getUrl()) ?? 'hello';
  const m = req.getMethod();
  if (m === 'get' || m === 'head') return void res.end(body);
  let n = 0, aborted = false;
  res.onAborted(() => { aborted = true; });
  res.onData((chunk, last) => {
    n += chunk.byteLength;
    if (last && !aborted) res.cork(() => { if (n !== ${sc.post}) res.writeStatus('400 Bad Request'); res.end(body); });
  });
}).listen('127.0.0.1', ${backendPort}, 1, (s) => { if (!s) process.exit(1); });`,
  );
  start(LOAD_CPU, "node", [backendFile]);
  await waitForPort(backendPort);
  // p50/p99/p99.9 from wrk's own histogram (done() hook), and the POST body when there is one
  const script = wrkScript(dir, { postBytes: sc.post });

  const ports: Record<string, number> = { direct: backendPort };
  const pids: Record<string, number | undefined> = { direct: undefined };
  const skiffs: Record<string, Skiff> = {};
  const notes: string[] = [];
  const order = ["direct", "skiff", ...(sc.routes > 0 ? [ROUTES_T] : []), ...(sc.churn > 0 ? [CHURN_T] : []), "nginx", "haproxy"];

  if (sc.targets.includes("skiff")) {
    for (const t of ["skiff", ...(sc.routes > 0 ? [ROUTES_T] : []), ...(sc.churn > 0 ? [CHURN_T] : [])]) {
      skiffs[t] = await startSkiff(backendPort);
      ports[t] = skiffs[t]!.port;
      pids[t] = skiffs[t]!.pid;
    }
    if (sc.routes > 0) {
      const rssBefore = rssMiB(pids[ROUTES_T]!);
      const l = await loadRoutes(skiffs[ROUTES_T]!, sc.routes);
      const msg = `${ROUTES_T}: ${sc.routes.toLocaleString("en-US")} extra routes (one router.register each, a distinct endpoint per route, stale threshold 3600 s) loaded over NATS in ${l.seconds} s (${l.perSec.toLocaleString("en-US")}/s, batches of 5,000, at most 50,000 ahead of the router's /metrics route count); table ${l.routes.toLocaleString("en-US")} routes; RSS ${rssBefore} MiB before loading, ${rssMiB(pids[ROUTES_T]!)} MiB after.`;
      console.log(msg);
      notes.push(msg);
    }
  }
  if (sc.targets.includes("nginx")) {
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
  if (sc.targets.includes("haproxy")) {
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
  for (const size of sc.sizes)
    for (const c of conns) {
      const cell: Record<string, Run[]> = {};
      const live = order.filter((t) => ports[t] !== undefined);
      const url = (t: string) => `http://127.0.0.1:${ports[t]}/bytes/${size}`;
      const measure = async (t: string, seconds: number) => {
        const wrk = () => runWrk({ url: url(t), connections: c, seconds, host: HOST, cpus: LOAD_CPU, script });
        if (t !== CHURN_T) return wrk();
        // churn from 1 s before the measurement, so the unregisters run too
        const churn = startChurn(skiffs[CHURN_T]!, sc.churn);
        await Bun.sleep(1000);
        const before = churn.counts();
        const t0 = performance.now();
        const w = await wrk();
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
          const per = (ticks: number) => (pid && w.requests ? ((ticks / CLK_TCK) * 1e6) / w.requests : NaN);
          const run: Run = {
            rps: Math.round(w.rps),
            p50ms: w.p50ms,
            p99ms: w.p99ms,
            p999ms: w.p999ms,
            failures: w.socketErrors + w.non2xx,
            userUs: round1(per(after[0] - before[0])),
            sysUs: round1(per(after[1] - before[1])),
            cpuUs: round1(per(after[0] - before[0] + after[1] - before[1])),
          };
          (cell[t] ??= []).push(run);
          console.log(JSON.stringify({ round: r, target: t, size, connections: c, post: sc.post, ...run }));
        }
      for (const t of live) results.push(summarizeRuns(t, size, c, cell[t]!, pids[t] !== undefined, pids[t] ? rssMiB(pids[t]!) : null));
    }
  if (churnRates.length) {
    const reg = churnRates.filter((_, i) => i % 2 === 0);
    const unreg = churnRates.filter((_, i) => i % 2 === 1);
    notes.push(
      `${CHURN_T}: router.register and router.unregister published from the bench process (one route per message, distinct hosts, each unregistered 1 s after it was registered) from 1 s before each of its wrk runs to the end of it; measured rates per run: register ${reg.join(", ")}/s, unregister ${unreg.join(", ")}/s. The bench process and nats-server are not pinned.`,
    );
  }
  await stopAll();
  return { results, notes };
}

async function main() {
  const loadBefore = loadavg().map((l) => l.toFixed(2)).join(" ");
  const stamp = new Date().toISOString();
  const command = `./node_modules/.bin/bun bench/router/router-bench.ts ${args.join(" ")}`.trim();
  const runOf = `Measured in the run of ${stamp} (\`${command}\`).`;
  const tables: Table[] = [];
  const figures: Record<string, number> = {};
  const extraNotes: string[] = [];
  const failed: string[] = [];
  for (const sc of scenarios) {
    console.log(`scenario: ${JSON.stringify(sc)}`);
    const { results, notes } = await runScenario(sc);
    const tableNotes =
      `${runOf} Medians of ${rounds} alternating round(s) of wrk -t1 -d${duration}s (p50/p99/p99.9 from wrk's histogram); spread = ±half the min–max range over the rounds, as % of the median; proxy on CPU ${PROXY_CPU}, wrk and backend on CPU ${LOAD_CPU}.` +
      (sc.post > 0 ? ` Every request a POST with a ${sc.post}-byte body (wrk Lua script), read to its end by the backend before it answers; nginx with \`proxy_request_buffering off\` (streams the body as skiff does) and \`client_max_body_size 1g\`; HAProxy streams bodies by default.` : "") +
      (sc.routes > 0 || sc.churn > 0 ? ` Every skiff router has its own NATS server and the same ${BASE_ROUTES} base routes; "× skiff" is against the ${BASE_ROUTES}-route skiff measured in the same rounds. nginx and HAProxy have no route table to load or churn (one static upstream).` : "");
    tables.push(...routerTables(results, sc, tableNotes));
    Object.assign(figures, routerFigures(results, sc));
    extraNotes.push(...notes);
    for (const r of results) if (r.failures > 0) failed.push(`${sc.post ? `POST ${sc.post} B, ` : ""}${targetLabel(r.target, sc)} ${r.size} B c${r.connections}: ${r.failures}`);
  }
  if (failed.length) console.error(`requests failed: ${failed.join("; ")}`);
  const loadAfter = loadavg().map((l) => l.toFixed(2)).join(" ");
  let notes = [
    `Pinned: every proxy (skiff, nginx 1 worker, HAProxy 1 thread) with \`taskset -c ${PROXY_CPU}\`; wrk -t1 and the uWS.js backend with \`taskset -c ${LOAD_CPU}\`. "direct" is wrk straight to the backend, both on CPU ${LOAD_CPU}.`,
    "Proxy CPU µs/req = (utime + stime of the proxy process over the run) / requests served: the fairest single figure on a shared machine; req/s and p99 move with other work.",
    `Run of ${stamp}: the machine's 2 cores were shared with other work while this ran: load average ${loadBefore} before, ${loadAfter} after. Compare ratios within one run. Every round's figures are in the JSON (\`<target>.b<size>.c<conns>.round<i>.*\`).`,
    ...extraNotes.map((n) => `Run of ${stamp}: ${n}`),
    ...(failed.length ? [`Run of ${stamp}: FAILED requests (socket errors or non-2xx): ${failed.join("; ")}`] : []),
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
      notes = [...notes.slice(0, 2), ...oldNotes.filter((n) => !n.startsWith("Pinned") && !n.startsWith("Proxy CPU") && !n.startsWith("Merged with --merge")), ...notes.slice(2)];
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
  return failed.length;
}

let stopFns: (() => Promise<void>)[] = [];
/** Stops every process and bus connection started so far (after each scenario, and on the way out). */
async function stopAll() {
  stopping = true;
  await stopChildren(children.splice(0), { graceMs: 2_000 });
  for (const f of stopFns.splice(0)) await f().catch(() => {});
  stopping = false;
}

const cleanUp = stopOnSignals(async () => {
  await stopAll();
  if (routerBundle) rmSync(routerBundle, { force: true });
  rmSync(dir, { recursive: true, force: true });
});

let failures = 0;
try {
  failures = await main();
} finally {
  await cleanUp();
}
process.exit(failures ? 1 : 0);
