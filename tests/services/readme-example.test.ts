// Issue 8: the README's example provisioner (controller/broker/examples/schema-service.ts) is the file the
// README shows, and it works against skiff's own startPostgres: the app connects and writes, a second
// binding shares the data, unbind and deprovision succeed and leave no role, every method can be retried,
// and no password reaches the server's statement log.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SchemaProvisioner } from "../../controller/broker/examples/schema-service.ts";
import { resourceName } from "../../controller/broker/provisioners/names.ts";
import { startPostgres, type RunningPostgres } from "../../controller/broker/servers/postgres-server.ts";
import { freePort } from "../support/ports.ts";
import { brokerFor, installed, rejection, tempDir } from "./harness.ts";

installed("postgres", "/usr/lib/postgresql/15/bin/postgres", "initdb");

const repo = join(import.meta.dir, "../..");
const examplePath = join(repo, "controller/broker/examples/schema-service.ts");
let server: RunningPostgres;
let admin: SQL;
const dir = tempDir("readme-pg");

beforeAll(async () => {
  server = await startPostgres({ dir: dir.path, durable: false });
  admin = new SQL({ url: server.adminUrl, max: 1 });
  // Every statement goes to the log, so the test can look for passwords in it.
  await admin.unsafe("ALTER SYSTEM SET log_statement = 'all'");
  await admin.unsafe("SELECT pg_reload_conf()");
}, 60_000);

afterAll(async () => {
  await admin?.close({ timeout: 1 });
  await server?.stop();
  dir.remove();
});

async function tryQuery(uri: string, query: string): Promise<string> {
  const sql = new SQL({ url: uri, max: 1, connectionTimeout: 5, idleTimeout: 1 });
  try {
    return JSON.stringify(await sql.unsafe(query));
  } catch (err) {
    return `error: ${(err as Error).message}`;
  } finally {
    await sql.close({ timeout: 1 }).catch(() => undefined);
  }
}

const exampleRoles = async () =>
  ((await admin`SELECT rolname FROM pg_roles WHERE rolname ~ '^(own|usr)[0-9a-f]{24}$'`) as { rolname: string }[]).map((r) => r.rolname);

describe("the README's example provisioner (issue 8)", () => {
  test("the README shows examples/schema-service.ts verbatim", () => {
    const readme = readFileSync(join(repo, "controller/broker/README.md"), "utf8");
    const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
    expect(blocks).toContain(readFileSync(examplePath, "utf8"));
  });

  test("provision, bind, the app writes, a second binding shares it, unbind and deprovision leave nothing", async () => {
    const provisioner = new SchemaProvisioner(server.adminUrl);
    const { client, ids, close } = brokerFor([provisioner]);
    try {
      const inst = { instanceId: "c0ffee00-0000-4000-8000-000000000001", ...ids };
      await client.provision(inst);
      const { credentials: c1 } = await client.bind({ ...inst, bindingId: "readme-b1", appGuid: "app-1" });
      // the app's own database is the admin URL's, where PUBLIC may not connect
      expect(await tryQuery(c1.uri, "CREATE TABLE notes (body text)")).toBe("[]");
      expect(await tryQuery(c1.uri, "INSERT INTO notes VALUES ('hello')")).toBe("[]");
      const { credentials: c2 } = await client.bind({ ...inst, bindingId: "readme-b2", appGuid: "app-2" });
      expect(await tryQuery(c2.uri, "SELECT body FROM notes")).toBe(JSON.stringify([{ body: "hello" }]));

      // another instance's binding sees neither the schema's table nor can it use the schema
      const other = { instanceId: "c0ffee00-0000-4000-8000-000000000002", ...ids };
      await client.provision(other);
      const { credentials: c3 } = await client.bind({ ...other, bindingId: "readme-b3" });
      expect(await tryQuery(c3.uri, `SELECT * FROM ${c1.name}.notes`)).toMatch(/permission denied/);

      // an open session of the unbound login is ended, and the login no longer works
      const open = new SQL({ url: c1.uri, max: 1 });
      await open`SELECT 1`;
      await client.unbind({ ...inst, bindingId: "readme-b1" });
      expect(await rejection(open`SELECT 1`)).toBeInstanceOf(Error);
      await open.close({ timeout: 0 }).catch(() => undefined);
      expect(await tryQuery(c1.uri, "SELECT 1")).toMatch(/^error/);
      expect(await tryQuery(c2.uri, "SELECT count(*)::int AS n FROM notes")).toBe(JSON.stringify([{ n: 1 }]));

      await client.deprovision(inst);
      await client.deprovision(other);
      expect(await exampleRoles()).toEqual([]);
      expect(await admin`SELECT 1 FROM pg_namespace WHERE nspname IN (${c1.name}, ${c3.name})`).toHaveLength(0);
      // no password, only SCRAM verifiers, went through SQL
      const log = readFileSync(join(dir.path, "postgres.log"), "utf8");
      expect(log).toContain("CREATE ROLE usr");
      for (const c of [c1, c2, c3]) expect(log).not.toContain(c.password);
    } finally {
      await close();
    }
  }, 60_000);

  test("every method can be run again after a half-done first try", async () => {
    const p = new SchemaProvisioner(server.adminUrl);
    const plan = p.service.plans[0]!;
    const req = { instanceId: "retry-inst", plan, params: {}, context: {} };
    try {
      await p.provision(req);
      await p.provision(req);
      const first = await p.bind({ ...req, bindingId: "retry-b" });
      const again = await p.bind({ ...req, bindingId: "retry-b" });
      expect(await tryQuery(first.credentials.uri, "SELECT 1")).toMatch(/^error/);
      expect(await tryQuery(again.credentials.uri, "SELECT 1 AS ok")).toBe(JSON.stringify([{ ok: 1 }]));
      await p.unbind({ ...req, bindingId: "retry-b" });
      await p.unbind({ ...req, bindingId: "retry-b" });
      await p.deprovision(req);
      await p.deprovision(req);
      expect(await exampleRoles()).toEqual([]);
      expect(resourceName("own", "retry-inst")).toMatch(/^own[0-9a-f]{24}$/);
    } finally {
      await p.close();
    }
  }, 60_000);

  test("the file runs as a script: serves the broker, provisions, binds, the app reads, unbinds, deprovisions", async () => {
    const port = await freePort();
    const proc = Bun.spawn([process.execPath, examplePath], {
      env: { ...process.env, ADMIN_URL: server.adminUrl, BROKER_PORT: String(port), SKIFF_DATA_DIR: join(dir.path, "broker-data") },
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => proc.kill(), 30_000);
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(timer);
    expect(code, `${out}\n${err}`).toBe(0);
    expect(out).toContain("the app reads: hello");
    expect(out).toContain("unbound and deprovisioned");
    expect(await exampleRoles()).toEqual([]);
  }, 60_000);
});
