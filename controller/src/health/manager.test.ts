import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBus, MemoryBroker, memoryLogger } from "../../../bus/index.ts";
import { openSqlite } from "../db/sqlite.ts";
import { migrate } from "../db/migrations.ts";
import { Store } from "../db/store.ts";
import type { InstanceLauncher } from "../launcher.ts";
import { ActualState } from "./actual-state.ts";
import { HealthManager, LEASE_NAME } from "./manager.ts";

const dir = mkdtempSync(join(tmpdir(), "skiff-hm-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("health manager lease", () => {
  test("with two running, exactly one acts; the other takes over when the lease expires", async () => {
    const db = openSqlite(join(dir, "db.sqlite"));
    await migrate(db);
    const store = new Store(db);
    const broker = new MemoryBroker();
    let clock = 1_000_000;
    const make = (holder: string) => {
      const starts: number[][] = [];
      const launcher = { start: async (_a: unknown, _d: unknown, idx: number[]) => (starts.push(idx), idx.map((index) => ({ index, agent: "x" }))), stopInstances: () => {}, stopApp: () => {} } as unknown as InstanceLauncher;
      const hm = new HealthManager({ bus: createBus(broker.transport(), memoryLogger()), store, actual: new ActualState(), launcher, log: memoryLogger(), now: () => clock }, { holder, leaseTtlMs: 10_000, startGraceMs: 0, intervalMs: 3_600_000 });
      return { hm, starts };
    };
    // one started app with a droplet and 2 instances, none running
    const space = "s1";
    await db.exec(`INSERT INTO orgs VALUES ('o1','o',0); INSERT INTO spaces VALUES ('s1','s','o1',0);`);
    await store.tx(async (q) => {
      await store.insertApp(q, { guid: "app1", name: "a", space_guid: space, state: "STARTED", instances: 2, memory_mb: 64, disk_mb: 64, command: null, env: {}, buildpack: null, stack: null, health_check_type: "port", health_check_endpoint: null, health_check_timeout: 60, package_sha: null, package_state: "STAGED", staging_error: null, droplet_guid: "d1", release: 1, created_at: 0, updated_at: 0 });
      await q.run(`INSERT INTO droplets (guid, app_guid, sha256, detected_start_command, buildpack, package_sha, created_at) VALUES ('d1','app1',?,NULL,NULL,NULL,0)`, ["ab".repeat(32)]);
    });
    const a = make("hm-a"), b = make("hm-b");
    const [ra, rb] = await Promise.all([a.hm.pass(), b.hm.pass()]);
    expect([ra.leader, rb.leader].filter(Boolean).length).toBe(1);
    const leader = ra.leader ? a : b, follower = ra.leader ? b : a;
    expect(leader.starts).toEqual([[0, 1]]);
    expect(follower.starts).toEqual([]);
    // the leader renews; the follower stays idle
    clock += 5_000;
    expect((await follower.hm.pass()).leader).toBe(false);
    expect((await leader.hm.pass()).leader).toBe(true);
    // the leader dies (no renewals): after the TTL the follower takes over
    clock += 10_001;
    const took = await follower.hm.pass();
    expect(took.leader).toBe(true);
    expect((await store.db.get<{ holder: string }>(`SELECT holder FROM leases WHERE name = ?`, [LEASE_NAME]))!.holder).toBe(follower === a ? "hm-a" : "hm-b");
    expect((await leader.hm.pass()).leader).toBe(false);
    await db.close();
  });
});

describe("health manager actions (issue 7)", () => {
  let n = 0;
  /** A fresh database with one started app (with a droplet) and a health manager whose launcher records starts. */
  async function setup(instances: number) {
    const db = openSqlite(join(dir, `actions-${n++}.sqlite`));
    await migrate(db);
    const store = new Store(db);
    await db.exec(`INSERT INTO orgs VALUES ('o1','o',0); INSERT INTO spaces VALUES ('s1','s','o1',0);`);
    await store.tx(async (q) => {
      await store.insertApp(q, { guid: "app1", name: "a", space_guid: "s1", state: "STARTED", instances, memory_mb: 64, disk_mb: 64, command: null, env: {}, buildpack: null, stack: null, health_check_type: "port", health_check_endpoint: null, health_check_timeout: 60, package_sha: null, package_state: "STAGED", staging_error: null, droplet_guid: "d1", release: 1, created_at: 0, updated_at: 0 });
      await q.run(`INSERT INTO droplets (guid, app_guid, sha256, detected_start_command, buildpack, package_sha, created_at) VALUES ('d1','app1',?,NULL,NULL,NULL,0)`, ["ab".repeat(32)]);
    });
    const starts: number[][] = [];
    const launcher = { start: async (_a: unknown, _d: unknown, idx: number[]) => (starts.push(idx), idx.map((index) => ({ index, agent: "x" }))), stopInstances: () => {}, stopApp: () => {} } as unknown as InstanceLauncher;
    const hm = new HealthManager({ bus: createBus(new MemoryBroker().transport(), memoryLogger()), store, actual: new ActualState(), launcher, log: memoryLogger() }, { holder: "hm", startGraceMs: 0, intervalMs: 3_600_000 });
    return { db, store, hm, starts };
  }

  /** Makes `change` happen after the pass has read desired state, before it acts. */
  function changeAfterRead(store: Store, change: () => Promise<void>) {
    const read = store.startedApps.bind(store);
    store.startedApps = async () => {
      const apps = await read();
      await change();
      return apps;
    };
  }

  for (const [what, patch, expected] of [
    ["stopped", { state: "STOPPED" as const }, []],
    ["scaled from 3 to 1", { instances: 1 }, [[0]]],
    ["given a new release", { release: 2 }, []],
  ] as const) {
    test(`re-checks the app before acting: an app ${what} after the pass decided gets no stale start`, async () => {
      const { db, store, hm, starts } = await setup(3);
      changeAfterRead(store, () => store.tx((q) => store.updateApp(q, "app1", patch)));
      const r = await hm.pass();
      // it decided on what it read (3 starts), and acted on what is true now
      expect(r.actions.filter((a) => a.type === "start").length).toBe(3);
      expect(starts).toEqual(expected as unknown as number[][]);
      await db.close();
    });
  }

  test("starts at most 200 instances a pass: 300 missing → 200, then the other 100", async () => {
    const { db, hm, starts } = await setup(300);
    await hm.pass();
    expect(starts.flat().length).toBe(200);
    expect(starts.flat()).toEqual(Array.from({ length: 200 }, (_, i) => i));
    await hm.pass();
    expect(starts.flat().length).toBe(300);
    expect(new Set(starts.flat()).size).toBe(300);
    await db.close();
  });
});
