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
//       [--scaling] [--workers 1,2] [--cpus LIST] [--load-cpus 0] [--routes-workers 1,8] [--visibility 300]
//
// With none of --sizes/--post/--routes/--churn/--scaling/--visibility, it runs every scenario (about 45
// minutes at the defaults, 3 rounds of wrk -d10s, each at 64 and 256 connections):
//   1. GET, responses of 0 B, 1 KiB, 64 KiB and 1 MiB: direct, skiff, nginx, HAProxy;
//   2. POST with 64 KiB bodies, 0-byte responses: the same four;
//   3. 0-byte responses from a skiff router with 1,000,000 extra routes and one with 1,000 routes/s of
//      churn, beside the 10-route skiff, direct and nginx; and the memory of the million routes in
//      routers of 1 and 8 workers (--routes-workers);
//   4. the workers axis (issue 16): skiff, nginx and HAProxy at 1 and 2 workers (--workers), 0 B and
//      1 KiB, 64 connections per worker, with each one's scaling efficiency;
//   5. route-change visibility (issue 16): 300 hosts each registered and unregistered on a 2-worker skiff,
//      idle and under 1,000 changes/s, timed until every worker serves the change.
// --quick runs the same scenarios for a second each, at 64 connections, with 1,000 extra routes, 100
// routes/s of churn and 20 visibility probes: it checks that everything works, not its figures.
//
// Pinning (bench/README.md): wrk and the backend on --load-cpus (default 0; wrk runs a thread per CPU
// there), every proxy of W workers on the first W CPUs of --cpus (default: the CPUs left, then the load
// ones if that is too few: "1" then "1,0" on a 2-core machine, where a second worker shares the load
// generator's core). On a bigger machine, `--scaling --load-cpus 0-7 --cpus 8-31` measures 1, 2, 4, 8,
// 16 and 24 workers (doublings up to the CPUs given, unless --workers says) in one command.
// With any of the options below it runs that one scenario:
// --sizes N,…  response sizes (default 0)
// --post N     every request is a POST with an N-byte body (wrk Lua script written to the temp dir); the
//              backend reads the whole body before answering; nginx streams it (proxy_request_buffering off,
//              as skiff does), HAProxy streams by default.
// --routes N   adds a second skiff router ("skiff+routes", its own NATS) with N extra routes loaded over
//              router.register before measuring, alternated with the 10-route skiff in the same rounds.
// --churn N    adds a third skiff router ("skiff+churn", its own NATS) that, while it is measured, gets N
//              router.register and N router.unregister per second of distinct routes from this process.
// --routes-workers N,…  the worker counts whose memory with the --routes table is measured (default 1,8)
// --scaling    the workers axis alone (--workers, --cpus, --load-cpus, --sizes, --conns: per worker)
// --visibility N  route-change visibility alone, N probes (on max(--workers) workers, default 2)
// --merge      keeps the tables and figures of the existing results file that this run does not re-measure
//              (each table says which run it comes from).
//
// Results: bench/results/router.{json,md}; --quick writes bench/results/router.quick.{json,md}.

import { randomBytes } from "node:crypto";
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connectBus, createLogger, encode, Subjects, type Bus, type RouterRegister } from "../../bus/index.ts";
import { startNatsServer } from "../../tests/support/nats-server.ts";
import { freePort, waitForPort } from "../../tests/support/ports.ts";
import { resultsDir, writeReport, type Table } from "../lib/report.ts";
import { killOnStop, stopChildren, stopOnSignals } from "../lib/stop-signals.ts";
import { parseWrk, wrkScript, type WrkResult } from "../lib/wrk.ts";
import { summarize, percentile } from "../lib/stats.ts";
import { cpuTicks, defaultProxyCpus, doublingsUpTo, haproxyConf, nginxConf, parseCpuList, pinFor, processTree, rssMiB } from "./proxies.ts";
import { atWorkers, BASE_ROUTES, CHURN_T, ROUTES_T, routerFigures, routerTables, scalingFigures, scalingTables, summarizeRuns, targetLabel, type Result, type Run, type Scenario } from "./router-results.ts";
import { connectionPerWorker, measureVisibility, type VisibilitySamples } from "./visibility.ts";

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
const scalingOnly = flag("--scaling");
const visibilityOnly = flag("--visibility");
const oneScenario = ["--sizes", "--post", "--routes", "--churn"].some(flag) && !scalingOnly;
const loadCpus = parseCpuList(opt("--load-cpus", "0"));
const cpusGiven = flag("--cpus");
const workersGiven = flag("--workers");
const proxyCpuList = cpusGiven ? parseCpuList(opt("--cpus", "1")) : defaultProxyCpus(availableParallelism(), loadCpus, workersGiven ? Math.max(...opt("--workers", "1").split(",").map(Number)) : 2);
/** the workers axis: --workers, else doublings up to the CPUs given with --cpus, else 1 and 2 */
const workerCounts = workersGiven ? opt("--workers", "1,2").split(",").map(Number) : cpusGiven ? doublingsUpTo(proxyCpuList.length) : [1, 2];
const routesWorkers = opt("--routes-workers", quick ? "1,2" : "1,8").split(",").map(Number);
const visibilityProbes = Number(opt("--visibility", quick ? "20" : "300"));
const scenarios: Scenario[] = scalingOnly
  ? [{ sizes: opt("--sizes", "0,1024").split(",").map(Number), post: 0, routes: 0, churn: 0, targets: opt("--targets", "skiff,nginx,haproxy").split(","), workers: workerCounts }]
  : visibilityOnly
    ? []
    : oneScenario
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
          { sizes: quick ? [0] : [0, 1024], post: 0, routes: 0, churn: 0, targets: ["skiff", "nginx", "haproxy"], workers: workerCounts },
        ].map((sc) => (flag("--targets") ? { ...sc, targets: opt("--targets", "").split(",") } : sc));
const runVisibility = visibilityOnly || (!scalingOnly && !oneScenario);

// Bad options stop the bench before it starts anything, saying which and what is expected.
{
  const usage = (msg: string) => {
    console.error(
      `router-bench: ${msg}\nusage: bun bench/router/router-bench.ts [--quick] [--conns 64,256] [--duration 10] [--rounds 3] [--targets ${ALL_TARGETS.join(",")}] [--sizes 0,1024] [--post BYTES] [--routes N] [--churn PER_S] [--merge]\n       [--scaling] [--workers 1,2] [--cpus LIST] [--load-cpus LIST] [--routes-workers 1,8] [--visibility PROBES]`,
    );
    process.exit(2);
  };
  const known = ["--quick", "--merge", "--scaling", "--conns", "--duration", "--rounds", "--targets", "--sizes", "--post", "--routes", "--churn", "--workers", "--cpus", "--load-cpus", "--routes-workers", "--visibility"];
  args.forEach((a, i) => {
    if (a.startsWith("--") && !known.includes(a)) usage(`unknown option ${a}`);
    if (!a.startsWith("--") && !(i > 0 && known.slice(3).includes(args[i - 1]!))) usage(`unexpected argument ${a}`);
  });
  const whole = (name: string, xs: number[], min: number) => {
    if (xs.some((x) => !Number.isInteger(x) || x < min)) usage(`${name} takes whole numbers >= ${min}, got ${opt(name, "")}`);
  };
  whole("--workers", workerCounts, 1);
  whole("--routes-workers", routesWorkers, 1);
  whole("--visibility", [visibilityProbes], 1);
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
/** the proxy under test at one worker; wrk and the backend share the load CPUs */
const PROXY_CPU = pinFor(1, proxyCpuList);
const LOAD_CPU = loadCpus.join(",");

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
/** One skiff router of `workers` workers (pinned as a proxy of that many) with a NATS server of its own and the 10 base routes. */
async function startSkiff(backendPort: number, workers = 1): Promise<Skiff> {
  const nats = await startNatsServer();
  stopFns.push(() => nats.stop());
  if (!routerBundle) {
    routerBundle = join(root, "router", "dist", `.bench-${process.pid}.mjs`);
    execFileSync("node", [join(root, "router/build.mjs"), routerBundle], { stdio: "ignore" }); // removed on the way out
  }
  const port = await freePort();
  const statusPort = await freePort();
  const router = start(pinFor(workers, proxyCpuList), "node", [routerBundle], {
    SKIFF_ROUTER_WORKERS: String(workers),
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

/** wrk on the load CPUs, a thread per load CPU (-t1 on this machine, as every table before issue 16). */
function runWrk(opts: { url: string; connections: number; seconds: number; host: string; script: string }): Promise<WrkResult> {
  const threads = Math.max(1, Math.min(loadCpus.length, opts.connections));
  const argv = ["-c", LOAD_CPU, "wrk", `-t${threads}`, `-c${opts.connections}`, `-d${opts.seconds}s`, "--latency", "-H", `Host: ${opts.host}`, "-s", opts.script, opts.url];
  return new Promise((resolve, reject) => {
    const p = spawn("taskset", argv, { stdio: ["ignore", "pipe", "pipe"] });
    killOnStop(p);
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    p.on("exit", (code) => (code === 0 ? resolve(parseWrk(out)) : reject(new Error(`wrk failed (${code}): ${out}`))));
  });
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
  /** connections per run: the workers axis gives each worker its share */
  const connsFor: Record<string, number> = {};
  const skiffs: Record<string, Skiff> = {};
  const notes: string[] = [];
  const scaling = sc.workers !== undefined;
  const order: string[] = scaling
    ? sc.workers!.flatMap((w) => ["skiff", "nginx", "haproxy"].filter((t) => sc.targets.includes(t)).map((t) => atWorkers(t, w)))
    : ["direct", "skiff", ...(sc.routes > 0 ? [ROUTES_T] : []), ...(sc.churn > 0 ? [CHURN_T] : []), "nginx", "haproxy"].filter((t) => sc.targets.includes(t) || t === ROUTES_T || t === CHURN_T);
  const workersOf = (key: string) => (scaling ? Number(key.slice(key.lastIndexOf("@") + 1)) : 1);
  const baseOf = (key: string) => (scaling ? key.slice(0, key.lastIndexOf("@")) : key);

  for (const key of order) {
    const t = baseOf(key);
    const w = workersOf(key);
    if (t === "skiff" || t === ROUTES_T || t === CHURN_T) {
      if (!sc.targets.includes("skiff")) continue;
      skiffs[key] = await startSkiff(backendPort, w);
      ports[key] = skiffs[key]!.port;
      pids[key] = skiffs[key]!.pid;
    } else if (t === "nginx") {
      ports[key] = await freePort();
      const conf = join(dir, `nginx-${ports[key]}.conf`);
      writeFileSync(conf, nginxConf(dir, ports[key]!, backendPort, w));
      pids[key] = start(pinFor(w, proxyCpuList), "nginx", ["-c", conf, "-p", dir]).pid;
      await waitForPort(ports[key]!);
    } else if (t === "haproxy") {
      ports[key] = await freePort();
      const conf = join(dir, `haproxy-${ports[key]}.cfg`);
      writeFileSync(conf, haproxyConf(ports[key]!, backendPort, w));
      pids[key] = start(pinFor(w, proxyCpuList), "haproxy", ["-f", conf, "-db"]).pid;
      await waitForPort(ports[key]!);
    }
  }
  if (sc.routes > 0 && skiffs[ROUTES_T]) {
    const rssBefore = rssMiB(processTree(pids[ROUTES_T]!));
    const l = await loadRoutes(skiffs[ROUTES_T]!, sc.routes);
    const msg = `${ROUTES_T}: ${sc.routes.toLocaleString("en-US")} extra routes (one router.register each, a distinct endpoint per route, stale threshold 3600 s) loaded over NATS in ${l.seconds} s (${l.perSec.toLocaleString("en-US")}/s, batches of 5,000, at most 50,000 ahead of the router's /metrics route count); table ${l.routes.toLocaleString("en-US")} routes; RSS ${rssBefore} MiB before loading, ${rssMiB(processTree(pids[ROUTES_T]!))} MiB after (1 worker).`;
    console.log(msg);
    notes.push(msg);
  }

  const results: Result[] = [];
  const churnRates: number[] = [];
  for (const size of sc.sizes)
    for (const c of conns) {
      const cell: Record<string, Run[]> = {};
      const live = order.filter((t) => ports[t] !== undefined);
      for (const key of live) connsFor[key] = scaling ? c * workersOf(key) : c;
      const url = (t: string) => `http://127.0.0.1:${ports[t]}/bytes/${size}`;
      const measure = async (t: string, seconds: number) => {
        const wrk = () => runWrk({ url: url(t), connections: connsFor[t]!, seconds, host: HOST, script });
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
          // nginx's workers are processes of their own; skiff's and HAProxy's are threads of one
          const tree = pid ? processTree(pid) : [];
          const before = cpuTicks(tree);
          const w = await measure(t, duration);
          const after = cpuTicks(tree);
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
          console.log(JSON.stringify({ round: r, target: t, size, connections: connsFor[t], post: sc.post, ...run }));
        }
      for (const t of live) results.push(summarizeRuns(t, size, connsFor[t]!, cell[t]!, pids[t] !== undefined, pids[t] ? rssMiB(processTree(pids[t]!)) : null));
    }
  if (churnRates.length) {
    const reg = churnRates.filter((_, i) => i % 2 === 0);
    const unreg = churnRates.filter((_, i) => i % 2 === 1);
    notes.push(
      `${CHURN_T}: router.register and router.unregister published from the bench process (one route per message, distinct hosts, each unregistered 1 s after it was registered) from 1 s before each of its wrk runs to the end of it; measured rates per run: register ${reg.join(", ")}/s, unregister ${unreg.join(", ")}/s. The bench process and nats-server are not pinned.`,
    );
  }
  if (sc.routes > 0 && sc.targets.includes("skiff")) notes.push(...(await routesMemory(backendPort, sc.routes)));
  await stopAll();
  return { results, notes };
}

/**
 * The memory of a table of `routes` routes in routers of each of --routes-workers workers (issue 16: 1M
 * routes cost about the same with 8 workers as with 1): each router loads the table, its RSS is read
 * before and after, and the difference per extra worker is what a worker adds.
 */
async function routesMemory(backendPort: number, routes: number): Promise<string[]> {
  const rows: { workers: number; idle: number; loaded: number; seconds: number }[] = [];
  for (const w of routesWorkers) {
    const s = await startSkiff(backendPort, w);
    await Bun.sleep(500);
    const idle = rssMiB(processTree(s.pid));
    const l = await loadRoutes(s, routes);
    await Bun.sleep(1000);
    rows.push({ workers: w, idle, loaded: rssMiB(processTree(s.pid)), seconds: l.seconds });
    await stopChildren(children.splice(children.findIndex((c) => c.pid === s.pid), 1), { graceMs: 2_000 });
  }
  lastRoutesMemory = { routes, rows };
  const one = rows.find((r) => r.workers === 1);
  return [
    `routes memory (issue 16): the same ${routes.toLocaleString("en-US")} routes loaded into routers of ${rows.map((r) => r.workers).join(" and ")} workers, one after the other, each with its own NATS; RSS of the whole process (every thread): ` +
      rows
        .map((r) => `${r.workers} worker${r.workers > 1 ? "s" : ""}: ${r.idle} MiB idle, ${r.loaded} MiB loaded (in ${r.seconds} s)` + (one && r.workers > 1 ? `, ${r.loaded - one.loaded} MiB more than 1 worker (${round1((r.loaded - one.loaded) / (r.workers - 1))} MiB per extra worker)` : ""))
        .join("; ") +
      ". The table (stores, arena, WASM matcher) lives once in shared memory whatever the workers; a worker adds its thread and V8 isolate, its uWS app, a 4-byte in-flight count per endpoint row, and small caches of the routes it served.",
  ];
}
let lastRoutesMemory: { routes: number; rows: { workers: number; idle: number; loaded: number; seconds: number }[] } | undefined;

/**
 * Route-change visibility (issue 16): a skiff of max(--workers) workers, `probes` hosts registered and
 * unregistered one after the other, each timed until every worker serves the change; idle, then under
 * 1,000 registrations + 1,000 unregistrations per second (100 with --quick).
 */
async function runVisibilityScenario(): Promise<{ tables: Table[]; figures: Record<string, number>; notes: string[] }> {
  const backendPort = await freePort();
  const backendFile = join(dir, "visibility-backend.cjs");
  writeFileSync(backendFile, `require(${JSON.stringify(join(root, "node_modules", "uWebSockets.js"))}).App().any('/*', (res) => res.end('ok')).listen('127.0.0.1', ${backendPort}, 1, (s) => { if (!s) process.exit(1); });`);
  start(LOAD_CPU, "node", [backendFile]);
  await waitForPort(backendPort);
  const workers = Math.max(2, ...workerCounts.filter((w) => w <= proxyCpuList.length));
  const s = await startSkiff(backendPort, workers);
  const conns = await connectionPerWorker(s.port, s.statusPort, STATUS_AUTH, HOST, workers);
  const churnRate = quick ? 100 : 1000;
  const scrapeDelay = async () => {
    const text = await (await fetch(`http://127.0.0.1:${s.statusPort}/metrics`, { headers: STATUS_AUTH })).text();
    return Number(/skiff_router_route_change_delay_seconds\{quantile="0.99"\} ([\d.e-]+)/.exec(text)?.[1] ?? NaN) * 1000;
  };
  const rows: (string | number)[][] = [];
  const figures: Record<string, number> = {};
  for (const condition of ["idle", "churn"] as const) {
    await scrapeDelay(); // starts the router's own window afresh
    const churn = condition === "churn" ? startChurn(s, churnRate) : undefined;
    if (churn) await Bun.sleep(1000);
    const samples: VisibilitySamples = await measureVisibility(s.bus, conns, backendPort, visibilityProbes, condition);
    // read before the churn stops: its stop unregisters the last second's routes in one burst, which is not 1,000/s
    const internal = await scrapeDelay();
    await churn?.stop();
    for (const [kind, xs] of [["register", samples.register], ["unregister", samples.unregister]] as const) {
      const label = condition === "idle" ? "no other changes" : `${churnRate.toLocaleString("en-US")} reg + ${churnRate.toLocaleString("en-US")} unreg/s`;
      rows.push([label, `router.${kind}`, xs.length, round2(summarize(xs).median), round2(percentile(xs, 99)), round2(percentile(xs, 99.9)), round2(Math.max(...xs)), round2(internal)]);
      figures[`visibility.${condition}.${kind}.p50_ms`] = round2(summarize(xs).median);
      figures[`visibility.${condition}.${kind}.p99_ms`] = round2(percentile(xs, 99));
      figures[`visibility.${condition}.${kind}.max_ms`] = round2(Math.max(...xs));
      figures[`visibility.${condition}.router_p99_ms`] = round2(internal);
    }
  }
  for (const c of conns) c.close();
  await stopAll();
  return {
    tables: [
      {
        title: `Route-change visibility: from router.register/unregister published to every one of ${workers} workers serving it (ms)`,
        columns: ["other route changes", "change", "samples", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "router's own p99 ms"],
        rows,
        notes: `${visibilityProbes} hosts, each registered then unregistered, one at a time; each change timed from its publish (so NATS's delivery is in) until a keep-alive connection to each worker (found from the per-worker counters in /metrics) answers 200 (404 after the unregister), polling request after request, so at the resolution of one round trip. "Router's own p99" is skiff_router_route_change_delay_seconds: from the change's arrival off the bus to its application to the one shared table, which every worker reads from then on. The router's ${workers} workers pinned to CPUs ${pinFor(workers, proxyCpuList)}; the bench process, which publishes, polls and churns, and nats-server are not pinned.`,
        charts: [{ values: ["p50 ms", "p99 ms"], groupBy: ["other route changes", "change"], axis: "ms until every worker serves the change (lower is better)" }],
      },
    ],
    figures,
    notes: [],
  };
}
const round2 = (n: number) => Math.round(n * 100) / 100;

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
    if (sc.workers) {
      const pins = Object.fromEntries(sc.workers.map((w) => [w, pinFor(w, proxyCpuList)]));
      const shared = sc.workers.some((w) => pinFor(w, proxyCpuList).split(",").some((c) => loadCpus.includes(Number(c))));
      tables.push(
        ...scalingTables(
          results,
          sc.sizes,
          pins,
          `${runOf} Medians of ${rounds} alternating round(s) of wrk -t${loadCpus.length} -d${duration}s with ${conns.join("/")} connections per worker, wrk and the backend on CPU ${LOAD_CPU}; a proxy of W workers (skiff: SKIFF_ROUTER_WORKERS=W threads; nginx: worker_processes W, each with a reuseport listen socket, and its master; HAProxy: nbthread W) pinned to the CPUs in the table, its CPU summed over all its threads and processes. Scaling efficiency = req/s at W ÷ (W × req/s at 1 worker) for the same proxy; "× nginx" is against nginx at the same W.` +
            (shared
              ? ` On this machine the CPUs beyond the first are the load generator's: a second worker shares its core with wrk and the backend, so req/s at 2 workers is bounded by that contention for every proxy alike, and the efficiencies compare the proxies under the same handicap; they are not the scaling of a machine with a core per worker. CPU µs per request stays comparable (what each request costs, whatever the contention).`
              : ""),
        ),
      );
      Object.assign(figures, scalingFigures(results));
      extraNotes.push(...notes);
      for (const r of results) if (r.failures > 0) failed.push(`workers ${r.target} ${r.size} B c${r.connections}: ${r.failures}`);
      continue;
    }
    const tableNotes =
      `${runOf} Medians of ${rounds} alternating round(s) of wrk -t1 -d${duration}s (p50/p99/p99.9 from wrk's histogram); spread = ±half the min–max range over the rounds, as % of the median; proxy on CPU ${PROXY_CPU}, wrk and backend on CPU ${LOAD_CPU}.` +
      (sc.post > 0 ? ` Every request a POST with a ${sc.post}-byte body (wrk Lua script), read to its end by the backend before it answers; nginx with \`proxy_request_buffering off\` (streams the body as skiff does) and \`client_max_body_size 1g\`; HAProxy streams bodies by default.` : "") +
      (sc.routes > 0 || sc.churn > 0 ? ` Every skiff router has its own NATS server and the same ${BASE_ROUTES} base routes; "× skiff" is against the ${BASE_ROUTES}-route skiff measured in the same rounds. nginx and HAProxy have no route table to load or churn (one static upstream).` : "");
    tables.push(...routerTables(results, sc, tableNotes));
    Object.assign(figures, routerFigures(results, sc));
    extraNotes.push(...notes);
    for (const r of results) if (r.failures > 0) failed.push(`${sc.post ? `POST ${sc.post} B, ` : ""}${targetLabel(r.target, sc)} ${r.size} B c${r.connections}: ${r.failures}`);
    if (lastRoutesMemory) {
      // a note and figures, not a table: every router table is a latency table (p99.9 ms and all)
      const m = lastRoutesMemory;
      for (const r of m.rows) {
        figures[`routes_memory.w${r.workers}.rss_idle_mib`] = r.idle;
        figures[`routes_memory.w${r.workers}.rss_loaded_mib`] = r.loaded;
      }
      lastRoutesMemory = undefined;
    }
  }
  if (runVisibility) {
    console.log("scenario: route-change visibility");
    const v = await runVisibilityScenario();
    tables.push(...v.tables.map((t) => ({ ...t, notes: `${runOf} ${t.notes}` })));
    Object.assign(figures, v.figures);
  }
  if (failed.length) console.error(`requests failed: ${failed.join("; ")}`);
  const loadAfter = loadavg().map((l) => l.toFixed(2)).join(" ");
  let notes = [
    `Pinned: every proxy of one worker (skiff with SKIFF_ROUTER_WORKERS=1, nginx 1 worker, HAProxy 1 thread) with \`taskset -c ${PROXY_CPU}\`; wrk and the uWS.js backend with \`taskset -c ${LOAD_CPU}\`; the workers tables say where each worker count ran. "direct" is wrk straight to the backend, both on CPU ${LOAD_CPU}.`,
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
