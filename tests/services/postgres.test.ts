// Issue 8: PostgreSQL through the broker against a real postgres: provision → bind → use → unbind →
// deprovision, tenant isolation, and orphan mitigation of a failed provision or bind.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { PostgresProvisioner } from "../../controller/broker/provisioners/postgres.ts";
import { startPostgres, type RunningPostgres } from "../../controller/broker/servers/postgres-server.ts";
import type { BindRequest, ProvisionRequest } from "../../controller/broker/types.ts";
import { existsSync } from "node:fs";
import { postgresBinDir } from "../../controller/broker/servers/postgres-server.ts";
import { resourceName } from "../../controller/broker/provisioners/names.ts";
import { brokerFor, installed, rejection, tempDir } from "./harness.ts";

const available = existsSync(`${postgresBinDir()}/postgres`) || installed("postgres");

let server: RunningPostgres;
let admin: SQL;
const dir = tempDir("pg");

beforeAll(async () => {
  server = await startPostgres({ dir: dir.path, durable: false });
  admin = new SQL({ url: server.adminUrl, max: 1 });
}, 60_000);

afterAll(async () => {
  await admin?.close({ timeout: 1 });
  await server?.stop();
  dir.remove();
});

async function connect(uri: string) {
  const sql = new SQL({ url: uri, max: 1, connectionTimeout: 5, idleTimeout: 5 });
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

const withDatabase = (uri: string, db: string) => {
  const u = new URL(uri);
  u.pathname = `/${db}`;
  return u.toString();
};

describe("postgresql provisioner", () => {
  test("provision, bind, use, share between bindings, unbind, deprovision", async () => {
    const provisioner = new PostgresProvisioner({ adminUrl: server.adminUrl });
    const { client, ids, close } = brokerFor([provisioner]);
    try {
      const inst = { instanceId: "7a1f0c9e-0000-4000-8000-000000000001", ...ids };
      await client.provision(inst);
      const db = PostgresProvisioner.databaseName(inst.instanceId);
      const publicConnect = await admin.unsafe(`SELECT has_database_privilege('public', $1, 'CONNECT') AS ok`, [db]);
      expect(publicConnect[0].ok).toBe(false);

      const { credentials: c1 } = await client.bind({ ...inst, bindingId: "b-1", appGuid: "app-1" });
      expect(c1).toMatchObject({ hostname: "127.0.0.1", port: server.port, name: db });
      expect(c1.uri).toBe(`postgres://${c1.username}:${c1.password}@127.0.0.1:${server.port}/${db}`);
      expect(c1.jdbcUrl).toStartWith(`jdbc:postgresql://127.0.0.1:${server.port}/${db}?user=`);

      const app1 = await connect(c1.uri);
      await app1`CREATE TABLE notes (id serial PRIMARY KEY, body text)`;
      await app1`INSERT INTO notes (body) VALUES ('hello')`;
      expect((await app1`SELECT body FROM notes`)[0].body).toBe("hello");

      // A second binding is another role, yet sees and writes the same tables (they belong to the owner).
      const { credentials: c2 } = await client.bind({ ...inst, bindingId: "b-2", appGuid: "app-2" });
      expect(c2.username).not.toBe(c1.username);
      const app2 = await connect(c2.uri);
      await app2`INSERT INTO notes (body) VALUES ('from two')`;
      expect((await app2`SELECT count(*)::int AS n FROM notes`)[0].n).toBe(2);
      await app2.close({ timeout: 1 });

      // Unbind: the open session dies and the old credentials no longer log in.
      await client.unbind({ ...inst, bindingId: "b-1" });
      expect(await rejection(app1`SELECT 1`)).toBeInstanceOf(Error);
      await app1.close({ timeout: 0 }).catch(() => {});
      expect(await canConnect(c1.uri)).toBe(false);
      expect(await canConnect(c2.uri)).toBe(true);

      await client.deprovision(inst);
      expect(await admin.unsafe(`SELECT 1 FROM pg_database WHERE datname = $1`, [db])).toHaveLength(0);
      const leftRoles = await admin.unsafe(`SELECT rolname FROM pg_roles WHERE rolname IN ($1, $2, $3)`, [c1.username, c2.username, PostgresProvisioner.ownerName(inst.instanceId)]);
      expect(leftRoles).toHaveLength(0);
      expect(await canConnect(c2.uri)).toBe(false);
    } finally {
      await close();
    }
  }, 60_000);

  test("one tenant's credentials cannot reach another tenant's database", async () => {
    const provisioner = new PostgresProvisioner({ adminUrl: server.adminUrl });
    const { client, ids, close } = brokerFor([provisioner]);
    try {
      const a = { instanceId: "tenant-a", ...ids };
      const b = { instanceId: "tenant-b", ...ids };
      await client.provision(a);
      await client.provision(b);
      const { credentials: ca } = await client.bind({ ...a, bindingId: "ba" });
      const { credentials: cb } = await client.bind({ ...b, bindingId: "bb" });
      const sa = await connect(ca.uri);
      await sa`CREATE TABLE secrets (v text)`;
      await sa`INSERT INTO secrets VALUES ('a-only')`;
      await sa.close({ timeout: 1 });
      // B's role, pointed at A's database: no CONNECT privilege.
      const err = await rejection(connect(withDatabase(cb.uri, ca.name)));
      expect(err?.message).toMatch(/permission denied|not permitted|CONNECT/i);
      // Nor at the maintenance database.
      expect(await canConnect(withDatabase(cb.uri, "postgres"))).toBe(false);
      await client.deprovision(a);
      await client.deprovision(b);
    } finally {
      await close();
    }
  }, 60_000);

  test("a provision that fails after creating the database is deprovisioned by the client (no orphan)", async () => {
    class HalfBrokenPostgres extends PostgresProvisioner {
      override async provision(req: ProvisionRequest) {
        await super.provision(req);
        throw new Error("disk full (simulated) after CREATE DATABASE");
      }
    }
    const { client, ids, close } = brokerFor([new HalfBrokenPostgres({ adminUrl: server.adminUrl })], {}, 5000);
    try {
      const inst = { instanceId: "orphan-candidate", ...ids };
      const err = await rejection(client.provision(inst));
      expect(err?.message).toContain("disk full");
      expect((err as { orphan?: string }).orphan).toBe("cleaned");
      const db = PostgresProvisioner.databaseName(inst.instanceId);
      expect(await admin.unsafe(`SELECT 1 FROM pg_database WHERE datname = $1`, [db])).toHaveLength(0);
      expect(await admin.unsafe(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [PostgresProvisioner.ownerName(inst.instanceId)])).toHaveLength(0);
    } finally {
      await close();
    }
  }, 60_000);

  test("a provision that times out (the broker still working) is deprovisioned once the broker is done (no orphan)", async () => {
    class SlowPostgres extends PostgresProvisioner {
      override async provision(req: ProvisionRequest) {
        await super.provision(req);
        await Bun.sleep(500);
      }
    }
    const { client, ids, close, broker } = brokerFor([new SlowPostgres({ adminUrl: server.adminUrl })], { requestTimeoutMs: 150 }, 10_000);
    try {
      const inst = { instanceId: "slow-candidate", ...ids };
      const err = await rejection(client.provision(inst));
      expect(err?.name).toBe("BrokerTimeoutError");
      expect((err as { orphan?: string }).orphan).toBe("cleaned");
      await broker.idle();
      const db = PostgresProvisioner.databaseName(inst.instanceId);
      expect(await admin.unsafe(`SELECT 1 FROM pg_database WHERE datname = $1`, [db])).toHaveLength(0);
      expect(await admin.unsafe(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [PostgresProvisioner.ownerName(inst.instanceId)])).toHaveLength(0);
    } finally {
      await close();
    }
  }, 60_000);

  test("a bind that fails after creating its role is unbound by the client (no orphan, issue 8)", async () => {
    class HalfBrokenBind extends PostgresProvisioner {
      override async bind(req: BindRequest): ReturnType<PostgresProvisioner["bind"]> {
        await super.bind(req);
        throw new Error("connection lost (simulated) after CREATE ROLE");
      }
    }
    const { client, ids, close } = brokerFor([new HalfBrokenBind({ adminUrl: server.adminUrl })], {}, 5000);
    try {
      const inst = { instanceId: "bind-orphan-candidate", ...ids };
      await client.provision(inst);
      const err = await rejection(client.bind({ ...inst, bindingId: "pg-orphan-b" }));
      expect(err?.message).toContain("connection lost");
      expect((err as { orphan?: string }).orphan).toBe("cleaned");
      expect(await admin.unsafe(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [resourceName("skiffusr", "pg-orphan-b")])).toHaveLength(0);
      await client.deprovision(inst);
    } finally {
      await close();
    }
  }, 60_000);
});
