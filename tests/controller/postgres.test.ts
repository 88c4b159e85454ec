// The controller's storage on a real PostgreSQL (Debian's, started here as the postgres user on a
// free port), through Bun's built-in SQL client: the same migrations, store queries, transactions,
// the health-manager lease, and the API on top. Skipped when PostgreSQL is not installed.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBus, MemoryBroker, memoryLogger } from "../../bus/index.ts";
import { startController, type RunningController } from "../../controller/main.ts";
import { openDatabase } from "../../controller/src/db/open.ts";
import { migrations } from "../../controller/src/db/migrations.ts";
import { Store, newGuid } from "../../controller/src/db/store.ts";
import { canRunPostgres, startPostgresServer, type PostgresServer } from "../support/postgres-server.ts";

let pg: PostgresServer | undefined;
let url: string;

beforeAll(async () => {
  if (!canRunPostgres) return;
  pg = await startPostgresServer("skiff-pg-");
  url = pg.url;
}, 60_000);

afterAll(() => pg?.stop());

describe.skipIf(!canRunPostgres)("PostgreSQL storage", () => {
  test("migrations, store queries, transactions and the lease", async () => {
    const db = await openDatabase({ dataDir: "/nonexistent", databaseUrl: url });
    expect(db.dialect).toBe("postgres");
    const again = await openDatabase({ dataDir: "/nonexistent", databaseUrl: url }); // migrations are idempotent
    await again.close();
    const store = new Store(db);
    await store.tx(async (q) => store.insertUser(q, { guid: newGuid(), username: "u1", password_hash: "x", admin: true, created_at: Date.now() }));
    expect((await store.userByName("u1"))!.admin).toBe(true);
    // a failing transaction leaves nothing behind
    await expect(store.tx(async (q) => {
      await store.insertUser(q, { guid: newGuid(), username: "u2", password_hash: "x", admin: false, created_at: Date.now() });
      throw new Error("boom");
    })).rejects.toThrow("boom");
    expect(await store.userByName("u2")).toBeUndefined();
    expect(await store.acquireLease("hm", "a", 10_000, 1000)).toBe(true);
    expect(await store.acquireLease("hm", "b", 10_000, 2000)).toBe(false);
    expect(await store.acquireLease("hm", "a", 10_000, 3000)).toBe(true);
    expect(await store.acquireLease("hm", "b", 10_000, 20_000)).toBe(true);
    expect(await store.settingOrInit("k", () => "v1")).toBe("v1");
    expect(await store.settingOrInit("k", () => "v2")).toBe("v1");
    await db.close();
  });

  test("4 connections migrating a fresh database at once all succeed (issue 7)", async () => {
    for (let trial = 0; trial < 3; trial++) {
      const name = `race_${trial}`;
      const created = pg!.createDatabase(name);
      expect(created.code, created.out).toBe(0);
      const dbUrl = created.url;
      const opened = await Promise.allSettled(Array.from({ length: 4 }, () => openDatabase({ dataDir: "/nonexistent", databaseUrl: dbUrl })));
      expect(opened.map((r) => (r.status === "fulfilled" ? "ok" : String(r.reason)))).toEqual(["ok", "ok", "ok", "ok"]);
      const db = (opened[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof openDatabase>>>).value;
      const applied = await db.all<{ version: number }>(`SELECT version FROM schema_migrations ORDER BY version`);
      expect(applied.map((r) => Number(r.version))).toEqual(migrations.map((m) => m.version));
      for (const r of opened) if (r.status === "fulfilled") await r.value.close();
    }
  });

  test("the API runs on PostgreSQL", async () => {
    const broker = new MemoryBroker();
    const d = mkdtempSync(join(tmpdir(), "skiff-pg-ctl-"));
    let c: RunningController | undefined;
    const created = pg!.createDatabase("api_test");
    expect(created.code, created.out).toBe(0);
    try {
      c = await startController({ natsUrl: "", port: 0, dataDir: d, databaseUrl: created.url, domain: "pg.test", adminPassword: "adminpass", embedHealthManager: true, health: { startGraceMs: 0 } }, { bus: createBus(broker.transport(), memoryLogger()), log: memoryLogger(), listen: false });
      const h = (path: string, init: RequestInit = {}) => c!.app.handle(new Request("http://controller.test" + path, init)).then(async (r) => ({ status: r.status, json: (await r.json()) as any }));
      const tok = (await h("/v3/tokens", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username: "admin", password: "adminpass" }) })).json.access_token;
      const auth = { authorization: `bearer ${tok}`, "content-type": "application/json" };
      const app = await h("/v3/apps", { method: "POST", headers: auth, body: JSON.stringify({ name: "pgapp", instances: 2 }) });
      expect(app.status, JSON.stringify(app.json)).toBe(201);
      expect(app.json.routes).toEqual(["pgapp.pg.test"]);
      const list = await h("/v3/apps?names=pgapp", { headers: auth });
      expect(list.json.resources[0].instances).toBe(2);
      const ev = await h(`/v3/events?target_guids=${app.json.guid}`, { headers: auth });
      expect(ev.json.resources.map((e: any) => e.type)).toContain("audit.app.create");
      expect((await c.health!.pass()).leader).toBe(true);
    } finally {
      await c?.stop();
      rmSync(d, { recursive: true, force: true });
    }
  });

  test("two spaces racing for one host: one wins; logins lock on PostgreSQL too (issue 24)", async () => {
    const broker = new MemoryBroker();
    const d = mkdtempSync(join(tmpdir(), "skiff-pg-race-"));
    let c: RunningController | undefined;
    const created = pg!.createDatabase("race_test");
    expect(created.code, created.out).toBe(0);
    try {
      c = await startController({ natsUrl: "", port: 0, dataDir: d, databaseUrl: created.url, domain: "pg.test", adminPassword: "adminpass", embedHealthManager: false, limits: { loginLockMs: 60_000 } }, { bus: createBus(broker.transport(), memoryLogger()), log: memoryLogger(), listen: false });
      const h = (path: string, init: RequestInit = {}) => c!.app.handle(new Request("http://controller.test" + path, init)).then(async (r) => ({ status: r.status, json: (await r.json()) as any }));
      const login = (username: string, password: string) => h("/v3/tokens", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ username, password }) });
      const tok = (await login("admin", "adminpass")).json.access_token;
      const post = (path: string, body: unknown) => h(path, { method: "POST", headers: { authorization: `bearer ${tok}`, "content-type": "application/json" }, body: JSON.stringify(body) });
      const org = (await post("/v3/organizations", { name: "racers" })).json.guid;
      const spaces = [(await post("/v3/spaces", { name: "a", organization_guid: org })).json.guid, (await post("/v3/spaces", { name: "b", organization_guid: org })).json.guid];
      for (let i = 0; i < 10; i++) {
        const answers = await Promise.all(spaces.map((s, k) => post("/v3/routes", { space_guid: s, host: `race${i}`, path: `/p${k}` })));
        expect(answers.map((a) => a.status).sort()).toEqual([201, 422]);
        const holders = new Set((await h(`/v3/routes`, { headers: { authorization: `bearer ${tok}` } })).json.resources.filter((r: any) => r.host === `race${i}`).map((r: any) => r.relationships.space.data.guid));
        expect(holders.size).toBe(1);
      }
      await post("/v3/users", { username: "pguser", password: "pguser-password" });
      const answers = [];
      for (let i = 0; i < 6; i++) answers.push(await login("pguser", i < 5 ? "wrong" : "pguser-password"));
      expect(answers.map((a) => a.json.errors?.[0]?.title)).toEqual(["CF-NotAuthenticated", "CF-NotAuthenticated", "CF-NotAuthenticated", "CF-NotAuthenticated", "CF-AccountLocked", "CF-AccountLocked"]);
    } finally {
      await c?.stop();
      rmSync(d, { recursive: true, force: true });
    }
  }, 60_000);
});
