// Issue 8: the one-machine cluster's service servers (servers/index.ts): started together, pointed at by
// SKIFF_SERVICES_* variables, and restarted on the same directories with their data and admin passwords.

import { afterAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { provisionersFromEnv } from "../../controller/broker/provisioners/from-env.ts";
import { startLocalServices, type LocalServices } from "../../controller/broker/servers/index.ts";
import { brokerFor, installed, place, tempDir } from "./harness.ts";

const available = installed("redis-server") && installed("mariadbd", "mysqld") && installed("postgres", "initdb");
const dir = tempDir("local-services");
let services: LocalServices | undefined;

afterAll(async () => {
  await services?.stop();
  dir.remove();
});

describe("startLocalServices", () => {
  test("starts postgres, mysql and redis; provisions through env; keeps data across a restart", async () => {
    services = await startLocalServices(dir.path, ["postgres", "mysql", "redis"], { durable: false });
    const env = { ...services.env };
    expect(Object.keys(env).sort()).toEqual(["SKIFF_SERVICES_MYSQL_URL", "SKIFF_SERVICES_POSTGRES_URL", "SKIFF_SERVICES_REDIS_URL"]);
    const provisioners = provisionersFromEnv(env);
    const { client, close } = brokerFor(provisioners);
    const { services: catalog } = await client.catalog();
    expect(catalog.map((s) => s.name)).toEqual(["postgresql", "mysql", "redis"]);
    const pg = catalog[0]!;
    const inst = { instanceId: "kept-across-restart", serviceId: pg.id, planId: pg.plans[0]!.id, ...place };
    await client.provision(inst);
    const { credentials } = await client.bind({ ...inst, bindingId: "kept-binding" });
    const app = new SQL({ url: credentials.uri, max: 1 });
    await app`CREATE TABLE kept (v text)`;
    await app`INSERT INTO kept VALUES ('still here')`;
    await app.close({ timeout: 1 });
    await close();

    await services.stop();
    services = await startLocalServices(dir.path, ["postgres", "mysql", "redis"], { durable: false });
    // Same admin passwords (kept in each dir); new ports unless given.
    for (const key of Object.keys(env)) {
      const before = new URL(env[key]!);
      const after = new URL(services.env[key]!);
      expect(after.password).toBe(before.password);
    }
    const pgUrl = new URL(credentials.uri);
    pgUrl.port = String(services.postgres!.port);
    const again = new SQL({ url: pgUrl.toString(), max: 1 });
    expect((await again`SELECT v FROM kept`)[0].v).toBe("still here");
    await again.close({ timeout: 1 });
    const mysqlAdmin = new SQL({ url: services.env.SKIFF_SERVICES_MYSQL_URL!, adapter: "mysql", max: 1 });
    expect((await mysqlAdmin`SELECT 1 AS one`)[0].one).toBe(1);
    await mysqlAdmin.close({ timeout: 1 });
  }, 90_000);
});
