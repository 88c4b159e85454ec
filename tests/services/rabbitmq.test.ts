// Issue 8: RabbitMQ through the broker against a real rabbitmq-server (Debian 3.10): a vhost per instance,
// a user per binding confined to it. Data goes through the management API's publish/get (no AMQP client
// is installed), authenticated as the binding's user; unbind is checked on a raw AMQP connection; a provision
// or bind that fails half-way leaves nothing (orphan mitigation).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RabbitmqProvisioner } from "../../controller/broker/provisioners/rabbitmq.ts";
import { rabbitmqServerScript, startRabbitmq, type RunningRabbitmq } from "../../controller/broker/servers/rabbitmq-server.ts";
import type { BindRequest, ProvisionRequest } from "../../controller/broker/types.ts";
import { amqpOpen } from "./amqp-handshake.ts";
import { brokerFor, rejection, tempDir } from "./harness.ts";

const installed = rabbitmqServerScript() !== undefined;
if (!installed) throw new Error("rabbitmq-server is not installed: run `node scripts/setup.mjs`");
let server: RunningRabbitmq;
const dir = tempDir("rabbitmq");

beforeAll(async () => {
  if (installed) server = await startRabbitmq({ dir: dir.path, durable: false });
}, 90_000);

afterAll(async () => {
  await server?.stop();
  dir.remove();
}, 30_000);

/** Calls the management API as a binding's user, from its http_api_uri. */
async function asUser(httpApiUri: string, method: string, path: string, body?: unknown) {
  const u = new URL(httpApiUri);
  const auth = `Basic ${btoa(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`)}`;
  const res = await fetch(`${u.protocol}//${u.host}/api/${path}`, {
    method,
    headers: { authorization: auth, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: res.headers.get("content-type")?.includes("json") ? await res.json() : await res.text() };
}

describe("rabbitmq provisioner", () => {
  test("provision, bind, publish and get on its own vhost only, unbind, deprovision", async () => {
    const { client, ids, close } = brokerFor([new RabbitmqProvisioner({ managementUrl: server.managementUrl, amqp: { port: server.port } })]);
    try {
      const a = { instanceId: "rmq-tenant-a", ...ids };
      const b = { instanceId: "rmq-tenant-b", ...ids };
      await client.provision(a);
      await client.provision(b);
      const { credentials: ca } = await client.bind({ ...a, bindingId: "rmq-ba" });
      const { credentials: cb } = await client.bind({ ...b, bindingId: "rmq-bb" });
      const vhA = RabbitmqProvisioner.vhost(a.instanceId);
      expect(ca.uri).toBe(`amqp://${ca.username}:${ca.password}@127.0.0.1:${server.port}/${vhA}`);
      const api = ca.http_api_uri as string;

      expect((await asUser(api, "PUT", `queues/${vhA}/jobs`, { durable: false })).status).toBeOneOf([201, 204]);
      const pub = await asUser(api, "POST", `exchanges/${vhA}/amq.default/publish`, { properties: {}, routing_key: "jobs", payload: "hello", payload_encoding: "string" });
      expect(pub.body).toEqual({ routed: true });
      const got = await asUser(api, "POST", `queues/${vhA}/jobs/get`, { count: 1, ackmode: "ack_requeue_false", encoding: "auto" });
      expect(got.body[0].payload).toBe("hello");

      // B's user cannot touch A's vhost.
      const cross = await asUser(cb.http_api_uri as string, "PUT", `queues/${vhA}/intruder`, { durable: false });
      expect(cross.status).toBeGreaterThanOrEqual(400);

      // On the wire (AMQP 0-9-1): A's URI opens its vhost; B's credentials cannot open A's.
      const live = await amqpOpen(ca.uri);
      expect(live.outcome, live.detail).toBe("open");
      const crossAmqp = await amqpOpen(`amqp://${cb.username}:${cb.password}@127.0.0.1:${server.port}/${vhA}`);
      expect(crossAmqp.outcome).toBe("refused");
      expect(crossAmqp.detail).toMatch(/530|NOT_ALLOWED|access/i);
      crossAmqp.socket.destroy();

      // Unbind (issue 8): the open AMQP connection is closed by the server and a new login is refused.
      await client.unbind({ ...a, bindingId: "rmq-ba" });
      const why = await Promise.race([live.closed, Bun.sleep(10_000).then(() => "still open 10 s after unbind")]);
      expect(why).not.toBe("still open 10 s after unbind");
      live.socket.destroy();
      const after = await amqpOpen(ca.uri);
      expect(after.outcome).toBe("refused");
      after.socket.destroy();
      expect((await asUser(api, "GET", "whoami")).status).toBe(401);

      await client.deprovision(a);
      await client.deprovision(b);
      const admin = new URL(server.managementUrl);
      const adminAuth = `Basic ${btoa(`${admin.username}:${decodeURIComponent(admin.password)}`)}`;
      const vhosts = (await (await fetch(`http://127.0.0.1:${server.managementPort}/api/vhosts`, { headers: { authorization: adminAuth } })).json()) as { name: string }[];
      expect(vhosts.map((v) => v.name)).not.toContain(vhA);
      expect((await asUser(cb.http_api_uri as string, "GET", "whoami")).status).toBe(401);
    } finally {
      await close();
    }
  }, 60_000);

  test("a provision or a bind that fails after creating its vhost or user leaves no orphan (issue 8)", async () => {
    class HalfBroken extends RabbitmqProvisioner {
      breakProvision = false;
      breakBind = false;
      override async provision(req: ProvisionRequest) {
        await super.provision(req);
        if (this.breakProvision) throw new Error("node down (simulated) after creating the vhost");
      }
      override async bind(req: BindRequest) {
        const made = await super.bind(req);
        if (this.breakBind) throw new Error("connection lost (simulated) after creating the user");
        return made;
      }
    }
    const p = new HalfBroken({ managementUrl: server.managementUrl, amqp: { port: server.port } });
    const { client, ids, close } = brokerFor([p], {}, 5000);
    const admin = new URL(server.managementUrl);
    const adminGet = async (path: string) =>
      (await fetch(`http://127.0.0.1:${server.managementPort}/api/${path}`, { headers: { authorization: `Basic ${btoa(`${admin.username}:${decodeURIComponent(admin.password)}`)}` } })).status;
    try {
      const inst = { instanceId: "rmq-orphan", ...ids };
      p.breakProvision = true;
      const err = await rejection(client.provision(inst));
      expect(err?.message).toContain("node down");
      expect((err as { orphan?: string }).orphan).toBe("cleaned");
      expect(await adminGet(`vhosts/${RabbitmqProvisioner.vhost(inst.instanceId)}`)).toBe(404);

      p.breakProvision = false;
      await client.provision(inst);
      p.breakBind = true;
      const bindErr = await rejection(client.bind({ ...inst, bindingId: "rmq-orphan-b" }));
      expect(bindErr?.message).toContain("connection lost");
      expect((bindErr as { orphan?: string }).orphan).toBe("cleaned");
      expect(await adminGet(`users/${RabbitmqProvisioner.userName("rmq-orphan-b")}`)).toBe(404);
      await client.deprovision(inst);
      expect(await adminGet(`vhosts/${RabbitmqProvisioner.vhost(inst.instanceId)}`)).toBe(404);
    } finally {
      await close();
    }
  }, 60_000);

  test("plans (issue 22, OSB 2.17 § Updating a Service Instance): shared refuses the vhost's 21st AMQP connection and 51st queue; PATCH to shared-large admits both, the messages kept", async () => {
    const provisioner = new RabbitmqProvisioner({ managementUrl: server.managementUrl, amqp: { port: server.port } });
    const [shared, large] = provisioner.service.plans;
    expect(shared!.metadata?.limits).toEqual({ connections_per_instance: 20, queues_per_instance: 50 });
    expect(large!.metadata?.limits).toEqual({ connections_per_instance: 100, queues_per_instance: 500 });
    const { client, ids, close } = brokerFor([provisioner]);
    const sockets: { destroy(): void }[] = [];
    try {
      const inst = { instanceId: "rmq-plan", ...ids };
      await client.provision(inst);
      const { credentials } = await client.bind({ ...inst, bindingId: "rmq-plan-b" });
      const vh = RabbitmqProvisioner.vhost(inst.instanceId);
      const api = credentials.http_api_uri as string;
      expect((await asUser(api, "PUT", `queues/${vh}/q0`, { durable: false })).status).toBeOneOf([201, 204]);
      await asUser(api, "POST", `exchanges/${vh}/amq.default/publish`, { properties: {}, routing_key: "q0", payload: "sent on shared", payload_encoding: "string" });
      for (let i = 1; i < 50; i++) expect((await asUser(api, "PUT", `queues/${vh}/q${i}`, { durable: false })).status).toBeOneOf([201, 204]);
      const q51 = await asUser(api, "PUT", `queues/${vh}/q50`, { durable: false });
      expect(q51.status).toBeGreaterThanOrEqual(400);
      expect(JSON.stringify(q51.body)).toMatch(/queue limit|max-queues|limit/i);
      for (let i = 0; i < 20; i++) {
        const c = await amqpOpen(credentials.uri);
        sockets.push(c.socket);
        expect(c.outcome, c.detail).toBe("open");
      }
      const c21 = await amqpOpen(credentials.uri);
      sockets.push(c21.socket);
      expect(c21.outcome).toBe("refused");
      expect(c21.detail).toMatch(/connection limit/i);

      await client.update({ ...inst, planId: large!.id, previousPlanId: shared!.id });
      const again = await amqpOpen(credentials.uri);
      sockets.push(again.socket);
      expect(again.outcome, again.detail).toBe("open");
      expect((await asUser(api, "PUT", `queues/${vh}/q50`, { durable: false })).status).toBeOneOf([201, 204]);
      const got = await asUser(api, "POST", `queues/${vh}/q0/get`, { count: 1, ackmode: "ack_requeue_false", encoding: "auto" });
      expect(got.body[0].payload).toBe("sent on shared");
      for (const s of sockets.splice(0)) s.destroy();
      await client.unbind({ ...inst, planId: large!.id, bindingId: "rmq-plan-b" });
      await client.deprovision({ ...inst, planId: large!.id });
    } finally {
      for (const s of sockets) s.destroy();
      await close();
    }
  }, 60_000);
});
