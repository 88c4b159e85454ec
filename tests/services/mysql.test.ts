// Issue 8: MySQL (MariaDB) through the broker against a real mariadbd: provision → bind → use → unbind →
// deprovision, tenant isolation, and orphan mitigation of a provision or bind that fails half-way.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { MysqlProvisioner } from "../../controller/broker/provisioners/mysql.ts";
import { startMysql, type RunningMysql } from "../../controller/broker/servers/mysql-server.ts";
import type { BindRequest, ProvisionRequest } from "../../controller/broker/types.ts";
import { brokerFor, installed, rejection, tempDir } from "./harness.ts";

const available = installed("mariadbd", "mysqld");

let server: RunningMysql;
let admin: SQL;
const dir = tempDir("mysql");

beforeAll(async () => {
  server = await startMysql({ dir: dir.path, durable: false });
  admin = new SQL({ url: server.adminUrl, adapter: "mysql", max: 1 });
}, 90_000);

afterAll(async () => {
  await admin?.close({ timeout: 1 });
  await server?.stop();
  dir.remove();
});

async function connect(uri: string) {
  const sql = new SQL({ url: uri, adapter: "mysql", max: 1, connectionTimeout: 5, idleTimeout: 5 });
  await sql`SELECT 1`;
  return sql;
}

async function canConnect(uri: string): Promise<boolean> {
  try {
    const sql = await connect(uri);
    await sql.close({ timeout: 1 });
    return true;
  } catch {
    return false;
  }
}

describe("mysql provisioner", () => {
  test("provision, bind, use, unbind, deprovision; tenants cannot reach each other", async () => {
    const { client, ids, close } = brokerFor([new MysqlProvisioner({ adminUrl: server.adminUrl })]);
    try {
      const a = { instanceId: "mysql-tenant-a", ...ids };
      const b = { instanceId: "mysql-tenant-b", ...ids };
      await client.provision(a);
      await client.provision(b);
      const dbA = MysqlProvisioner.databaseName(a.instanceId);
      const { credentials: ca } = await client.bind({ ...a, bindingId: "mysql-ba" });
      const { credentials: cb } = await client.bind({ ...b, bindingId: "mysql-bb" });
      expect(ca).toMatchObject({ hostname: "127.0.0.1", port: server.port, name: dbA });
      expect(ca.uri).toBe(`mysql://${ca.username}:${ca.password}@127.0.0.1:${server.port}/${dbA}`);
      expect(ca.jdbcUrl).toStartWith(`jdbc:mysql://127.0.0.1:${server.port}/${dbA}`);

      const appA = await connect(ca.uri);
      await appA`CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT)`;
      await appA`INSERT INTO notes (body) VALUES ('hello')`;
      expect((await appA`SELECT body FROM notes`)[0].body).toBe("hello");

      // B's user sees neither A's database nor its table.
      const appB = await connect(cb.uri);
      expect(await rejection(appB.unsafe(`SELECT * FROM \`${dbA}\`.notes`))).toBeInstanceOf(Error);
      const visible = (await appB`SHOW DATABASES`).map((r: Record<string, string>) => Object.values(r)[0]);
      expect(visible).not.toContain(dbA);
      await appB.close({ timeout: 1 });
      const u = new URL(cb.uri);
      u.pathname = `/${dbA}`;
      expect(await canConnect(u.toString())).toBe(false);

      // Unbind: the open connection is killed and the user is gone.
      await client.unbind({ ...a, bindingId: "mysql-ba" });
      expect(await rejection(appA`SELECT 1`)).toBeInstanceOf(Error);
      await appA.close({ timeout: 0 }).catch(() => {});
      expect(await canConnect(ca.uri)).toBe(false);
      expect(await admin.unsafe(`SELECT 1 FROM mysql.user WHERE User = ?`, [ca.username])).toHaveLength(0);

      await client.deprovision(a);
      await client.deprovision(b);
      expect(await admin.unsafe(`SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (?, ?)`, [dbA, cb.name])).toHaveLength(0);
      expect(await admin.unsafe(`SELECT 1 FROM mysql.user WHERE User = ?`, [cb.username])).toHaveLength(0);
    } finally {
      await close();
    }
  }, 90_000);

  test("a provision or a bind that fails after creating its database or user leaves no orphan (issue 8)", async () => {
    class HalfBroken extends MysqlProvisioner {
      breakProvision = false;
      breakBind = false;
      override async provision(req: ProvisionRequest) {
        await super.provision(req);
        if (this.breakProvision) throw new Error("disk full (simulated) after CREATE DATABASE");
      }
      override async bind(req: BindRequest) {
        const made = await super.bind(req);
        if (this.breakBind) throw new Error("connection lost (simulated) after CREATE USER");
        return made;
      }
    }
    const p = new HalfBroken({ adminUrl: server.adminUrl });
    const { client, ids, close } = brokerFor([p], {}, 5000);
    try {
      const inst = { instanceId: "mysql-orphan", ...ids };
      const db = MysqlProvisioner.databaseName(inst.instanceId);
      p.breakProvision = true;
      const err = await rejection(client.provision(inst));
      expect(err?.message).toContain("disk full");
      expect((err as { orphan?: string }).orphan).toBe("cleaned");
      expect(await admin.unsafe(`SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, [db])).toHaveLength(0);

      p.breakProvision = false;
      await client.provision(inst);
      p.breakBind = true;
      const bindErr = await rejection(client.bind({ ...inst, bindingId: "mysql-orphan-b" }));
      expect(bindErr?.message).toContain("connection lost");
      expect((bindErr as { orphan?: string }).orphan).toBe("cleaned");
      expect(await admin.unsafe(`SELECT 1 FROM mysql.user WHERE User = ?`, [MysqlProvisioner.userName("mysql-orphan-b")])).toHaveLength(0);
      await client.deprovision(inst);
      expect(await admin.unsafe(`SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, [db])).toHaveLength(0);
    } finally {
      await close();
    }
  }, 90_000);

  test("plans (issue 22, OSB 2.17 § Updating a Service Instance): shared caps each binding at 10 connections; PATCH to shared-large raises it to 40 on the live database, its rows kept", async () => {
    const provisioner = new MysqlProvisioner({ adminUrl: server.adminUrl });
    const [shared, large] = provisioner.service.plans;
    expect(shared!.metadata?.limits).toEqual({ connections_per_binding: 10 });
    expect(large!.metadata?.limits).toEqual({ connections_per_binding: 40 });
    expect(provisioner.service.plan_updateable).toBe(true);
    const { client, ids, close } = brokerFor([provisioner]);
    const open: SQL[] = [];
    const connectOne = async (uri: string) => {
      const c = new SQL({ url: uri, adapter: "mysql", max: 1, connectionTimeout: 5 });
      open.push(c);
      await c`SELECT 1`;
      return c;
    };
    try {
      const inst = { instanceId: "mysql-plan", ...ids };
      await client.provision(inst);
      const { credentials } = await client.bind({ ...inst, bindingId: "mysql-plan-b" });
      const first = await connectOne(credentials.uri);
      await first`CREATE TABLE notes (body TEXT)`;
      await first`INSERT INTO notes VALUES ('written on shared')`;
      for (let i = 1; i < 10; i++) await connectOne(credentials.uri);
      // the 11th: MariaDB refuses it at login
      expect((await rejection(connectOne(credentials.uri)))?.message).toMatch(/max_user_connections/);
      await client.update({ ...inst, planId: large!.id, previousPlanId: shared!.id });
      const eleventh = await connectOne(credentials.uri);
      expect((await eleventh`SELECT body FROM notes`)[0].body).toBe("written on shared");
      const row = await admin.unsafe(`SELECT max_user_connections AS n FROM mysql.user WHERE User = ?`, [credentials.username]);
      expect(Number(row[0].n)).toBe(40);
      await Promise.all(open.splice(0).map((c) => c.close({ timeout: 1 }).catch(() => undefined)));
      await client.unbind({ ...inst, planId: large!.id, bindingId: "mysql-plan-b" });
      await client.deprovision({ ...inst, planId: large!.id });
    } finally {
      await Promise.all(open.map((c) => c.close({ timeout: 1 }).catch(() => undefined)));
      await close();
    }
  }, 90_000);
});
