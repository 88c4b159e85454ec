// Issue 8: Redis through the broker against a real redis-server: ACL users confined to their instance's
// key prefix; unbind deletes the user (and its connections); deprovision removes keys and users.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { RedisProvisioner } from "../../controller/broker/provisioners/redis.ts";
import { startRedis, type RunningRedis } from "../../controller/broker/servers/redis-server.ts";
import { brokerFor, installed, rejection, tempDir } from "./harness.ts";

const available = installed("redis-server");

let server: RunningRedis;
let admin: RedisClient;
const dir = tempDir("redis");

beforeAll(async () => {
  server = await startRedis({ dir: dir.path });
  admin = new RedisClient(server.adminUrl);
}, 30_000);

afterAll(async () => {
  admin?.close();
  await server?.stop();
  dir.remove();
});

async function connect(uri: string) {
  const c = new RedisClient(uri, { autoReconnect: false, enableOfflineQueue: false, connectionTimeout: 2000 });
  await c.connect();
  return c;
}

describe("redis provisioner", () => {
  test("provision, bind, use own prefix only, unbind, deprovision", async () => {
    const { client, ids, close } = brokerFor([new RedisProvisioner({ adminUrl: server.adminUrl })]);
    try {
      const a = { instanceId: "5d0c9b7e-aaaa-4000-8000-000000000001", ...ids };
      const b = { instanceId: "5d0c9b7e-bbbb-4000-8000-000000000002", ...ids };
      await client.provision(a);
      await client.provision(b);
      const { credentials: ca } = await client.bind({ ...a, bindingId: "r-ba" });
      const { credentials: cb } = await client.bind({ ...b, bindingId: "r-bb" });
      expect(ca).toMatchObject({ hostname: "127.0.0.1", port: server.port, key_prefix: `${a.instanceId}:` });
      expect(ca.uri).toBe(`redis://${ca.username}:${ca.password}@127.0.0.1:${server.port}`);

      const appA = await connect(ca.uri);
      await appA.set(`${a.instanceId}:greeting`, "hello");
      expect(await appA.get(`${a.instanceId}:greeting`)).toBe("hello");

      // Another tenant's prefix, key enumeration and server-wide commands are refused.
      const appB = await connect(cb.uri);
      await appB.set(`${b.instanceId}:mine`, "b");
      expect((await rejection(appB.get(`${a.instanceId}:greeting`)))?.message).toMatch(/NOPERM|permission/i);
      expect((await rejection(appB.set(`${a.instanceId}:greeting`, "overwritten")))?.message).toMatch(/NOPERM|permission/i);
      expect((await rejection(appB.send("KEYS", ["*"])))?.message).toMatch(/NOPERM|permission/i);
      expect((await rejection(appB.send("SCAN", ["0"])))?.message).toMatch(/NOPERM|permission/i);
      expect((await rejection(appB.send("FLUSHALL", [])))?.message).toMatch(/NOPERM|permission/i);
      expect((await rejection(appB.send("CONFIG", ["GET", "requirepass"])))?.message).toMatch(/NOPERM|permission/i);
      expect(await admin.get(`${a.instanceId}:greeting`)).toBe("hello");
      appB.close();

      // Unbind: the open connection is closed and the credentials stop working.
      await client.unbind({ ...a, bindingId: "r-ba" });
      expect(await rejection(appA.get(`${a.instanceId}:greeting`))).toBeInstanceOf(Error);
      appA.close();
      expect(await rejection(connect(ca.uri))).toBeInstanceOf(Error);

      // Deprovision: keys and remaining users of the instance are gone; the other tenant is untouched.
      await client.bind({ ...a, bindingId: "r-ba2" });
      await client.deprovision(a);
      expect(await admin.exists(`${a.instanceId}:greeting`)).toBe(false);
      const users = (await admin.send("ACL", ["USERS"])) as string[];
      expect(users.filter((u) => u === RedisProvisioner.userName(a.instanceId, "r-ba2"))).toHaveLength(0);
      expect(await admin.get(`${b.instanceId}:mine`)).toBe("b");
      await client.deprovision(b);
      expect(await admin.exists(`${b.instanceId}:mine`)).toBe(false);
      expect(await rejection(connect(cb.uri))).toBeInstanceOf(Error);
    } finally {
      await close();
    }
  }, 30_000);
});
