// Issue 8: the broker as its own process (controller/broker/main.ts) over real HTTP, with its default
// SQLite store: state survives a broker restart, and Redis bindings survive a redis-server restart; a
// generated password goes to a 0600 file, and no password or credential ever reaches the log.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { RedisClient } from "bun";
import { BrokerClient } from "../../controller/broker/broker-client.ts";
import { startRedis, type RunningRedis } from "../../controller/broker/servers/redis-server.ts";
import { freePort } from "../support/ports.ts";
import { startProcess, stopAllProcesses, type TestProcess } from "../support/processes.ts";
import { installed, place, rejection, tempDir } from "./harness.ts";

const available = installed("redis-server");

const dir = tempDir("broker-main");
let redis: RunningRedis;
let port: number;

beforeAll(async () => {
  port = await freePort();
  redis = await startRedis({ dir: `${dir.path}/redis` });
}, 30_000);

afterAll(async () => {
  await stopAllProcesses();
  await redis?.stop();
  dir.remove();
});

async function startBroker(env: Record<string, string> = { SKIFF_BROKER_PASS: "s3cret", SKIFF_DATA_DIR: `${dir.path}/data` }): Promise<TestProcess> {
  const p = startProcess("broker", "./node_modules/.bin/bun", ["controller/broker/main.ts"], {
    env: {
      SKIFF_BROKER_PASS: "",
      SKIFF_BROKER_PORT: String(port),
      SKIFF_BROKER_USER: "platform",
      SKIFF_SERVICES_REDIS_URL: redis.adminUrl,
      SKIFF_LOG_LEVEL: "debug",
      ...env,
    },
  });
  await p.waitForLine(/ready/, 20_000);
  return p;
}

describe("broker process", () => {
  test("serves the catalog over HTTP, keeps state across restarts, exits 0 on SIGTERM", async () => {
    let broker = await startBroker();
    const client = new BrokerClient({ url: `http://127.0.0.1:${port}`, username: "platform", password: "s3cret", pollIntervalMs: 20 });
    const { services } = await client.catalog();
    expect(services.map((s) => s.name)).toEqual(["redis"]);
    const ids = { serviceId: services[0]!.id, planId: services[0]!.plans[0]!.id, ...place };
    const inst = { instanceId: "proc-inst", ...ids };
    await client.provision(inst);
    const { credentials } = await client.bind({ ...inst, bindingId: "proc-bind" });

    // Wrong credentials are refused over the wire too.
    const wrong = await fetch(`http://127.0.0.1:${port}/v2/catalog`, { headers: { "x-broker-api-version": "2.17" } });
    expect(wrong.status).toBe(401);

    broker.stop("SIGTERM");
    expect(await broker.exited).toBe(0);
    broker = await startBroker();
    // The same bind again is answered from the SQLite store: 200 with the same credentials.
    expect((await client.bind({ ...inst, bindingId: "proc-bind" })).credentials).toEqual(credentials);

    // Redis restarts: the ACL user was saved, so the app's credentials still work.
    await redis.stop();
    redis = await startRedis({ dir: `${dir.path}/redis`, port: redis.port });
    const app = new RedisClient(credentials.uri, { autoReconnect: false, connectionTimeout: 2000 });
    await app.set(`${credentials.key_prefix}k`, "v");
    expect(await app.get(`${credentials.key_prefix}k`)).toBe("v");
    app.close();

    await client.unbind({ ...inst, bindingId: "proc-bind" });
    await client.deprovision(inst);
    await broker.stop("SIGTERM");
    expect(await broker.exited).toBe(0);
  }, 60_000);

  test("without SKIFF_BROKER_PASS the generated password is written to a 0600 file and the log names the file, not the password (issue 8)", async () => {
    const data = `${dir.path}/generated`;
    let broker = await startBroker({ SKIFF_DATA_DIR: data });
    const line = await broker.waitForLine(/SKIFF_BROKER_PASS is not set/);
    const file = /password_file=(\S+)/.exec(line)?.[1];
    expect(file).toBe(`${data}/broker/broker-password`);
    expect(statSync(file!).mode & 0o777).toBe(0o600);
    const password = readFileSync(file!, "utf8").trim();
    expect(password.length).toBeGreaterThanOrEqual(20);
    expect(broker.output()).not.toContain(password);
    const client = new BrokerClient({ url: `http://127.0.0.1:${port}`, username: "platform", password, pollIntervalMs: 20 });
    expect((await client.catalog()).services).toHaveLength(1);
    await broker.stop("SIGTERM");
    // The next start reuses it: the platform's registration stays valid.
    broker = await startBroker({ SKIFF_DATA_DIR: data });
    expect((await client.catalog()).services).toHaveLength(1);
    expect(broker.output()).not.toContain(password);
    await broker.stop("SIGTERM");
  }, 60_000);

  test("a bind/unbind cycle, a repeated bind and a refused one leave no credential in the broker's log (issue 8)", async () => {
    const broker = await startBroker({ SKIFF_BROKER_PASS: "s3cret-logcheck", SKIFF_DATA_DIR: `${dir.path}/logcheck` });
    const client = new BrokerClient({ url: `http://127.0.0.1:${port}`, username: "platform", password: "s3cret-logcheck", pollIntervalMs: 20 });
    const { services } = await client.catalog();
    const inst = { instanceId: "log-inst", serviceId: services[0]!.id, planId: services[0]!.plans[0]!.id, ...place };
    await client.provision(inst);
    const { credentials } = await client.bind({ ...inst, bindingId: "log-bind", appGuid: "app-1" });
    expect((await client.bind({ ...inst, bindingId: "log-bind", appGuid: "app-1" })).credentials).toEqual(credentials);
    // the same binding id for another app: refused (409), and its credentials are not echoed anywhere
    expect((await rejection(client.bind({ ...inst, bindingId: "log-bind", appGuid: "app-2" })))?.message).toContain("409");
    await client.unbind({ ...inst, bindingId: "log-bind" });
    await client.deprovision(inst);
    await broker.stop("SIGTERM");
    const out = broker.output();
    expect(out).toContain("operation succeeded");
    for (const secret of [credentials.password, encodeURIComponent(credentials.password), credentials.uri, "s3cret-logcheck", redis.adminPassword]) expect(out).not.toContain(secret);
  }, 60_000);
});
