// Router benchmark against real peers: wrk against the backend direct, the skiff router, nginx
// (1 worker, upstream keepalive 512) and HAProxy (1 thread, http-reuse always), all in front of the
// same uWS.js backend under Node. Reports req/s, p50/p99 and each proxy's CPU µs per request (user +
// system from /proc/<pid>/stat, robust to noise from other processes) and RSS.
//
//   ./node_modules/.bin/bun bench/router/router-bench.ts [--quick] [--sizes 0,1024,1048576] [--conns 64,256] [--duration 10]
//
// Results: bench/results/router.json and bench/results/router.md.

import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connectBus, createLogger, Subjects } from "../../bus/index.ts";
import { startNatsServer } from "../../tests/support/nats-server.ts";
import { freePort, waitForPort } from "../../tests/support/ports.ts";

const root = resolve(import.meta.dir, "../..");
const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const opt = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
};
const quick = flag("--quick");
const duration = Number(opt("--duration", quick ? "2" : "10"));
const sizes = opt("--sizes", "0").split(",").map(Number);
const conns = opt("--conns", "64,256").split(",").map(Number);
const targets = opt("--targets", "direct,skiff,nginx,haproxy").split(",");
const HOST = "bench.skiff.localhost";

interface Result {
  target: string;
  size: number;
  connections: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  errors: number;
  non2xx: number;
  cpuUsPerReq: number | null;
  rssMiB: number | null;
}

const dir = mkdtempSync(join(tmpdir(), "skiff-router-bench-"));
const children: ChildProcess[] = [];

function start(cmd: string, argv: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  child.on("exit", (code) => {
    if (code && code !== 0 && !stopping) console.error(`${cmd} exited ${code}: ${out.slice(-2000)}`);
  });
  children.push(child);
  return child;
}
let stopping = false;

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14, 15)
}
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "s" ? n * 1000 : n;
}

async function runWrk(url: string, c: number, secs: number): Promise<{ rps: number; p50: number; p99: number; requests: number; errors: number; non2xx: number }> {
  const out = await new Promise<string>((res, rej) => {
    const p = spawn("wrk", ["-t1", `-c${c}`, `-d${secs}s`, "--latency", "-H", `Host: ${HOST}`, url], { stdio: ["ignore", "pipe", "pipe"] });
    let s = "";
    p.stdout.on("data", (d) => (s += d));
    p.stderr.on("data", (d) => (s += d));
    p.on("exit", (code) => (code === 0 ? res(s) : rej(new Error(`wrk failed: ${s}`))));
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const p50 = toMs(/\s50%\s+(\S+)/.exec(out)?.[1] ?? "");
  const p99 = toMs(/\s99%\s+(\S+)/.exec(out)?.[1] ?? "");
  const e = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = e ? Number(e[1]) + Number(e[2]) + Number(e[3]) + Number(e[4]) : 0;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return { rps, p50, p99, requests, errors, non2xx };
}

async function main() {
  const maxSize = Math.max(...sizes);
  // The backend: uWS.js under Node, answering /bytes/<n> with n bytes.
  const backendPort = await freePort();
  const backendFile = join(dir, "backend.cjs");
  writeFileSync(
    backendFile,
    `const uws = require(${JSON.stringify(join(root, "node_modules", "uWebSockets.js"))});
const bodies = new Map(); for (const n of ${JSON.stringify(sizes)}) bodies.set('/bytes/' + n, Buffer.alloc(n, 120));
uws.App().any('/*', (res, req) => { res.end(bodies.get(req.getUrl()) ?? 'hello'); })
  .listen('127.0.0.1', ${backendPort}, (s) => { if (!s) process.exit(1); });`,
  );
  const backend = start("node", [backendFile]);
  await waitForPort(backendPort);

  const ports: Record<string, number> = { direct: backendPort };
  const pids: Record<string, number | undefined> = { direct: undefined };

  if (targets.includes("skiff")) {
    const nats = await startNatsServer();
    stopFns.push(() => nats.stop());
    const outfile = join(root, "router", "dist", `.bench-${process.pid}.mjs`);
    execFileSync(join(root, "node_modules/.bin/bun"), ["build", join(root, "router/main.ts"), "--target=node", "--outfile", outfile, "--external", "uWebSockets.js", "--format=esm"], { stdio: "ignore" });
    stopFns.push(async () => rmSync(outfile, { force: true }));
    ports.skiff = await freePort();
    const statusPort = await freePort();
    const router = start("node", [outfile], {
      SKIFF_NATS_URL: nats.url,
      SKIFF_ROUTER_PORT: String(ports.skiff),
      SKIFF_ROUTER_STATUS_PORT: String(statusPort),
      SKIFF_ROUTER_DRAIN_SECONDS: "0",
      SKIFF_MATCHER_WASM: join(root, "wasm/dist/matcher.wasm"),
    });
    pids.skiff = router.pid;
    await waitForPort(ports.skiff);
    const bus = await connectBus({ servers: [nats.url], name: "bench" }, createLogger("bench", "warn"));
    bus.publish(Subjects.routerRegister, "router.register", { host: "127.0.0.1", port: backendPort, uris: [HOST], app: "bench-app", private_instance_id: "bench-0", private_instance_index: "0" });
    await bus.flush();
    await bus.close();
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
    pids.nginx = start("nginx", ["-c", conf, "-p", dir]).pid;
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
    pids.haproxy = start("haproxy", ["-f", conf, "-db"]).pid;
    await waitForPort(ports.haproxy);
  }

  const results: Result[] = [];
  for (const size of sizes)
    for (const c of conns)
      for (const target of targets) {
        const port = ports[target];
        if (port === undefined) continue;
        const url = `http://127.0.0.1:${port}/bytes/${size}`;
        await runWrk(url, c, quick ? 1 : 3); // warm-up: JIT, pools sized to the concurrency
        const pid = pids[target];
        const before = pid ? cpuTicks(pid) : 0;
        const w = await runWrk(url, c, duration);
        const after = pid ? cpuTicks(pid) : 0;
        const r: Result = {
          target,
          size,
          connections: c,
          rps: Math.round(w.rps),
          p50ms: w.p50,
          p99ms: w.p99,
          errors: w.errors,
          non2xx: w.non2xx,
          cpuUsPerReq: pid && w.requests ? Number((((after - before) / CLK_TCK) * 1e6 / w.requests).toFixed(1)) : null,
          rssMiB: pid ? rssMiB(pid) : null,
        };
        results.push(r);
        console.log(JSON.stringify(r));
      }
  void backend;

  mkdirSync(join(root, "bench/results"), { recursive: true });
  const command = `./node_modules/.bin/bun bench/router/router-bench.ts ${args.join(" ")}`.trim();
  writeFileSync(join(root, "bench/results/router.json"), JSON.stringify({ date: new Date().toISOString(), command, duration, results }, null, 2) + "\n");
  const rows = results.map(
    (r) => `| ${r.target} | ${r.size} | ${r.connections} | ${r.rps} | ${r.p50ms} | ${r.p99ms} | ${r.errors + r.non2xx} | ${r.cpuUsPerReq ?? "—"} | ${r.rssMiB ?? "—"} |`,
  );
  writeFileSync(
    join(root, "bench/results/router.md"),
    `# Router benchmark\n\n${new Date().toISOString()}, wrk -t1 -d${duration}s, 2 shared cores (noisy: compare CPU µs/req first).\n\n` +
      "| target | body bytes | conns | req/s | p50 ms | p99 ms | errors | proxy CPU µs/req | RSS MiB |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n" +
      rows.join("\n") +
      `\n\nCommand: \`${command}\`\n`,
  );
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
