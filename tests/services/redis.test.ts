// Issue 8: Redis through the broker against a real redis-server: ACL users confined to their instance's
// key prefix; unbind deletes the user (and its connections); deprovision removes keys and users; a
// provision or bind that fails half-way leaves nothing (orphan mitigation).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RedisClient } from "bun";
import { RedisProvisioner } from "../../controller/broker/provisioners/redis.ts";
import { startRedis, type RunningRedis } from "../../controller/broker/servers/redis-server.ts";
import type { BindRequest, ProvisionRequest } from "../../controller/broker/types.ts";
import { memoryLogger } from "../../bus/log.ts";
import { BrokerClient } from "../../controller/broker/broker-client.ts";
import { createBroker } from "../../controller/broker/broker.ts";
import { MemoryBrokerStore } from "../../controller/broker/store.ts";
import { brokerFor, installed, place, rejection, tempDir } from "./harness.ts";

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

  test("a tenant cannot leave database 0, see other tenants' names or counts, or touch their functions and scripts (issue 8)", async () => {
    const { client, ids, close } = brokerFor([new RedisProvisioner({ adminUrl: server.adminUrl })]);
    const apps: RedisClient[] = [];
    try {
      const a = { instanceId: "iso-tenant-a", ...ids };
      const b = { instanceId: "iso-tenant-b", ...ids };
      await client.provision(a);
      await client.provision(b);
      const { credentials: ca } = await client.bind({ ...a, bindingId: "iso-ba" });
      const { credentials: cb } = await client.bind({ ...b, bindingId: "iso-bb" });
      const appA = await connect(ca.uri);
      const appB = await connect(cb.uri);
      apps.push(appA, appB);
      await appA.set("iso-tenant-a:k", "v");
      await appA.send("SUBSCRIBE", ["iso-tenant-a:events"]).catch(() => undefined);
      // The admin loads a library, as an operator might: no tenant may list, flush or delete it.
      await admin.send("FUNCTION", ["LOAD", "REPLACE", "#!lua name=opslib\nredis.register_function('ops_get', function(keys) return redis.call('GET', keys[1]) end)"]);
      const refused = async (cmd: string, args: string[]) => (await rejection(appB.send(cmd, args)))?.message ?? `${cmd} ${args.join(" ")} was allowed`;
      const noperm = /NOPERM|no permissions/i;
      // Other databases: the data would outlive deprovision, which sweeps the prefix.
      expect(await refused("SELECT", ["3"])).toMatch(noperm);
      expect(await refused("MOVE", ["iso-tenant-b:k", "3"])).toMatch(noperm);
      expect(await refused("COPY", ["iso-tenant-b:k", "iso-tenant-b:k2", "DB", "3"])).toMatch(noperm);
      expect(await refused("SWAPDB", ["0", "3"])).toMatch(noperm);
      expect(await refused("EVAL", ["redis.call('SELECT', 3) return 1", "0"])).toMatch(/NOPERM|no permissions|can't|cannot/i);
      // Functions are server-wide: listing, flushing, deleting, loading.
      expect(await refused("FUNCTION", ["LIST"])).toMatch(noperm);
      expect(await refused("FUNCTION", ["FLUSH"])).toMatch(noperm);
      expect(await refused("FUNCTION", ["DELETE", "opslib"])).toMatch(noperm);
      expect(await refused("FUNCTION", ["LOAD", "#!lua name=b\nredis.register_function('bf', function() return 1 end)"])).toMatch(noperm);
      expect(((await admin.send("FUNCTION", ["LIST"])) as unknown[]).length).toBe(1);
      // Names and counts of other tenants' channels and keys.
      expect(await refused("PUBSUB", ["CHANNELS"])).toMatch(noperm);
      expect(await refused("PUBSUB", ["NUMSUB", "iso-tenant-a:events"])).toMatch(noperm);
      expect(await refused("PUBSUB", ["NUMPAT"])).toMatch(noperm);
      expect(await refused("PUBSUB", ["SHARDCHANNELS"])).toMatch(noperm);
      expect(await refused("DBSIZE", [])).toMatch(noperm);
      expect(await refused("INFO", ["keyspace"])).toMatch(noperm);
      expect(await refused("MEMORY", ["STATS"])).toMatch(noperm);
      expect(await refused("CLIENT", ["TRACKING", "on", "BCAST", "PREFIX", "iso-tenant-a:"])).toMatch(noperm);
      // The shared script cache and other tenants' running scripts.
      expect(await refused("SCRIPT", ["FLUSH"])).toMatch(noperm);
      expect(await refused("SCRIPT", ["KILL"])).toMatch(noperm);
      // What stays allowed on its own keys.
      await appB.set("iso-tenant-b:k", "1");
      expect(await appB.send("MEMORY", ["USAGE", "iso-tenant-b:k"])).toBeGreaterThan(0);
      expect(await appB.send("EVAL", ["return redis.call('INCR', KEYS[1])", "1", "iso-tenant-b:k"])).toBe(2);
      expect(await appB.send("PUBLISH", ["iso-tenant-b:events", "x"])).toBe(0);
      await admin.send("FUNCTION", ["DELETE", "opslib"]);
      await client.deprovision(a);
      await client.deprovision(b);
    } finally {
      for (const c of apps) c.close();
      await close();
    }
  }, 30_000);

  test("users made by an older broker (SELECT allowed) are tightened, and deprovision sweeps every database (issue 8)", async () => {
    const provisioner = new RedisProvisioner({ adminUrl: server.adminUrl });
    const instanceId = "legacy-tenant";
    const user = RedisProvisioner.userName(instanceId, "legacy-b");
    // The rules bindings got before the audit: no SELECT, FUNCTION or PUBSUB restriction.
    await admin.send("ACL", ["SETUSER", user, "reset", "on", ">legacy-pw", `~${instanceId}:*`, `&${instanceId}:*`, "+@all", "-@admin", "-@dangerous", "-keys", "-scan", "-randomkey", "-swapdb", "-flushall", "-flushdb"]);
    const legacy = await connect(`redis://${user}:legacy-pw@127.0.0.1:${server.port}`);
    const other = await connect(`redis://${user}:legacy-pw@127.0.0.1:${server.port}`);
    try {
      await legacy.send("SELECT", ["3"]);
      await legacy.set(`${instanceId}:in-db3`, "left behind?");
      await admin.send("SELECT", ["5"]).then(() => admin.set(`unrelated:k`, "keep")).finally(() => admin.send("SELECT", ["0"]));
      // Any operation of the provisioner first brings old users up to today's rules.
      await provisioner.provision({ instanceId: "someone-else", plan: provisioner.service.plans[0]!, params: {}, context: {} });
      expect((await rejection(other.send("SELECT", ["3"])))?.message).toMatch(/NOPERM|no permissions/i);
      expect((await rejection(other.send("FUNCTION", ["LIST"])))?.message).toMatch(/NOPERM|no permissions/i);
      expect(await other.get(`${instanceId}:x`)).toBeNull();
      // Deprovision removes the key the old user wrote in database 3, and nothing of anyone else.
      await provisioner.deprovision({ instanceId, plan: provisioner.service.plans[0]! });
      const db3 = new RedisClient(server.adminUrl, { autoReconnect: false });
      try {
        await db3.send("SELECT", ["3"]);
        expect(await db3.exists(`${instanceId}:in-db3`)).toBe(false);
        await db3.send("SELECT", ["5"]);
        expect(await db3.get("unrelated:k")).toBe("keep");
        await db3.del("unrelated:k");
      } finally {
        db3.close();
      }
      expect(((await admin.send("ACL", ["USERS"])) as string[]).includes(user)).toBe(false);
    } finally {
      legacy.close();
      other.close();
      await provisioner.close();
    }
  }, 30_000);

  test("a provision or a bind that fails after writing its keys or user leaves no orphan (issue 8)", async () => {
    class HalfBroken extends RedisProvisioner {
      breakProvision = false;
      breakBind = false;
      override async provision(req: ProvisionRequest) {
        await super.provision(req);
        // a provisioner that seeds data under the prefix, then fails
        await admin.set(`${RedisProvisioner.keyPrefix(req.instanceId)}seed`, "x");
        if (this.breakProvision) throw new Error("out of memory (simulated) after seeding");
      }
      override async bind(req: BindRequest) {
        const made = await super.bind(req);
        if (this.breakBind) throw new Error("connection lost (simulated) after ACL SETUSER");
        return made;
      }
    }
    const p = new HalfBroken({ adminUrl: server.adminUrl });
    const { client, ids, close } = brokerFor([p], {}, 5000);
    try {
      const inst = { instanceId: "redis-orphan", ...ids };
      p.breakProvision = true;
      const err = await rejection(client.provision(inst));
      expect(err?.message).toContain("out of memory");
      expect((err as { orphan?: string }).orphan).toBe("cleaned");
      expect(await admin.exists("redis-orphan:seed")).toBe(false);

      p.breakProvision = false;
      await client.provision(inst);
      p.breakBind = true;
      const bindErr = await rejection(client.bind({ ...inst, bindingId: "redis-orphan-b" }));
      expect(bindErr?.message).toContain("connection lost");
      expect((bindErr as { orphan?: string }).orphan).toBe("cleaned");
      expect(((await admin.send("ACL", ["USERS"])) as string[]).includes(RedisProvisioner.userName(inst.instanceId, "redis-orphan-b"))).toBe(false);
      await client.deprovision(inst);
      expect(await admin.exists("redis-orphan:seed")).toBe(false);
    } finally {
      await close();
    }
  }, 30_000);

  test("plans (issue 22, OSB 2.17 § Updating a Service Instance): shared disconnects an instance's 21st client within a sweep; PATCH to shared-large lets it stay, the keys kept; after a broker restart the cap still holds", async () => {
    const sweepMs = 100;
    const store = new MemoryBrokerStore();
    const brokerOn = (p: RedisProvisioner) => {
      const app = createBroker({ provisioners: [p], credentials: { username: "broker", password: "secret" }, store, syncWindowMs: 0, log: memoryLogger() });
      return new BrokerClient({ url: "http://broker", username: "broker", password: "secret", pollIntervalMs: 20, fetch: (req) => app.handle(req) });
    };
    const provisioner = new RedisProvisioner({ adminUrl: server.adminUrl, clientCapIntervalMs: sweepMs });
    const [shared, large] = provisioner.service.plans;
    expect(shared!.metadata?.limits).toEqual({ clients_per_instance: 20 });
    expect(large!.metadata?.limits).toEqual({ clients_per_instance: 100 });
    let client = brokerOn(provisioner);
    const clients: RedisClient[] = [];
    const open = async (uri: string) => {
      const c = await connect(uri);
      clients.push(c);
      return c;
    };
    const alive = async (c: RedisClient) => (await rejection(c.send("PING", []))) === undefined;
    const disconnected = async (c: RedisClient) => {
      for (const deadline = Date.now() + 20 * sweepMs; Date.now() < deadline; await Bun.sleep(sweepMs / 2)) if (!(await alive(c))) return true;
      return false;
    };
    const restarted = new RedisProvisioner({ adminUrl: server.adminUrl, clientCapIntervalMs: sweepMs });
    try {
      const inst = { instanceId: "redis-plan", serviceId: provisioner.service.id, planId: shared!.id, ...place };
      await client.provision(inst);
      // two bindings of one instance share its cap
      const { credentials: c1 } = await client.bind({ ...inst, bindingId: "redis-plan-b1" });
      const { credentials: c2 } = await client.bind({ ...inst, bindingId: "redis-plan-b2" });
      const first = await open(c1.uri);
      await first.set("redis-plan:k", "written on shared");
      for (let i = 1; i < 10; i++) await open(c1.uri);
      for (let i = 0; i < 10; i++) await open(c2.uri);
      await Bun.sleep(3 * sweepMs);
      for (const c of clients) expect(await alive(c)).toBe(true);
      // the 21st: accepted by Redis, then disconnected by the next sweep; the first 20 keep working
      expect(await disconnected(await open(c2.uri))).toBe(true);
      for (const c of clients.slice(0, 20)) expect(await alive(c)).toBe(true);

      await client.update({ ...inst, planId: large!.id, previousPlanId: shared!.id });
      const again = await open(c2.uri);
      await Bun.sleep(4 * sweepMs);
      expect(await alive(again)).toBe(true);
      expect(await again.get("redis-plan:k")).toBe("written on shared");

      // The caps live in the broker's process: a restarted broker tells its new provisioner (resume).
      await provisioner.close();
      client = brokerOn(restarted);
      expect((await client.fetchInstance({ instanceId: inst.instanceId })).plan_id).toBe(large!.id);
      while (clients.filter((c) => c.connected).length < 100) await open(c1.uri);
      expect(await disconnected(await open(c1.uri))).toBe(true);
      expect(await alive(first)).toBe(true);

      for (const c of clients) c.close();
      await client.unbind({ ...inst, planId: large!.id, bindingId: "redis-plan-b1" });
      await client.unbind({ ...inst, planId: large!.id, bindingId: "redis-plan-b2" });
      await client.deprovision({ ...inst, planId: large!.id });
    } finally {
      for (const c of clients) c.close();
      await provisioner.close();
      await restarted.close();
    }
  }, 30_000);
});
