// Issue 8: the broker as its own process (controller/broker/main.ts) over real HTTP, with its default
// SQLite store: state survives a broker restart, and Redis bindings survive a redis-server restart.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { BrokerClient } from "../../controller/broker/broker-client.ts";
import { startRedis, type RunningRedis } from "../../controller/broker/servers/redis-server.ts";
import { freePort } from "../support/ports.ts";
import { startProcess, stopAllProcesses, type TestProcess } from "../support/processes.ts";
import { installed, tempDir } from "./harness.ts";

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

async function startBroker(): Promise<TestProcess> {
  const p = startProcess("broker", "./node_modules/.bin/bun", ["controller/broker/main.ts"], {
    env: {
      SKIFF_BROKER_PORT: String(port),
      SKIFF_BROKER_USER: "platform",
      SKIFF_BROKER_PASS: "s3cret",
      SKIFF_DATA_DIR: `${dir.path}/data`,
      SKIFF_SERVICES_REDIS_URL: redis.adminUrl,
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
    const ids = { serviceId: services[0]!.id, planId: services[0]!.plans[0]!.id };
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
});
