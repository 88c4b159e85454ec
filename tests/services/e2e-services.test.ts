// Issue 8, end to end on real processes and real servers: the one-machine cluster with `services` (all four
// servers + the broker registered as "skiff"), driven by the CLI. PostgreSQL: create-service → push an app
// whose manifest binds it → the app finds its credentials in VCAP_SERVICES and writes and reads rows through
// the router → one tenant's credentials cannot reach another's database → delete-service is refused while
// bound → unbind, and the old credentials stop working; a restart (no restage) drops them from the app's
// env → delete-service removes the database and its roles. MariaDB, Redis and RabbitMQ: a second app bound
// to all three reads VCAP_SERVICES, DATABASE_URL, REDIS_URL and AMQP_URL and writes and reads through each;
// unbind stops each one's old credentials (and the app's open connections); delete-service removes them.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient, SQL } from "bun";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startLocalCluster, type Cluster } from "../../scripts/local-cluster.ts";
import { PostgresProvisioner } from "../../controller/broker/provisioners/postgres.ts";
import { eventually } from "../support/ports.ts";
import { MysqlProvisioner } from "../../controller/broker/provisioners/mysql.ts";
import { RabbitmqProvisioner } from "../../controller/broker/provisioners/rabbitmq.ts";
import { createBroker } from "../../controller/broker/broker.ts";
import { MemoryProvisioner } from "../../controller/broker/memory-provisioner.ts";
import { MemoryBrokerStore } from "../../controller/broker/store.ts";
import { memoryLogger } from "../../bus/log.ts";
import { amqpOpen } from "./amqp-handshake.ts";
import { installed } from "./harness.ts";

installed("postgres", "/usr/lib/postgresql/15/bin/postgres", "initdb");
installed("mariadbd", "mysqld");
installed("redis-server");
installed("/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server");

let cluster: Cluster;
let dataDir: string;
let token: string;
const fixture = join(import.meta.dir, "fixtures/pg-app");
const svcFixture = join(import.meta.dir, "fixtures/svc-app");

async function viaRouter(path: string, app = "pg-app"): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${cluster.routerPort}${path}`, { headers: { host: `${app}.${cluster.domain}` } });
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

/** Connects with the given URI (PostgreSQL, or MySQL/MariaDB) and runs a query; the error message when it cannot. */
async function tryQuery(uri: string, query = "SELECT 1 AS ok"): Promise<string> {
  const adapter = uri.startsWith("mysql") ? { adapter: "mysql" as const } : {};
  const sql = new SQL({ url: uri, ...adapter, max: 1, connectionTimeout: 5, idleTimeout: 1 });
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
  const t0 = performance.now();
  cluster = await startLocalCluster({ dataDir, services: true, servicesDurable: false, echo: !!process.env.SKIFF_TEST_ECHO });
  if (process.env.SKIFF_TEST_ECHO) console.log(`cluster with four servers up in ${Math.round(performance.now() - t0)} ms`);
  token = (await api("POST", "/v3/tokens", { username: "admin", password: cluster.adminPassword })).access_token;
  expect((await cli("login", "-a", cluster.controllerUrl, "-u", "admin", "-p", cluster.adminPassword)).code).toBe(0);
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

describe("services end to end (issue 8)", () => {
  let notes: { instance: string; binding?: string; uri?: string };

  test("the cluster registered its broker: the marketplace offers the four services", async () => {
    const brokers = await cli("service-brokers");
    expect(brokers.output).toContain("skiff");
    const m = await cli("marketplace");
    expect(m.code, m.output).toBe(0);
    expect(m.output).toMatch(/postgresql\s+shared/);
    const j = JSON.parse((await cli("marketplace", "--json")).output);
    expect(j.map((o: any) => o.name)).toEqual(["mysql", "postgresql", "rabbitmq", "redis"]);
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

  test("update-service -p shared-large (issue 22): the bound app's role may now hold 40 connections instead of 10; its rows and the app are untouched", async () => {
    const plans = await cli("marketplace", "-e", "postgresql");
    expect(plans.output).toMatch(/shared\s+A database on a shared PostgreSQL server; at most 10 connections per binding\s+free/);
    expect(plans.output).toMatch(/shared-large\s+A database on a shared PostgreSQL server; at most 40 connections per binding\s+free/);
    const limitOf = async () => {
      const admin = new SQL({ url: cluster.services!.postgres!.adminUrl, max: 1 });
      try {
        return (await admin`SELECT rolconnlimit FROM pg_roles WHERE rolname = ${new URL(notes.uri!).username}`)[0].rolconnlimit as number;
      } finally {
        await admin.close({ timeout: 1 });
      }
    };
    expect(await limitOf()).toBe(10);
    const r = await cli("update-service", "notes-db", "-p", "shared-large");
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain("Service instance notes-db updated: plan shared-large");
    expect((await cli("services")).output).toMatch(/notes-db\s+postgresql\s+shared-large\s+pg-app\s+update succeeded/);
    expect(await limitOf()).toBe(40);
    expect(JSON.parse((await viaRouter("/read")).body)).toEqual(["alpha", "beta"]);
    expect((await cli("update-service", "notes-db", "-p", "no-such-plan")).output).toContain("Plan no-such-plan not found for postgresql");
  }, 60_000);

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

/** AUTH with a redis:// URI's user and password, then EXISTS on a key, over a raw socket: the server's own words. */
async function redisQuery(uri: string, key: string): Promise<string> {
  const u = new URL(uri);
  const resp = (...args: string[]) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;
  const socket = await Bun.connect({
    hostname: u.hostname, port: Number(u.port),
    socket: { data(s, d) { (s.data as { buf: string }).buf += d.toString(); }, open() {}, close() {}, error() {} },
    data: { buf: "" },
  });
  try {
    socket.write(resp("AUTH", decodeURIComponent(u.username), decodeURIComponent(u.password)) + resp("EXISTS", key));
    return await eventually(() => {
      const lines = (socket.data as { buf: string }).buf.split("\r\n").filter(Boolean);
      if (lines[0]?.startsWith("-")) return lines[0];
      return lines.length >= 2 ? (lines[0] === "+OK" && lines[1]!.startsWith(":") ? "ok" : lines.join(" ")) : undefined;
    }, 5000, "redis to answer AUTH");
  } finally {
    socket.end();
  }
}

describe("MariaDB, Redis and RabbitMQ end to end (issue 8)", () => {
  const names = { mysql: "app-mysql", redis: "app-redis", rabbitmq: "app-rabbitmq" } as const;
  type Kind = keyof typeof names;
  const kinds = Object.keys(names) as Kind[];
  const creds = {} as Record<Kind, { instance: string; uri: string; credentials: Record<string, any> }>;

  test("a pushed app finds all three in VCAP_SERVICES and the URL variables, and writes and reads through each", async () => {
    for (const kind of kinds) {
      const r = await cli("create-service", kind, "shared", names[kind]);
      expect(r.code, r.output).toBe(0);
    }
    const push = await cli("push", svcFixture);
    expect(push.code, push.output).toBe(0);
    for (const kind of kinds) expect(push.output).toContain(`Binding ${names[kind]} to svc-app: done`);

    const env = await eventually(async () => {
      const r = await viaRouter("/env", "svc-app");
      return r.status === 200 ? JSON.parse(r.body) : undefined;
    }, 30_000, "svc-app through the router");
    expect(env).toEqual({ services: ["mysql", "rabbitmq", "redis"], database_url_is_mysql: true, redis_url_matches: true, amqp_url_matches: true });
    for (const kind of kinds) {
      expect((await viaRouter(`/${kind}/write?v=alpha`, "svc-app")).body).toBe("written\n");
      expect((await viaRouter(`/${kind}/write?v=beta`, "svc-app")).body).toBe("written\n");
      const read = await viaRouter(`/${kind}/read`, "svc-app");
      expect(read.status, read.body).toBe(200);
      expect(JSON.parse(read.body)).toEqual(["alpha", "beta"]);
    }

    for (const kind of kinds) {
      const { instance, binding } = await credentialsOf(names[kind]);
      const credentials = (await api("GET", `/v3/service_credential_bindings/${binding}/details`)).credentials;
      creds[kind] = { instance, uri: credentials.uri, credentials };
    }
    // What the app got works from outside too, and AMQP_URL opens its vhost on the wire.
    expect(await tryQuery(creds.mysql.uri, "SELECT count(*) FROM notes")).toBe("ok");
    expect(await redisQuery(creds.redis.uri, `${creds.redis.credentials.key_prefix}notes`)).toBe("ok");
    const amqp = await amqpOpen(creds.rabbitmq.uri);
    expect(amqp.outcome, amqp.detail).toBe("open");
    amqp.socket.destroy();
  }, 120_000);

  test("unbind: each service's old credentials stop working, and so do the app's open connections", async () => {
    for (const kind of kinds) {
      const r = await cli("unbind-service", "svc-app", names[kind]);
      expect(r.code, r.output).toBe(0);
    }
    expect(await tryQuery(creds.mysql.uri)).not.toBe("ok");
    expect(await redisQuery(creds.redis.uri, `${creds.redis.credentials.key_prefix}notes`)).toMatch(/^-WRONGPASS/);
    const amqp = await amqpOpen(creds.rabbitmq.uri);
    expect(amqp.outcome).toBe("refused");
    amqp.socket.destroy();
    // The running app still holds the old credentials (no restart yet): every read now fails.
    for (const kind of kinds) {
      await eventually(async () => ((await viaRouter(`/${kind}/read`, "svc-app")).status === 500 ? true : undefined), 15_000, `svc-app's ${kind} read to fail after unbind`);
    }
  }, 60_000);

  test("delete-service removes the database, the keys and the vhost", async () => {
    for (const kind of kinds) {
      const r = await cli("delete-service", names[kind], "-f");
      expect(r.code, r.output).toBe(0);
    }
    const services = cluster.services!;
    const admin = new SQL({ url: services.mysql!.adminUrl, adapter: "mysql", max: 1 });
    try {
      const db = MysqlProvisioner.databaseName(creds.mysql.instance);
      expect(await admin.unsafe(`SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, [db])).toHaveLength(0);
      expect(await admin.unsafe(`SELECT 1 FROM mysql.user WHERE User = ?`, [creds.mysql.credentials.username])).toHaveLength(0);
    } finally {
      await admin.close({ timeout: 1 });
    }
    const redisAdmin = new RedisClient(services.redis!.adminUrl);
    try {
      expect(await redisAdmin.exists(`${creds.redis.credentials.key_prefix}notes`)).toBe(false);
    } finally {
      redisAdmin.close();
    }
    const mgmt = new URL(services.rabbitmq!.managementUrl);
    const res = await fetch(`http://${mgmt.host}/api/vhosts/${RabbitmqProvisioner.vhost(creds.rabbitmq.instance)}`, {
      headers: { authorization: `Basic ${btoa(`${decodeURIComponent(mgmt.username)}:${decodeURIComponent(mgmt.password)}`)}` },
    });
    expect(res.status).toBe(404);
    const events = JSON.stringify(await api("GET", "/v3/events?per_page=500"));
    for (const kind of kinds) expect(events).not.toContain(creds[kind].credentials.password);
  }, 60_000);
});

describe("skiff create-service-broker (issue 8)", () => {
  test("registers a broker on a URL with its credentials, shows its catalog, refuses bad credentials and duplicates, deletes it", async () => {
    const extra = createBroker({
      provisioners: [new MemoryProvisioner({ serviceId: "cli-memory-id" })],
      credentials: { username: "cli-user", password: "cli-broker-secret" },
      store: new MemoryBrokerStore(),
      log: memoryLogger(),
    });
    extra.listen({ port: 0, hostname: "127.0.0.1" });
    const url = `http://127.0.0.1:${extra.server!.port}`;
    try {
      const wrong = await cli("create-service-broker", "extra", "cli-user", "not-the-password", url);
      expect(wrong.code).toBe(1);
      expect(wrong.output).toContain("401");
      expect((await cli("service-brokers")).output).not.toContain("extra");

      const created = await cli("create-service-broker", "extra", "cli-user", "cli-broker-secret", url);
      expect(created.code, created.output).toBe(0);
      expect(created.output).toContain("Created service broker extra offering memory");
      const listed = await cli("service-brokers", "--json");
      expect(JSON.parse(listed.output).map((b: { name: string; url: string }) => [b.name, b.url])).toContainEqual(["extra", url]);
      expect(listed.output).not.toContain("cli-broker-secret");
      expect((await cli("marketplace")).output).toMatch(/^memory\s+.*small/m);

      const again = await cli("create-service-broker", "extra", "cli-user", "cli-broker-secret", url);
      expect(again.code).toBe(1);
      expect(again.output).toContain("already exists");
      const missing = await cli("create-service-broker", "extra2", "cli-user");
      expect(missing.code).toBe(2);

      const deleted = await cli("delete-service-broker", "extra", "-f");
      expect(deleted.code, deleted.output).toBe(0);
      expect((await cli("service-brokers")).output).not.toContain("extra");
      expect(JSON.parse((await cli("marketplace", "--json")).output).map((o: { name: string }) => o.name)).not.toContain("memory");
      const events = JSON.stringify(await api("GET", "/v3/events?per_page=500"));
      expect(events).toContain("audit.service_broker.create");
      expect(events).not.toContain("cli-broker-secret");
    } finally {
      await extra.stop();
    }
  }, 60_000);
});
