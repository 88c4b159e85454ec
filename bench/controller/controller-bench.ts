// Controller benchmarks: a health-manager pass over 10,000 desired instances with simulated
// heartbeats (target ≤ 50 ms), and GET /v3/apps latency with 1,000 apps on a listening server.
// Usage: bun bench/controller/controller-bench.ts [--quick]   → bench/results/controller.{json,md}

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pct as spreadPct, summarize } from "../lib/stats.ts";
import { writeReport } from "../lib/report.ts";
import { medianP99Chart } from "../lib/chart-data.ts";
import { createBus, MemoryBroker, memoryLogger, type HeartbeatDroplet } from "../../bus/index.ts";
import { startController } from "../../controller/main.ts";
import { newGuid } from "../../controller/src/db/store.ts";
import { appVersion } from "../../controller/src/launcher.ts";

const quick = process.argv.includes("--quick");
const APPS = 2000, PER_APP = 5, AGENTS = 200;
const PASSES = quick ? 10 : 40;
const LIST_APPS = 1000, LIST_REQUESTS = quick ? 200 : 1000;

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const stats = (xs: number[]) => {
  const summary = summarize(xs);
  return { n: xs.length, mean: +(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(3), p50: +pct(xs, 50).toFixed(3), p99: +pct(xs, 99).toFixed(3), min: +summary.min.toFixed(3), max: +Math.max(...xs).toFixed(3), spread: spreadPct(summary), summary };
};

const dir = mkdtempSync(join(tmpdir(), "skiff-bench-ctl-"));
const broker = new MemoryBroker();
const c = await startController(
  { natsUrl: "", port: 0, dataDir: dir, domain: "bench.test", adminPassword: "benchpass", embedHealthManager: true, health: { intervalMs: 3_600_000, startGraceMs: 0 } },
  { bus: createBus(broker.transport(), memoryLogger()), log: memoryLogger() },
);
const { store, actual, agents } = c.ctx;
const hm = c.health!;

// ---- fixtures: 2,000 started apps × 5 instances, each with a droplet ----
const space = (await store.listSpaces())[0]!.guid;
const now0 = Date.now();
const apps: { guid: string; version: string }[] = [];
await store.tx(async (q) => {
  for (let i = 0; i < APPS; i++) {
    const guid = newGuid(), droplet = newGuid();
    const sha = (i.toString(16).padStart(8, "0")).repeat(8);
    await store.insertApp(q, { guid, name: `app-${String(i).padStart(5, "0")}`, space_guid: space, state: "STARTED", instances: PER_APP, memory_mb: 64, disk_mb: 128, command: null, env: {}, buildpack: null, stack: null, health_check_type: "port", health_check_endpoint: null, health_check_timeout: 60, package_sha: sha, package_state: "STAGED", staging_error: null, droplet_guid: droplet, release: 1, created_at: now0, updated_at: now0 });
    await q.run(`INSERT INTO droplets (guid, app_guid, sha256, detected_start_command, buildpack, package_sha, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`, [droplet, guid, sha, "run", "bench", sha, now0]);
    apps.push({ guid, version: appVersion(sha, 1) });
  }
});
for (let a = 0; a < AGENTS; a++) agents.advertise({ id: `agent${a}`, ip: "127.0.0.1", stacks: ["bun"], available_memory: 1 << 20, available_disk: 1 << 22, app_id_to_count: {}, placement_properties: { zone: `z${a % 3}` } });

/** Simulated heartbeats: every agent reports its share of the 10,000 instances (minus `missing`). */
function heartbeat(missingEvery = 0): void {
  const now = Date.now();
  const perAgent: HeartbeatDroplet[][] = Array.from({ length: AGENTS }, () => []);
  let n = 0;
  for (const app of apps)
    for (let index = 0; index < PER_APP; index++, n++) {
      if (missingEvery && n % missingEvery === 0) continue;
      perAgent[n % AGENTS]!.push({ droplet: app.guid, version: app.version, instance: `${app.guid}-${index}`, index, state: "RUNNING", state_timestamp: now / 1000 });
    }
  perAgent.forEach((droplets, a) => actual.heartbeat({ dea: `agent${a}`, droplets }, now));
}

// ---- health-manager pass, steady state (all 10,000 heartbeating) ----
const hbTimes: number[] = [];
const steady: number[] = [];
for (let i = 0; i < PASSES; i++) {
  const t0 = performance.now();
  heartbeat();
  hbTimes.push(performance.now() - t0);
  const r = await hm.pass();
  if (r.actions.length !== 0) throw new Error(`steady state produced ${r.actions.length} actions`);
  steady.push(r.durationMs);
}
// pure diff alone (what the pass spends deciding)
const desired = apps.map((a) => ({ guid: a.guid, version: a.version, instances: PER_APP }));
const diffOnly: number[] = [];
for (let i = 0; i < PASSES; i++) {
  const t0 = performance.now();
  hm.decide(desired, new Map(), Date.now());
  diffOnly.push(performance.now() - t0);
}
// ---- a pass that must start 1% (100 instances: diff + re-check + placement + dea.start) ----
const healing: number[] = [];
for (let i = 0; i < Math.min(PASSES, 10); i++) {
  for (const inst of actual.all()) actual.remove(inst.instance);
  heartbeat(100);
  (hm as unknown as { pending: Map<string, number> }).pending.clear();
  const r = await hm.pass();
  if (r.actions.length !== 100) throw new Error(`expected 100 starts, got ${r.actions.length}`);
  healing.push(r.durationMs);
}
const hmResult = {
  desired_instances: APPS * PER_APP, apps: APPS, agents: AGENTS,
  heartbeat_ingest_ms: stats(hbTimes), pass_steady_ms: stats(steady), diff_only_ms: stats(diffOnly), pass_with_100_starts_ms: stats(healing),
};
console.log("health manager:", JSON.stringify(hmResult));
await c.stop();
rmSync(dir, { recursive: true, force: true });

// ---- GET /v3/apps with 1,000 apps, real HTTP server ----
const dir2 = mkdtempSync(join(tmpdir(), "skiff-bench-ctl2-"));
const c2 = await startController(
  { natsUrl: "", port: 0, dataDir: dir2, domain: "bench.test", adminPassword: "benchpass", embedHealthManager: false },
  { bus: createBus(new MemoryBroker().transport(), memoryLogger()), log: memoryLogger() },
);
const tok = (await (await fetch(`${c2.url}/v3/tokens`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "admin", password: "benchpass" }) })).json()).access_token;
const auth = { authorization: `bearer ${tok}`, "content-type": "application/json" };
for (let i = 0; i < LIST_APPS; i += 50)
  await Promise.all(Array.from({ length: 50 }, (_, k) => fetch(`${c2.url}/v3/apps`, { method: "POST", headers: auth, body: JSON.stringify({ name: `list-${String(i + k).padStart(4, "0")}`, no_route: true }) }).then((r) => r.text())));
async function timeGets(path: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < 20; i++) await (await fetch(c2.url + path, { headers: auth })).text();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await fetch(c2.url + path, { headers: auth });
    await r.text();
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status}`);
    out.push(performance.now() - t0);
  }
  return out;
}
const listResult = {
  apps: LIST_APPS,
  "GET /v3/apps (per_page=50, page 1)": stats(await timeGets("/v3/apps", LIST_REQUESTS)),
  "GET /v3/apps?page=20 (per_page=50)": stats(await timeGets("/v3/apps?page=20", LIST_REQUESTS)),
  "GET /v3/apps?per_page=1000": stats(await timeGets("/v3/apps?per_page=1000", Math.floor(LIST_REQUESTS / 10))),
  "GET /v3/apps?include=routes (per_page=50)": stats(await timeGets("/v3/apps?include=routes", LIST_REQUESTS)),
};
console.log("api:", JSON.stringify(listResult));
await c2.stop();
rmSync(dir2, { recursive: true, force: true });

// ---- results ----
const ms = (v: number) => +v.toFixed(3);
const row = (name: string, s: ReturnType<typeof stats>) => [name, s.p50, s.spread, s.min, s.max, s.p99, s.mean, String(s.n)];
const columns = (what: string) => [what, "median", "spread", "min", "max", "p99", "mean", "n"];
const figures: Record<string, number> = { "hm.desired_instances": APPS * PER_APP, "hm.apps": APPS, "hm.agents": AGENTS, "api.apps": LIST_APPS };
const put = (prefix: string, s: ReturnType<typeof stats>) => {
  for (const [k, v] of Object.entries(s)) if (typeof v === "number") figures[`${prefix}.${k}`] = v;
  figures[`${prefix}.spread_fraction`] = s.summary.spread;
};
const hmRows: [string, string, ReturnType<typeof stats>][] = [
  ["heartbeat_ingest_ms", "ingest 200 heartbeats (10,000 instances)", hmResult.heartbeat_ingest_ms],
  ["pass_steady_ms", "pass, steady state (no actions)", hmResult.pass_steady_ms],
  ["diff_only_ms", "pure diff only", hmResult.diff_only_ms],
  ["pass_with_100_starts_ms", "pass starting 100 missing instances (placement + dea.start)", hmResult.pass_with_100_starts_ms],
];
for (const [key, , s] of hmRows) put(`hm.${key}`, s);
const apiRows = Object.entries(listResult).filter(([k]) => k !== "apps") as [string, ReturnType<typeof stats>][];
for (const [k, s] of apiRows) put(`api.${k}`, s);
const { md, json } = writeReport({
  bench: "controller",
  command: `./node_modules/.bin/bun bench/controller/controller-bench.ts${quick ? " --quick" : ""}`,
  quick,
  figures,
  tables: [
    {
      title: `Health manager: ${APPS * PER_APP} desired instances (${APPS} apps × ${PER_APP}), ${AGENTS} agents heartbeating (ms; target ≤ 50 ms a pass)`,
      columns: columns("measure (ms)"),
      rows: hmRows.map(([, name, s]) => row(name, s)),
      notes:
        "A pass = take/renew the lease, read desired state and crash records from SQLite, diff against the heartbeat view, re-check and act. " +
        `Each measure is repeated (${PASSES} passes; 10 for the healing pass); spread: ± half the min–max range as a percentage of the median.`,
      charts: [medianP99Chart("measure (ms)")],
    },
    {
      title: `API: GET /v3/apps with ${LIST_APPS} apps (real HTTP server, one request at a time, ms)`,
      columns: columns("request (ms)"),
      rows: apiRows.map(([k, s]) => row(k, s)),
      notes: "Sequential requests: the min–max range includes the odd GC or scheduler pause, so compare medians (and p99) rather than max.",
      charts: [medianP99Chart("request (ms)")],
    },
  ],
  notes: [
    "Sequential requests over loopback keep-alive (Bun fetch), SQLite WAL on local disk, memory bus; the machine's cores are shared with other work.",
  ],
});
console.log(await Bun.file(md).text());
console.log(`wrote ${json} and ${md}`);
process.exit(0);
