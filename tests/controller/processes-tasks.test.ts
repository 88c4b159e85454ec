// Process types and tasks in the controller (issue 17), in-process on the in-memory bus with a fake
// agent: the migration that turns every existing app into its web process (SQLite and, where it is
// installed, PostgreSQL), the Procfile's types made at staging, each type started, scaled, crashed
// and rolled on its own, the processes API in CF's shape, and tasks from creation to SUCCEEDED,
// FAILED (with the exit status) and cancelled, kept across a controller restart, and failed when
// their agent forgets them.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBus, MemoryBroker, memoryLogger, type Bus } from "../../bus/index.ts";
import { startController, type RunningController } from "../../controller/main.ts";
import type { Database } from "../../controller/src/db/database.ts";
import { migrate, migrations } from "../../controller/src/db/migrations.ts";
import { openPostgres } from "../../controller/src/db/postgres.ts";
import { openSqlite } from "../../controller/src/db/sqlite.ts";
import { Store } from "../../controller/src/db/store.ts";
import { eventually } from "../support/ports.ts";
import { canRunPostgres, startPostgresServer } from "../support/postgres-server.ts";
import { FakeAgent } from "./fake-agent.ts";
import { apiCaller, BASE, tarGz } from "./api-client.ts";

let dir: string;
let c: RunningController;
let broker: MemoryBroker;
let bus: Bus;
let agent: FakeAgent;
let token: string;

const callAs = apiCaller((req) => c.app.handle(req));
const call = (method: string, path: string, body?: unknown) => callAs(token, method, path, body);

async function start(): Promise<void> {
  c = await startController(
    { natsUrl: "", port: 0, dataDir: join(dir, "c"), domain: "skiff.test", adminPassword: "adminpass", embedHealthManager: true, publicUrl: BASE, health: { intervalMs: 50, startGraceMs: 0 }, findTimeoutMs: 150 },
    { bus: createBus(broker.transport(), memoryLogger()), log: memoryLogger(), listen: false },
  );
  const r = await c.app.handle(new Request(`${BASE}/v3/tokens`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "admin", password: "adminpass" }) }));
  token = ((await r.json()) as { access_token: string }).access_token;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "skiff-proc-"));
  broker = new MemoryBroker();
  bus = createBus(broker.transport(), memoryLogger());
  await start();
  agent = new FakeAgent(bus, "agent1", (req) => c.app.handle(req)).begin();
  await Bun.sleep(20);
});

afterAll(async () => {
  agent?.end();
  await c?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A Procfile app (web + worker), staged and started; resolves with its guid once both types run. */
async function procfileApp(name: string): Promise<string> {
  agent.processTypes = { web: "bun web.ts", worker: "bun worker.ts" };
  const app = (await call("POST", "/v3/apps", { name })).json;
  expect((await call("PUT", `/v3/apps/${app.guid}/bits`, await tarGz({ "web.ts": "1", "worker.ts": "2", Procfile: "web: bun web.ts\nworker: bun worker.ts\n" }))).status).toBe(200);
  expect((await call("POST", `/v3/apps/${app.guid}/actions/start`)).status).toBe(200);
  await eventually(async () => (agent.running(app.guid).length === 2 ? true : undefined), 5000, `${name} web and worker running`);
  return app.guid;
}

const ofType = (guid: string, type: string) => agent.running(guid).filter((i) => (i.process_type ?? "web") === type);

describe("process types (issue 17)", () => {
  test("a Procfile's web and worker both run: only web gets the routes and a port check, the worker its own command", async () => {
    const guid = await procfileApp("shop");
    const [web] = ofType(guid, "web");
    const [worker] = ofType(guid, "worker");
    expect(web!.start).toMatchObject({ uris: ["shop.skiff.test"], start_command: "bun web.ts", health_check: { type: "port" } });
    expect(web!.start.process_type).toBeUndefined();
    expect(worker!.start).toMatchObject({ uris: [], start_command: "bun worker.ts", health_check: { type: "process" }, process_type: "worker" });
    const list = (await call("GET", `/v3/apps/${guid}/processes`)).json;
    expect(list.resources.map((p: any) => [p.type, p.instances, p.command])).toEqual([["web", 1, null], ["worker", 1, null]]);
    // CF's shape: the web process's guid is the app's, with links to scale and stats
    expect(list.resources[0]).toMatchObject({ guid, health_check: { type: "port", data: { timeout: 60 } }, relationships: { app: { data: { guid } } } });
    expect(list.resources[1].links.scale).toEqual({ href: `/v3/processes/${list.resources[1].guid}/actions/scale`, method: "POST" });
    const rows = (await call("GET", `/v3/apps/${guid}/instances`)).json.resources;
    expect(rows.map((r: any) => [r.process_type, r.index, r.state])).toEqual([["web", 0, "RUNNING"], ["worker", 0, "RUNNING"]]);
  });

  test("scaling the worker changes only workers; the web process and the app's instances stay", async () => {
    const guid = (await call("GET", "/v3/apps?names=shop")).json.resources[0].guid;
    const r = await call("POST", `/v3/apps/${guid}/processes/worker/actions/scale`, { instances: 3 });
    expect(r.status).toBe(200);
    expect(r.json.instances).toBe(3);
    await eventually(async () => (ofType(guid, "worker").length === 3 ? true : undefined), 5000, "3 workers");
    expect(ofType(guid, "web").length).toBe(1);
    expect((await call("GET", `/v3/apps/${guid}`)).json.instances).toBe(1);
    // by the process's own guid too, as cf scale does
    const worker = (await call("GET", `/v3/apps/${guid}/processes/worker`)).json;
    await call("POST", `/v3/processes/${worker.guid}/actions/scale`, { instances: 2 });
    await eventually(async () => (ofType(guid, "worker").length === 2 ? true : undefined), 5000, "back to 2 workers");
    const stats = (await call("GET", `/v3/processes/${worker.guid}/stats`)).json.resources;
    expect(stats.map((s: any) => [s.type, s.index, s.state])).toEqual([["worker", 0, "RUNNING"], ["worker", 1, "RUNNING"]]);
    // the app's own instances field is its web process's
    await call("PATCH", `/v3/apps/${guid}`, { instances: 2 });
    expect((await call("GET", `/v3/apps/${guid}/processes/web`)).json.instances).toBe(2);
    await eventually(async () => (ofType(guid, "web").length === 2 ? true : undefined), 5000, "2 web");
    expect(ofType(guid, "worker").length).toBe(2);
  });

  test("a crashed worker is restarted, its crash counted for its type and index", async () => {
    const guid = (await call("GET", "/v3/apps?names=shop")).json.resources[0].guid;
    const victim = ofType(guid, "worker").find((i) => i.index === 1)!;
    agent.crash(victim.instance);
    await eventually(async () => (ofType(guid, "worker").some((i) => i.index === 1 && i.instance !== victim.instance) ? true : undefined), 5000, "worker 1 restarted");
    const crashes = await c.ctx.store.crashesOf(guid);
    expect(crashes.map((x) => [x.process_type, x.idx, x.crash_count])).toEqual([["worker", 1, 1]]);
    const ev = (await call("GET", `/v3/events?target_guids=${guid}&types=audit.app.process.crash`)).json.resources[0];
    expect(ev.data).toMatchObject({ index: 1, process_type: "worker", crash_count: 1 });
  });

  test("a process type from the API (as a manifest's processes: make it) runs with its own command; removing it stops it", async () => {
    const guid = (await call("GET", "/v3/apps?names=shop")).json.resources[0].guid;
    const made = await call("PATCH", `/v3/apps/${guid}/processes/clock`, { command: "bun clock.ts", instances: 1, memory_in_mb: 64 });
    expect(made.status).toBe(200);
    expect(made.json).toMatchObject({ type: "clock", command: "bun clock.ts", instances: 1, memory_in_mb: 64, health_check: { type: "process" } });
    await eventually(async () => (ofType(guid, "clock").length === 1 ? true : undefined), 5000, "clock running");
    expect(ofType(guid, "clock")[0]!.start).toMatchObject({ start_command: "bun clock.ts", limits: { mem: 64 } });
    expect((await call("DELETE", `/v3/apps/${guid}/processes/clock`)).status).toBe(204);
    await eventually(async () => (ofType(guid, "clock").length === 0 ? true : undefined), 5000, "clock stopped");
    expect((await call("DELETE", `/v3/apps/${guid}/processes/web`)).status).toBe(422);
    expect((await call("PATCH", `/v3/apps/${guid}/processes/a.b`, { instances: 1 })).status).toBe(422);
  });

  test("a restart rolls every type over to the new release", async () => {
    const guid = (await call("GET", "/v3/apps?names=shop")).json.resources[0].guid;
    const before = new Set(agent.running(guid).map((i) => i.version));
    const release = (await call("POST", `/v3/apps/${guid}/actions/restart`)).json.release;
    await eventually(async () => {
      const all = agent.running(guid);
      return all.length === 4 && all.every((i) => i.version.endsWith(`-${release}`)) ? true : undefined;
    }, 8000, "every web and worker instance on the new release");
    expect(before.size).toBe(1);
    expect(ofType(guid, "web").length).toBe(2);
    expect(ofType(guid, "worker").length).toBe(2);
  });

  test("a new droplet without the worker (Procfile changed) removes it; a type with its own command stays", async () => {
    const guid = (await call("GET", "/v3/apps?names=shop")).json.resources[0].guid;
    await call("PATCH", `/v3/apps/${guid}/processes/mailer`, { command: "bun mail.ts", instances: 0 });
    agent.processTypes = { web: "bun web.ts" };
    await call("PUT", `/v3/apps/${guid}/bits`, await tarGz({ "web.ts": "3", Procfile: "web: bun web.ts\n" }));
    await call("POST", `/v3/apps/${guid}/actions/start`);
    await eventually(async () => (ofType(guid, "worker").length === 0 ? true : undefined), 8000, "workers stopped");
    const types = (await call("GET", `/v3/apps/${guid}/processes`)).json.resources.map((p: any) => p.type);
    expect(types).toEqual(["web", "mailer"]);
  });
});

describe("tasks (issue 17)", () => {
  let guid: string;
  const task = async (body: Record<string, unknown>) => {
    agent.advertise(); // the fake agent advertises only when asked: keep it in the registry (10 s TTL)
    const r = await call("POST", `/v3/apps/${guid}/tasks`, body);
    expect(r.status, JSON.stringify(r.json)).toBe(202);
    return r.json;
  };
  const state = async (t: { guid: string }) => (await call("GET", `/v3/tasks/${t.guid}`)).json;
  const until = (t: { guid: string }, want: string) => eventually(async () => {
    const s = await state(t);
    return s.state === want ? s : undefined;
  }, 6000, `task ${want}`);

  beforeAll(async () => {
    guid = await procfileApp("jobs");
    await call("PATCH", `/v3/apps/${guid}/env`, { var: { GREETING: "hi" } });
  });

  test("a task runs on an agent from the app's droplet with its env, and succeeds", async () => {
    const t = await task({ command: "bun run migrate", name: "migrate", memory_in_mb: 128 });
    expect(t).toMatchObject({ sequence_id: 1, name: "migrate", command: "bun run migrate", memory_in_mb: 128, relationships: { app: { data: { guid } } } });
    expect(["PENDING", "RUNNING"]).toContain(t.state);
    const running = await until(t, "RUNNING");
    expect(running.agent).toBe("agent1");
    const sent = agent.tasks.get(t.guid)!.start;
    const app = (await call("GET", `/v3/apps/${guid}`)).json;
    expect(sent).toMatchObject({ droplet: guid, app_name: "jobs", command: "bun run migrate", limits: { mem: 128 }, env: { GREETING: "hi" } });
    expect(sent.droplet_uri).toContain(app.droplet_guid ? "/internal/v1/droplets/" : "");
    agent.finishTask(t.guid, 0);
    expect(await until(t, "SUCCEEDED")).toMatchObject({ exit_status: 0, result: { failure_reason: null } });
  });

  test("a failing task reports its exit status and why", async () => {
    const t = await task({ command: "exit 3" });
    expect(t.name).toMatch(/^[0-9a-f]{8}$/);
    expect(t.sequence_id).toBe(2);
    await until(t, "RUNNING");
    agent.finishTask(t.guid, 3);
    expect(await until(t, "FAILED")).toMatchObject({ exit_status: 3, result: { failure_reason: "exited with status 3" } });
    // a finished task stays finished whatever arrives late
    agent.finishTask(t.guid, 0);
    await Bun.sleep(100);
    expect((await state(t)).state).toBe("FAILED");
  });

  test("cancel: CANCELING, then FAILED once the agent stopped it; a finished task cannot be cancelled", async () => {
    const t = await task({ command: "sleep 600", name: "long" });
    await until(t, "RUNNING");
    agent.tasks.get(t.guid)!.state = "RUNNING";
    const holdCancel = agent.tasks.get(t.guid)!;
    const r = await call("POST", `/v3/tasks/${t.guid}/actions/cancel`);
    expect(r.status).toBe(202);
    expect(["CANCELING", "FAILED"]).toContain(r.json.state);
    expect(await until(t, "FAILED")).toMatchObject({ result: { failure_reason: "cancelled" } });
    expect(holdCancel.state).toBe("FAILED");
    expect((await call("POST", `/v3/tasks/${t.guid}/actions/cancel`)).status).toBe(422);
    const list = (await call("GET", `/v3/apps/${guid}/tasks`)).json;
    expect(list.resources.map((x: any) => [x.sequence_id, x.state])).toEqual([[1, "SUCCEEDED"], [2, "FAILED"], [3, "FAILED"]]);
    expect((await call("GET", `/v3/apps/${guid}/tasks?sequence_ids=2`)).json.resources[0].guid).toBeDefined();
    const events = (await call("GET", `/v3/events?target_guids=${guid}&types=audit.app.task.create,audit.app.task.cancel`)).json;
    expect(events.pagination.total_results).toBe(4);
  });

  test("records survive a controller restart, and an end reported while it was down is read from the agent's heartbeat", async () => {
    const t = await task({ command: "bun run report", name: "report" });
    await until(t, "RUNNING");
    await c.stop();
    // it ends while the controller is down: the task.state is lost, the heartbeat still lists the outcome
    agent.finishTask(t.guid, 0, undefined, true);
    await start();
    agent.heartbeat();
    await Bun.sleep(2100); // a heartbeat must be newer than the task's last change before it counts
    agent.heartbeat();
    expect(await until(t, "SUCCEEDED")).toMatchObject({ exit_status: 0 });
    expect((await call("GET", `/v3/apps/${guid}/tasks`)).json.resources.length).toBe(4);
  }, 20_000);

  test("a task its agent no longer knows (the agent restarted) is FAILED", async () => {
    const t = await task({ command: "bun run long", name: "lost" });
    await until(t, "RUNNING");
    agent.tasks.delete(t.guid);
    await Bun.sleep(2100);
    agent.heartbeat();
    await Bun.sleep(3100);
    agent.heartbeat();
    expect(await until(t, "FAILED")).toMatchObject({ result: { failure_reason: "agent agent1 no longer runs the task (it restarted, or never received it)" } });
  }, 20_000);

  test("an app without a droplet cannot run a task; deleting an app cancels its tasks", async () => {
    const bare = (await call("POST", "/v3/apps", { name: "bare", no_route: true })).json;
    const r = await call("POST", `/v3/apps/${bare.guid}/tasks`, { command: "true" });
    expect(r.status).toBe(422);
    expect(r.json.errors[0].detail).toContain("has no droplet yet");
    const t = await task({ command: "sleep 600", name: "orphan" });
    await until(t, "RUNNING");
    expect((await call("DELETE", `/v3/apps/${guid}`)).status).toBe(204);
    await eventually(async () => (agent.tasks.get(t.guid)?.state === "FAILED" ? true : undefined), 3000, "the agent told to stop the task");
    expect((await call("GET", `/v3/tasks/${t.guid}`)).status).toBe(404);
  });
});

// ---- the migration: existing apps become their web process --------------------------------------

/** A database at schema version 5 (before issue 17), with an app and a crash record. */
async function version5(db: Database): Promise<void> {
  await db.tx(async (q) => {
    await q.run(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
    for (const m of migrations.filter((x) => x.version <= 5)) {
      for (const s of m.sql) await q.run(s);
      await q.run(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, [m.version, m.name, 0]);
    }
    await q.run(`INSERT INTO orgs VALUES ('o1', 'o', 0)`);
    await q.run(`INSERT INTO spaces VALUES ('s1', 's', 'o1', 0)`);
    await q.run(`INSERT INTO apps (guid, name, space_guid, state, instances, memory_mb, disk_mb, command, env_json, buildpack, stack, health_check_type,
      health_check_endpoint, health_check_timeout, package_sha, package_state, staging_error, droplet_guid, release, created_at, updated_at)
      VALUES ('app1', 'old', 's1', 'STARTED', 3, 512, 2048, 'bun server.ts', '{}', NULL, NULL, 'http', '/health', 30, NULL, 'STAGED', NULL, 'd1', 4, 1, 2)`);
    await q.run(`INSERT INTO droplets (guid, app_guid, sha256, detected_start_command, buildpack, package_sha, created_at) VALUES ('d1', 'app1', 'ab', 'bun index.ts', 'bun', NULL, 1)`);
    await q.run(`INSERT INTO instance_crashes VALUES ('app1', 2, 4, 10, 20, 'exited with status 1')`);
  });
}

async function checkMigrated(db: Database): Promise<void> {
  expect(await migrate(db)).toEqual([6]);
  const store = new Store(db);
  const [web] = await store.processes.of("app1");
  expect(web).toMatchObject({ guid: "app1", app_guid: "app1", type: "web", command: "bun server.ts", instances: 3, memory_mb: 512, disk_mb: 2048, health_check_type: "http", health_check_endpoint: "/health", health_check_timeout: 30 });
  expect(await store.crashesOf("app1")).toEqual([{ app_guid: "app1", process_type: "web", idx: 2, crash_count: 4, last_crash_at: 10, next_restart_at: 20, last_exit_description: "exited with status 1" }]);
  expect((await store.dropletByGuid("d1"))!.process_types).toBeNull();
  // the app and its web process move together from now on
  await store.tx((q) => store.updateApp(q, "app1", { instances: 5 }));
  expect((await store.processes.byType("app1", "web"))!.instances).toBe(5);
  await store.tx(async (q) => store.processes.update(q, (await store.processes.byType("app1", "web", q))!, { memory_mb: 1024 }));
  expect((await store.appByGuid("app1"))!.memory_mb).toBe(1024);
  expect(await migrate(db)).toEqual([]);
}

describe("migration 6: every existing app's settings become its web process (issue 17)", () => {
  test("on SQLite", async () => {
    const db = openSqlite(join(dir, "v5.sqlite"));
    await version5(db);
    await checkMigrated(db);
    await db.close();
  });

  test.skipIf(!canRunPostgres)("on PostgreSQL", async () => {
    const pg = await startPostgresServer("skiff-pg6-");
    try {
      const db = await openPostgres(pg.url);
      await version5(db);
      await checkMigrated(db);
      await db.close();
    } finally {
      pg.stop();
    }
  }, 60_000);
});
