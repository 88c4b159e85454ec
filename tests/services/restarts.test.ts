// A durable service server keeps its tenants across a restart on other ports (what `npm start` does
// each time it finds a preferred port busy): RabbitMQ's database was named after its port, so every start
// began empty; Redis rewrote its ACL file, dropping every tenant user, when its admin-password file was gone.

import { afterAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { RedisProvisioner } from "../../controller/broker/provisioners/redis.ts";
import { startRabbitmq } from "../../controller/broker/servers/rabbitmq-server.ts";
import { startRedis } from "../../controller/broker/servers/redis-server.ts";
import { brokerFor, installed, tempDir } from "./harness.ts";

installed("redis-server");
installed("/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server");
const dirs = [tempDir("restart-rabbitmq"), tempDir("restart-redis")];
afterAll(() => dirs.forEach((d) => d.remove()));

describe("service servers across restarts", () => {
  test("RabbitMQ restarted on other ports finds its vhosts and its admin again", async () => {
    const dir = dirs[0]!.path;
    const auth = (s: { adminUser: string; adminPassword: string }) => ({ authorization: `Basic ${btoa(`${s.adminUser}:${s.adminPassword}`)}` });
    const first = await startRabbitmq({ dir, durable: true });
    try {
      const put = await fetch(`http://127.0.0.1:${first.managementPort}/api/vhosts/tenant-kept`, { method: "PUT", headers: auth(first) });
      expect(put.status).toBe(201);
    } finally {
      await first.stop();
    }
    const second = await startRabbitmq({ dir, durable: true });
    try {
      expect(second.port).not.toBe(first.port);
      expect(second.adminPassword).toBe(first.adminPassword);
      const got = await fetch(`http://127.0.0.1:${second.managementPort}/api/vhosts/tenant-kept`, { headers: auth(second) });
      expect(got.status).toBe(200);
    } finally {
      await second.stop();
    }
  }, 120_000);

  test("Redis whose admin-password file was lost keeps its tenant users under a new admin password", async () => {
    const dir = dirs[1]!.path;
    const first = await startRedis({ dir, durable: true });
    let uri: string;
    try {
      const { client, ids, close } = brokerFor([new RedisProvisioner({ adminUrl: first.adminUrl })]);
      const instance = { instanceId: "kept-tenant", ...ids };
      await client.provision(instance);
      uri = String((await client.bind({ ...instance, bindingId: "kept-binding" })).credentials.uri);
      close();
    } finally {
      await first.stop();
    }
    rmSync(join(dir, "admin-password"));
    const second = await startRedis({ dir, durable: true });
    try {
      expect(second.adminPassword).not.toBe(first.adminPassword);
      const tenant = new RedisClient(uri!.replace(/:\d+$/, `:${second.port}`).replace(/:\d+\//, `:${second.port}/`), { autoReconnect: false, connectionTimeout: 3000 });
      try {
        expect(await tenant.send("PING", [])).toBe("PONG");
      } finally {
        tenant.close();
      }
    } finally {
      await second.stop();
    }
  }, 60_000);
});
