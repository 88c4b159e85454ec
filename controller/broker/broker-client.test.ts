// The platform-side client: polling, timeouts and orphan mitigation, against createBroker with the
// in-memory provisioner (no port: the client's fetch is app.handle).

import { describe, expect, test } from "bun:test";
import { memoryLogger } from "../../bus/log.ts";
import { BrokerClient, type BrokerClientOptions } from "./broker-client.ts";
import { createBroker } from "./broker.ts";
import { BrokerRequestError, BrokerTimeoutError, OperationFailedError } from "./errors.ts";
import { MemoryProvisioner, type MemoryProvisionerOptions } from "./memory-provisioner.ts";
import { MemoryBrokerStore } from "./store.ts";

function setup(p: MemoryProvisionerOptions = {}, syncWindowMs = 0, clientOpts: Partial<BrokerClientOptions> = {}, wrap?: (req: Request, next: (r: Request) => Promise<Response>) => Promise<Response>) {
  const provisioner = new MemoryProvisioner(p);
  const app = createBroker({ provisioners: [provisioner], credentials: { username: "u", password: "p" }, store: new MemoryBrokerStore(), syncWindowMs, log: memoryLogger() });
  const next = (r: Request) => app.handle(r);
  const client = new BrokerClient({
    url: "http://broker/",
    username: "u",
    password: "p",
    pollIntervalMs: 10,
    maxPollIntervalMs: 50,
    operationTimeoutMs: 5000,
    fetch: wrap ? (r) => wrap(r, next) : next,
    log: memoryLogger(),
    ...clientOpts,
  });
  const inst = { instanceId: "i1", serviceId: "memory-service-id", planId: "memory-small-id", organizationGuid: "org-1", spaceGuid: "space-1" };
  return { provisioner, client, inst, broker: app.decorator.serviceBroker };
}

async function caught(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

describe("BrokerClient", () => {
  test("catalog, async provision, async bind (fetching the binding), unbind, deprovision", async () => {
    const { client, inst, provisioner, broker } = setup({ delayMs: 15 });
    expect((await client.catalog()).services[0]!.name).toBe("memory");
    expect(await client.provision(inst)).toEqual({ dashboard_url: undefined });
    expect(provisioner.instances.has("i1")).toBe(true);
    const { credentials } = await client.bind({ ...inst, bindingId: "b1", appGuid: "app" });
    expect(credentials.username).toBe("b1");
    await client.unbind({ ...inst, bindingId: "b1" });
    await client.unbind({ ...inst, bindingId: "b1" }); // 410 counts as done
    await client.deprovision(inst);
    await client.deprovision(inst);
    expect(provisioner.instances.size).toBe(0);
    await broker.idle();
  });

  test("a provision answered with 500 is deprovisioned (orphan mitigation)", async () => {
    const { client, inst, provisioner } = setup({ failProvision: true }, 5000);
    const err = await caught(client.provision(inst));
    expect(err).toBeInstanceOf(BrokerRequestError);
    expect(err.status).toBe(500);
    expect(err.orphan).toBe("cleaned");
    expect(provisioner.calls).toEqual(["provision i1", "deprovision i1"]);
    expect(provisioner.instances.size).toBe(0);
  });

  test("a provision that times out is deprovisioned once the broker is done with it", async () => {
    const { client, inst, provisioner, broker } = setup({ delayMs: 300 }, 10_000, { requestTimeoutMs: 100 });
    const err = await caught(client.provision(inst));
    expect(err).toBeInstanceOf(BrokerTimeoutError);
    expect(err.orphan).toBe("cleaned");
    await broker.idle();
    expect(provisioner.instances.size).toBe(0);
    expect(provisioner.calls).toEqual(["provision i1", "deprovision i1"]);
  });

  test("an async provision that never finishes in time is deprovisioned", async () => {
    const { client, inst, provisioner, broker } = setup({ delayMs: 300 }, 0, { operationTimeoutMs: 100 });
    const err = await caught(client.provision(inst));
    expect(err).toBeInstanceOf(BrokerTimeoutError);
    await broker.idle();
    expect(provisioner.instances.size).toBe(0);
  });

  test("an async provision that fails is deprovisioned", async () => {
    const { client, inst, provisioner } = setup({ failProvision: true }, 0);
    const err = await caught(client.provision(inst));
    expect(err).toBeInstanceOf(OperationFailedError);
    expect(err.message).toContain("broken today");
    expect(err.orphan).toBe("cleaned");
    expect(provisioner.instances.size).toBe(0);
  });

  test("a 4xx refusal created nothing and is not mitigated", async () => {
    const { client, inst, provisioner } = setup({}, 5000);
    const err = await caught(client.provision({ ...inst, params: { size: "huge" } }));
    expect(err.status).toBe(400);
    expect(err.orphan).toBeUndefined();
    expect(provisioner.calls).toEqual(["provision i1"]);
  });

  test("a success with a body that is not JSON is treated as uncertain and mitigated", async () => {
    const { client, inst, provisioner } = setup({}, 5000, {}, async (req, next) => {
      const res = await next(req);
      return req.method === "PUT" ? new Response("<html>proxy error</html>", { status: 201 }) : res;
    });
    const err = await caught(client.provision(inst));
    expect(err.orphan).toBe("cleaned");
    expect(provisioner.instances.size).toBe(0);
  });

  test("a bind answered with 500 is unbound", async () => {
    const { client, inst, provisioner } = setup({ failBind: true }, 5000);
    await client.provision(inst);
    const err = await caught(client.bind({ ...inst, bindingId: "b1" }));
    expect(err.status).toBe(500);
    expect(err.orphan).toBe("cleaned");
    expect(provisioner.calls).toContain("unbind b1");
    expect(provisioner.instances.get("i1")!.bindings.size).toBe(0);
  });

  test("when the mitigating delete fails too, the error says the orphan was left", async () => {
    const { client, inst } = setup({ failProvision: true }, 5000, { mitigationAttempts: 2 }, async (req, next) =>
      req.method === "DELETE" ? new Response(JSON.stringify({ description: "down" }), { status: 503 }) : next(req),
    );
    const err = await caught(client.provision(inst));
    expect(err.orphan).toBe("left");
  });
});
