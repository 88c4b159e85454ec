// Issue 8, end to end on real processes and a real PostgreSQL: the one-machine cluster with `services`
// (server + broker registered as "skiff"), driven by the CLI. create-service → push an app whose manifest
// binds it → the app finds its credentials in VCAP_SERVICES and writes and reads rows through the router →
// one tenant's credentials cannot reach another's database → delete-service is refused while bound →
// unbind, and the old credentials stop working; a restart (no restage) drops them from the app's env →
// delete-service removes the database and its roles.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalCluster, type Cluster } from "../../scripts/local-cluster.ts";
import { PostgresProvisioner } from "../../controller/broker/provisioners/postgres.ts";
import { eventually } from "../support/ports.ts";
import { installed } from "./harness.ts";

installed("postgres", "/usr/lib/postgresql/15/bin/postgres", "initdb");

let cluster: Cluster;
let dataDir: string;
let token: string;
const fixture = join(import.meta.dir, "fixtures/pg-app");

async function viaRouter(path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${cluster.routerPort}${path}`, { headers: { host: `pg-app.${cluster.domain}` } });
  return { status: res.status, body: await res.text() };
}

async function api(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(cluster.controllerUrl + path, {
    method, body: body === undefined ? undefined : JSON.stringify(body),
    headers: { "content-type": "application/json", ...(token ? { authorization: `bearer ${token}` } : {}) },
  });
  const json = await res.json().catch(() => undefined);
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function cli(...args: string[]) {
  const r = await cluster.cli(args);
  if (r.code !== 0) console.log(`skiff ${args.join(" ")} →\n${r.output}`);
  return r;
}

/** Connects with the given URI and runs a query; the error message when it cannot. */
async function tryQuery(uri: string, query = "SELECT 1 AS ok"): Promise<string> {
  const sql = new SQL({ url: uri, max: 1, connectionTimeout: 5, idleTimeout: 1 });
  try {
    await sql.unsafe(query);
    return "ok";
  } catch (err) {
    return (err as Error).message;
  } finally {
    await sql.close({ timeout: 1 }).catch(() => undefined);
  }
}

const credentialsOf = async (instanceName: string) => {
  const inst = (await api("GET", `/v3/service_instances?names=${instanceName}`)).resources[0];
  const binding = (await api("GET", `/v3/service_credential_bindings?service_instance_guids=${inst.guid}`)).resources[0];
  return { instance: inst.guid as string, binding: binding?.guid as string | undefined, uri: binding ? ((await api("GET", `/v3/service_credential_bindings/${binding.guid}/details`)).credentials.uri as string) : undefined };
};

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "skiff-e2e-svc-"));
  // `services: true` starts all four servers; this suite needs only PostgreSQL (the others are covered at the broker level)
  cluster = await startLocalCluster({ dataDir, services: ["postgres"], servicesDurable: false, echo: !!process.env.SKIFF_TEST_ECHO });
  token = (await api("POST", "/v3/tokens", { username: "admin", password: cluster.adminPassword })).access_token;
  expect((await cli("login", "-a", cluster.controllerUrl, "-u", "admin", "-p", cluster.adminPassword)).code).toBe(0);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

describe("services end to end (issue 8)", () => {
  let notes: { instance: string; binding?: string; uri?: string };

  test("the cluster registered its broker: the marketplace offers postgresql", async () => {
    const brokers = await cli("service-brokers");
    expect(brokers.output).toContain("skiff");
    const m = await cli("marketplace");
    expect(m.code, m.output).toBe(0);
    expect(m.output).toMatch(/postgresql\s+shared/);
    const j = JSON.parse((await cli("marketplace", "--json")).output);
    expect(j.map((o: any) => o.name)).toEqual(["postgresql"]);
  });

  test("create-service provisions a database; push binds it from the manifest; the app reads VCAP_SERVICES and stores data", async () => {
    const created = await cli("create-service", "postgresql", "shared", "notes-db");
    expect(created.code, created.output).toBe(0);
    expect(created.output).toContain("Service instance notes-db created");
    const push = await cli("push", fixture);
    expect(push.code, push.output).toBe(0);
    expect(push.output).toContain("Binding notes-db to pg-app: done");

    const env = await eventually(async () => {
      const r = await viaRouter("/env");
      return r.status === 200 ? JSON.parse(r.body) : undefined;
    }, 30_000, "pg-app through the router");
    expect(env).toEqual({ services: ["postgresql"], postgres: true, database_url_matches: true });
    expect((await viaRouter("/write?v=alpha")).body).toBe("written\n");
    expect((await viaRouter("/write?v=beta")).body).toBe("written\n");
    expect(JSON.parse((await viaRouter("/read")).body)).toEqual(["alpha", "beta"]);

    const listing = await cli("services");
    expect(listing.output).toMatch(/notes-db\s+postgresql\s+shared\s+pg-app\s+create succeeded/);
    notes = await credentialsOf("notes-db");
    const shown = await cli("env", "pg-app");
    expect(shown.output).toContain("VCAP_SERVICES");
    expect(shown.output).toContain(notes.uri!);
    expect(await tryQuery(notes.uri!, "SELECT count(*) FROM notes")).toBe("ok");
  }, 120_000);

  test("one tenant's credentials cannot reach another tenant's database", async () => {
    expect((await cli("create-service", "postgresql", "shared", "other-db")).code).toBe(0);
    expect((await cli("bind-service", "pg-app", "other-db")).code).toBe(0);
    const other = await credentialsOf("other-db");
    const swapDb = (uri: string, to: string) => {
      const u = new URL(uri);
      u.pathname = new URL(to).pathname;
      return u.toString();
    };
    expect(await tryQuery(swapDb(other.uri!, notes.uri!), "SELECT count(*) FROM notes")).toMatch(/permission denied|not permitted|denied/i);
    expect(await tryQuery(swapDb(notes.uri!, other.uri!))).toMatch(/permission denied|not permitted|denied/i);
    // and inside its own database the other tenant sees no notes table
    expect(await tryQuery(other.uri!, "SELECT count(*) FROM notes")).toMatch(/does not exist/);
    expect((await cli("unbind-service", "pg-app", "other-db")).code).toBe(0);
    expect((await cli("delete-service", "other-db", "-f")).code).toBe(0);
  }, 60_000);

  test("delete-service is refused while the instance is bound", async () => {
    const r = await cli("delete-service", "notes-db", "-f");
    expect(r.code).toBe(1);
    expect(r.output).toContain("bound to pg-app");
    expect(r.output).toContain("skiff unbind-service pg-app notes-db");
  });

  test("unbind: the old credentials stop working; a restart (no restage) drops them from the env", async () => {
    const r = await cli("unbind-service", "pg-app", "notes-db");
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain("skiff restart pg-app");
    expect(await tryQuery(notes.uri!)).not.toBe("ok");
    const droplet = (await api("GET", "/v3/apps?names=pg-app")).resources[0].droplet_guid;
    expect((await cli("restart", "pg-app")).code).toBe(0);
    // rolling: until the old instance is stopped the router may still reach it (its /read now fails: 500)
    await eventually(async () => {
      for (let i = 0; i < 3; i++) {
        const res = await viaRouter("/env");
        if (res.status !== 200 || JSON.parse(res.body).postgres !== false) return undefined;
      }
      return true;
    }, 60_000, "only restarted instances, without the binding");
    expect((await viaRouter("/read")).status).toBe(503);
    expect((await api("GET", "/v3/apps?names=pg-app")).resources[0].droplet_guid).toBe(droplet);
  }, 90_000);

  test("delete-service deprovisions: the database and its roles are gone", async () => {
    const r = await cli("delete-service", "notes-db", "-f");
    expect(r.code, r.output).toBe(0);
    expect((await cli("services")).output).toContain("No service instances found.");
    const admin = new SQL({ url: cluster.services!.postgres!.adminUrl, max: 1 });
    try {
      const dbs = await admin`SELECT datname FROM pg_database WHERE datname = ${PostgresProvisioner.databaseName(notes.instance)}`;
      expect(dbs.length).toBe(0);
      const roles = await admin`SELECT rolname FROM pg_roles WHERE rolname LIKE 'skiff%'`;
      expect(roles.map((x: { rolname: string }) => x.rolname)).toEqual([]);
    } finally {
      await admin.close({ timeout: 1 });
    }
    const events = JSON.stringify(await api("GET", "/v3/events?per_page=200"));
    expect(events).toContain("audit.service_instance.delete");
    expect(events).not.toContain(new URL(notes.uri!).password);
  }, 60_000);
});
