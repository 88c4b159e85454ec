// Issue 10, scale: 10,000 app instances on 200 simulated agents (simulator.ts, a separate process
// speaking the bus protocol) against a real nats-server, a real controller, two real routers and the
// health manager. Runs on loopback: it measures what the components cost, not the network.
// Figures: the health manager's pass time over 10,000 heard instances, the time for both routers to
// hold all 10,000 routes after a burst, NATS messages and bytes per second in steady state, and RSS.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { memoryLogger } from "../../bus/index.ts";
import { startHealthProcess } from "../../controller/health-main.ts";
import { openDatabase } from "../../controller/src/db/open.ts";
import { Store } from "../../controller/src/db/store.ts";
import { appVersion } from "../../controller/src/launcher.ts";
import { startNatsServer, type NatsServer } from "../support/nats-server.ts";
import { freePort } from "../support/ports.ts";
import { startProcess, type TestProcess } from "../support/processes.ts";
import { repoRoot } from "./cluster.ts";
import { writeSection } from "./results.ts";
import { expectedPublishRate, type SimulationPlan } from "./simulator.ts";

const AGENTS = 200;
const APPS = 200;
const PER_APP = 50; // 200 × 50 = 10,000 instances, 50 per agent
const TOTAL = APPS * PER_APP;

let dir: string;
let nats: NatsServer;
let monitorPort: number;
let controller: TestProcess;
let routers: { proc: TestProcess; statusPort: number }[] = [];
let health: Awaited<ReturnType<typeof startHealthProcess>> | undefined;
let sim: TestProcess | undefined;
const statusPass = randomBytes(9).toString("base64url");
/** figure, value, budget: loose limits that only a real regression breaks (2 shared cores, noisy) */
const figures: [string, string, string][] = [];
const Budget = { convergeMs: 5_000, passMs: 200, routerRssMiB: 300, controllerRssMiB: 300, rateTolerance: 0.15 } as const;

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function routerEndpoints(statusPort: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${statusPort}/metrics`, { signal: AbortSignal.timeout(5000), headers: { authorization: `Basic ${btoa(`router-status:${statusPass}`)}` } });
  if (res.status !== 200) throw new Error(`router /metrics answered ${res.status}`);
  const text = await res.text();
  const m = /^skiff_router_endpoints (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

async function varz(): Promise<{ in_msgs: number; out_msgs: number; in_bytes: number; out_bytes: number }> {
  return (await fetch(`http://127.0.0.1:${monitorPort}/varz`)).json() as any;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "skiff-sim-"));
  monitorPort = await freePort();
  nats = await startNatsServer({ args: ["-m", String(monitorPort)] });
  const common = { SKIFF_NATS_URL: nats.url, SKIFF_DOMAIN: "sim.test", SKIFF_LOG_LEVEL: "warn" };
  const controllerPort = await freePort();
  controller = startProcess("controller", process.execPath, ["controller/main.ts"], {
    cwd: repoRoot,
    env: { ...common, SKIFF_LOG_LEVEL: "info", SKIFF_CONTROLLER_PORT: String(controllerPort), SKIFF_DATA_DIR: join(dir, "controller"), SKIFF_BOOTSTRAP_ADMIN_PASSWORD: "sim-admin-pass" },
  });
  await controller.waitForLine(/\bready\b/, 30_000);
  for (let r = 0; r < 2; r++) {
    const port = await freePort();
    const statusPort = await freePort();
    const proc = startProcess(`router${r + 1}`, "node", ["router/dist/router.mjs"], {
      cwd: repoRoot,
      env: { ...common, SKIFF_LOG_LEVEL: "info", SKIFF_ROUTER_PORT: String(port), SKIFF_ROUTER_STATUS_PORT: String(statusPort), SKIFF_ROUTER_STATUS_PASS: statusPass },
    });
    await proc.waitForLine(/\bready\b/, 30_000);
    routers.push({ proc, statusPort });
  }
}, 90_000);

afterAll(async () => {
  await sim?.stop("SIGTERM", 3000);
  await health?.stop().catch(() => undefined);
  for (const r of routers) await r.proc.stop("SIGTERM", 5000);
  await controller?.stop("SIGTERM", 5000);
  await nats?.stop();
  if (figures.length)
    writeSection("simulation", [
      "## Scale simulation (tests/cluster/simulation.test.ts)",
      "",
      `Run at ${new Date().toISOString()}: ${TOTAL.toLocaleString("en")} instances of ${APPS} apps on ${AGENTS} simulated agents (tests/cluster/simulator.ts), one nats-server, the controller, two routers, the health manager; loopback, 2 shared cores.`,
      "",
      "| figure | value | budget (the test fails outside it) |",
      "| --- | --- | --- |",
      ...figures.map(([k, v, b]) => `| ${k} | ${v} | ${b} |`),
    ].join("\n"));
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe("scale simulation: 10,000 instances on 200 agents (issue 10)", () => {
  test("routers converge after a burst; health manager pass time; NATS traffic; memory", async () => {
    // desired state: 200 started apps of 50 instances, written where the health manager reads it
    const db = await openDatabase({ dataDir: join(dir, "controller") });
    const store = new Store(db);
    const space = (await store.listSpaces())[0]!;
    const plan: SimulationPlan = { agents: AGENTS, apps: [], instanceHost: "127.0.0.1" };
    const now = Date.now();
    for (let a = 0; a < APPS; a++) {
      const guid = randomUUID();
      const dropletGuid = randomUUID();
      const sha = randomBytes(32).toString("hex");
      await store.insertApp(db, {
        guid, name: `sim-${a}`, space_guid: space.guid, state: "STARTED", instances: PER_APP, memory_mb: 64, disk_mb: 64, command: null, env: {},
        buildpack: null, stack: null, health_check_type: "port", health_check_endpoint: null, health_check_timeout: 60, package_sha: null,
        package_state: "STAGED", staging_error: null, droplet_guid: null, release: 1, created_at: now, updated_at: now,
      });
      await store.insertDroplet(db, { guid: dropletGuid, app_guid: guid, sha256: sha, detected_start_command: "true", buildpack: null, package_sha: null, created_at: now }, 5);
      await store.updateApp(db, guid, { droplet_guid: dropletGuid });
      plan.apps.push({ guid, version: appVersion(sha, 1), instances: PER_APP, uri: `sim-${a}.sim.test` });
    }
    await db.close();

    // the health manager, in this process so a pass can be timed; its own timer effectively off
    health = await startHealthProcess(
      { natsUrl: nats.url, dataDir: join(dir, "controller"), controllerUrl: "http://127.0.0.1:1", health: { intervalMs: 3_600_000, startGraceMs: 0 } },
      { log: memoryLogger() },
    );

    const planFile = join(dir, "plan.json");
    writeFileSync(planFile, JSON.stringify(plan));
    const rssBefore = { controller: rssMiB(controller.pid), router: rssMiB(routers[0]!.proc.pid) };
    sim = startProcess("simulator", process.execPath, ["tests/cluster/simulator.ts", planFile], { cwd: repoRoot, env: { SKIFF_NATS_URL: nats.url, SKIFF_LOG_LEVEL: "warn" } });
    const burst = JSON.parse(await sim.waitForLine(/"event":"burst"/, 60_000)) as { start: number; end: number; count: number };
    expect(burst.count).toBe(TOTAL);

    // convergence: both routers hold every endpoint
    const converged: number[] = [];
    for (const r of routers) {
      const deadline = Date.now() + 60_000;
      let n = 0;
      while (Date.now() < deadline && (n = await routerEndpoints(r.statusPort)) < TOTAL) await Bun.sleep(50);
      expect(n).toBe(TOTAL);
      converged.push(Date.now() - burst.start);
    }
    const convergeMs = Math.max(...converged);
    figures.push(["burst: 10,000 router.register published in", `${burst.end - burst.start} ms`, "—"]);
    figures.push(["all routers hold 10,000 endpoints, after burst start", `${convergeMs} ms (router1 ${converged[0]} ms, router2 ${converged[1]} ms)`, `< ${Budget.convergeMs / 1000} s`]);

    // health manager passes once every agent has heartbeated (the simulator heartbeats at start)
    await Bun.sleep(2000);
    const passes: number[] = [];
    let actions = 0;
    for (let i = 0; i < 5; i++) {
      const p = await health.hm.pass();
      expect(p.leader).toBe(true);
      passes.push(p.durationMs);
      actions += p.actions.length;
      await Bun.sleep(200);
    }
    passes.sort((a, b) => a - b);
    // this health manager reads desired state from the controller's embedded SQLite (the scenarios'
    // health managers use PostgreSQL): the figure is the pass's own cost, not a networked database's
    figures.push(["health manager pass over 10,000 heard instances (5 passes; desired state on SQLite)", `median ${passes[2]!.toFixed(1)} ms, max ${passes[4]!.toFixed(1)} ms, ${actions} actions`, `max < ${Budget.passMs} ms`]);
    expect(actions).toBe(0); // every desired instance is heard running: nothing to do

    // steady state on the bus: advertisements, heartbeats, re-registrations
    const v0 = await varz();
    const t0 = performance.now();
    await Bun.sleep(10_000);
    const v1 = await varz();
    const s = (performance.now() - t0) / 1000;
    const rate = (k: keyof typeof v0) => (v1[k] - v0[k]) / s;
    // what the fleet publishes by its intervals (advertise 5 s, heartbeat 10 s, register 20 s); the
    // components add only a few messages of their own. Far off means a lost timer or a message storm.
    const expectedIn = expectedPublishRate(AGENTS, TOTAL);
    const inRate = rate("in_msgs");
    figures.push(["NATS steady state, into the server", `${inRate.toFixed(0)} msg/s, ${(rate("in_bytes") / 1024).toFixed(0)} KiB/s`, `${expectedIn} msg/s ± ${Budget.rateTolerance * 100}%`]);
    figures.push(["NATS steady state, out of the server (fan-out to 2 routers, controller, health manager)", `${rate("out_msgs").toFixed(0)} msg/s, ${(rate("out_bytes") / 1024).toFixed(0)} KiB/s`, "—"]);

    const rssAfter = { controller: rssMiB(controller.pid), router: Math.max(...routers.map((r) => rssMiB(r.proc.pid))) };
    figures.push(["controller RSS (before → with 200 agents advertising)", `${rssBefore.controller.toFixed(0)} → ${rssAfter.controller.toFixed(0)} MiB`, `< ${Budget.controllerRssMiB} MiB`]);
    figures.push(["router RSS (before → with 10,000 endpoints)", `${rssBefore.router.toFixed(0)} → ${rssAfter.router.toFixed(0)} MiB`, `< ${Budget.routerRssMiB} MiB`]);
    for (const [k, v, b] of figures) console.log(`simulation | ${k} | ${v} | budget ${b}`);
    for (const r of routers) expect(r.proc.child.exitCode, `${r.proc.name} still running`).toBeNull();
    expect(convergeMs).toBeLessThan(Budget.convergeMs);
    expect(passes[4]!).toBeLessThan(Budget.passMs);
    expect(Math.abs(inRate - expectedIn) / expectedIn, `${inRate.toFixed(0)} msg/s in, ${expectedIn} expected`).toBeLessThanOrEqual(Budget.rateTolerance);
    expect(rssAfter.controller).toBeLessThan(Budget.controllerRssMiB);
    expect(rssAfter.router).toBeLessThan(Budget.routerRssMiB);
  }, 150_000);
});
