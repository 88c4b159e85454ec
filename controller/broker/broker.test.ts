// The OSB v2.17 HTTP contract of createBroker, against the in-memory provisioner (no port: app.handle).

import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { memoryLogger } from "../../bus/log.ts";
import { createBroker } from "./broker.ts";
import { MemoryProvisioner, type MemoryProvisionerOptions } from "./memory-provisioner.ts";
import { SqliteBrokerStore } from "./sqlite-store.ts";
import { MemoryBrokerStore, type BrokerStore } from "./store.ts";

const auth = `Basic ${btoa("broker:secret")}`;
const S = "memory-service-id";
const SMALL = "memory-small-id";
const LARGE = "memory-large-id";

function setup(opts: MemoryProvisionerOptions = {}, syncWindowMs = 0, store: BrokerStore = new MemoryBrokerStore()) {
  const provisioner = new MemoryProvisioner(opts);
  const app = createBroker({ provisioners: [provisioner], credentials: { username: "broker", password: "secret" }, store, syncWindowMs, log: memoryLogger() });
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await app.handle(
      new Request(`http://broker${path}`, {
        method,
        headers: { authorization: auth, "x-broker-api-version": "2.17", "content-type": "application/json", ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );
    return { status: res.status, body: (await res.json()) as Record<string, any>, headers: res.headers };
  };
  return { app, provisioner, call, broker: app.decorator.serviceBroker };
}

const where = { organization_guid: "org-1", space_guid: "space-1" };
const provisionBody = (plan = SMALL, parameters: Record<string, unknown> = {}) => ({ service_id: S, plan_id: plan, ...where, parameters, context: { platform: "skiff", ...where } });
const q = `service_id=${S}&plan_id=${SMALL}`;

describe("broker gate", () => {
  test("catalog lists the provisioners' services", async () => {
    const { call } = setup();
    const res = await call("GET", "/v2/catalog");
    expect(res.status).toBe(200);
    expect(res.body.services[0].id).toBe(S);
    expect(res.body.services[0].plans.map((p: any) => p.name)).toEqual(["small", "large"]);
  });

  test("401 without the right basic auth", async () => {
    const { call } = setup();
    expect((await call("GET", "/v2/catalog", undefined, { authorization: `Basic ${btoa("broker:wrong")}` })).status).toBe(401);
    expect((await call("GET", "/v2/catalog", undefined, { authorization: "" })).status).toBe(401);
  });

  test("412 when X-Broker-API-Version is missing or too old", async () => {
    const { call } = setup();
    const missing = await call("GET", "/v2/catalog", undefined, { "x-broker-api-version": "" });
    expect(missing.status).toBe(412);
    expect(missing.body.description).toContain("X-Broker-API-Version");
    expect((await call("GET", "/v2/catalog", undefined, { "x-broker-api-version": "2.10" })).status).toBe(412);
    expect((await call("GET", "/v2/catalog", undefined, { "x-broker-api-version": "3.0" })).status).toBe(412);
    expect((await call("GET", "/v2/catalog", undefined, { "x-broker-api-version": "2.14" })).status).toBe(200);
  });

  test("echoes the request identity", async () => {
    const { call } = setup();
    const res = await call("GET", "/v2/catalog", undefined, { "x-broker-api-request-identity": "req-1" });
    expect(res.headers.get("x-broker-api-request-identity")).toBe("req-1");
  });
});

describe("provision", () => {
  test("sync: 201, the same again 200, a different one 409", async () => {
    const { call } = setup();
    const first = await call("PUT", "/v2/service_instances/i1", provisionBody());
    expect(first.status).toBe(201);
    expect(first.body.dashboard_url).toBe("http://memory.example/i1");
    expect((await call("PUT", "/v2/service_instances/i1", provisionBody())).status).toBe(200);
    const conflict = await call("PUT", "/v2/service_instances/i1", provisionBody(LARGE));
    expect(conflict.status).toBe(409);
    expect(typeof conflict.body.description).toBe("string");
  });

  test("400 on unknown service or plan, or missing ids; 400 on malformed JSON", async () => {
    const { call, app } = setup();
    expect((await call("PUT", "/v2/service_instances/i1", { service_id: "nope", plan_id: SMALL })).status).toBe(400);
    expect((await call("PUT", "/v2/service_instances/i1", { service_id: S, plan_id: "nope" })).status).toBe(400);
    expect((await call("PUT", "/v2/service_instances/i1", {})).status).toBe(400);
    const res = await app.handle(
      new Request("http://broker/v2/service_instances/i1", {
        method: "PUT",
        headers: { authorization: auth, "x-broker-api-version": "2.17", "content-type": "application/json" },
        body: "{not json",
      }),
    );
    expect(res.status).toBe(400);
  });

  test("async: 202 with an operation, polled to succeeded; the same request while running is 202 again", async () => {
    const { call, broker } = setup({ delayMs: 50 });
    const started = await call("PUT", "/v2/service_instances/i1?accepts_incomplete=true", provisionBody());
    expect(started.status).toBe(202);
    const op = started.body.operation as string;
    expect(op).toBeString();
    const again = await call("PUT", "/v2/service_instances/i1?accepts_incomplete=true", provisionBody());
    expect(again).toMatchObject({ status: 202, body: { operation: op } });
    const polling = await call("GET", `/v2/service_instances/i1/last_operation?operation=${op}`);
    expect(polling.body).toEqual({ state: "in progress" });
    expect((await call("PUT", "/v2/service_instances/i1", provisionBody())).body.error).toBe("ConcurrencyError");
    await broker.idle();
    expect((await call("GET", `/v2/service_instances/i1/last_operation?operation=${op}`)).body).toEqual({ state: "succeeded" });
    expect((await call("PUT", "/v2/service_instances/i1?accepts_incomplete=true", provisionBody())).status).toBe(200);
  });

  test("two identical PUTs at once provision once", async () => {
    const { call, provisioner, broker } = setup({ delayMs: 30 });
    const [a, b] = await Promise.all([
      call("PUT", "/v2/service_instances/i1?accepts_incomplete=true", provisionBody()),
      call("PUT", "/v2/service_instances/i1?accepts_incomplete=true", provisionBody()),
    ]);
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(a.body.operation).toBe(b.body.operation);
    await broker.idle();
    expect(provisioner.calls).toEqual(["provision i1"]);
  });

  test("a quick operation within the sync window answers 201 even with accepts_incomplete", async () => {
    const { call } = setup({}, 1000);
    expect((await call("PUT", "/v2/service_instances/i1?accepts_incomplete=true", provisionBody())).status).toBe(201);
  });

  test("422 AsyncRequired when the provisioner is async-only and accepts_incomplete is absent", async () => {
    const { call } = setup({ asyncOnly: true });
    const res = await call("PUT", "/v2/service_instances/i1", provisionBody());
    expect(res.status).toBe(422);
    expect(res.body.error).toBe("AsyncRequired");
    expect(res.body.description).toBeString();
    expect((await call("PUT", "/v2/service_instances/i1?accepts_incomplete=false", provisionBody())).status).toBe(422);
  });

  test("a failed sync provision answers 500 and stays deletable; a 4xx refusal leaves nothing", async () => {
    const { call, provisioner } = setup({ failProvision: true });
    const failed = await call("PUT", "/v2/service_instances/i1", provisionBody());
    expect(failed.status).toBe(500);
    expect(failed.body.description).toContain("broken");
    expect((await call("GET", "/v2/service_instances/i1/last_operation")).body.state).toBe("failed");
    expect((await call("DELETE", `/v2/service_instances/i1?${q}`)).status).toBe(200);
    expect(provisioner.instances.size).toBe(0);

    const refused = await call("PUT", "/v2/service_instances/i2", provisionBody(SMALL, { size: "huge" }));
    expect(refused.status).toBe(400);
    expect((await call("DELETE", `/v2/service_instances/i2?${q}`)).status).toBe(410);
  });

  test("an async 4xx refusal stays readable through last_operation", async () => {
    const { call, broker } = setup();
    expect((await call("PUT", "/v2/service_instances/i1?accepts_incomplete=true", provisionBody(SMALL, { size: "huge" }))).status).toBe(202);
    await broker.idle();
    const last = await call("GET", "/v2/service_instances/i1/last_operation");
    expect(last.body).toEqual({ state: "failed", description: "size huge is not offered; use small or large" });
    expect((await call("DELETE", `/v2/service_instances/i1?${q}`)).status).toBe(200);
  });

  test("a failed async provision reports failed with the reason", async () => {
    const { call, broker } = setup({ failProvision: true });
    const started = await call("PUT", "/v2/service_instances/i1?accepts_incomplete=true", provisionBody());
    expect(started.status).toBe(202);
    await broker.idle();
    const last = await call("GET", "/v2/service_instances/i1/last_operation");
    expect(last.body).toEqual({ state: "failed", description: "the memory service is broken today" });
  });
});

describe("update", () => {
  test("plan change 200; unknown instance 404; no-op 200", async () => {
    const { call, provisioner } = setup();
    expect((await call("PATCH", "/v2/service_instances/nope", { service_id: S, plan_id: LARGE })).status).toBe(404);
    await call("PUT", "/v2/service_instances/i1", provisionBody());
    expect((await call("PATCH", "/v2/service_instances/i1", { service_id: S, plan_id: LARGE })).status).toBe(200);
    expect(provisioner.instances.get("i1")?.plan).toBe("large");
    expect((await call("PATCH", "/v2/service_instances/i1", { service_id: S, plan_id: LARGE })).status).toBe(200);
    // the instance now has plan LARGE, so provisioning it with SMALL conflicts
    expect((await call("PUT", "/v2/service_instances/i1", provisionBody())).status).toBe(409);
  });

  test("the same update sent again while it runs gets 202 with its operation; a different one 422 ConcurrencyError (issue 8)", async () => {
    const { call, broker, provisioner } = setup({ delayMs: 100 });
    await call("PUT", "/v2/service_instances/i1", provisionBody());
    const patch = { service_id: S, plan_id: LARGE, parameters: { tier: 2 } };
    const first = await call("PATCH", "/v2/service_instances/i1?accepts_incomplete=true", patch);
    expect(first.status).toBe(202);
    const again = await call("PATCH", "/v2/service_instances/i1?accepts_incomplete=true", patch);
    expect(again).toMatchObject({ status: 202, body: { operation: first.body.operation } });
    // parameters left out mean "keep the instance's": not the running request, which changes them
    const noParams = await call("PATCH", "/v2/service_instances/i1?accepts_incomplete=true", { service_id: S, plan_id: LARGE });
    expect(noParams.status).toBe(422);
    const other = await call("PATCH", "/v2/service_instances/i1?accepts_incomplete=true", { ...patch, parameters: { tier: 3 } });
    expect(other).toMatchObject({ status: 422, body: { error: "ConcurrencyError" } });
    const otherPlan = await call("PATCH", "/v2/service_instances/i1?accepts_incomplete=true", { ...patch, plan_id: SMALL });
    expect(otherPlan).toMatchObject({ status: 422, body: { error: "ConcurrencyError" } });
    // a platform that does not accept async cannot be told 202
    expect((await call("PATCH", "/v2/service_instances/i1", patch)).body.error).toBe("ConcurrencyError");
    await broker.idle();
    expect(provisioner.calls.filter((c) => c === "update i1")).toHaveLength(1);
    expect((await call("GET", `/v2/service_instances/i1/last_operation?operation=${first.body.operation}`)).body.state).toBe("succeeded");
    // done: the same PATCH is now a no-op
    expect((await call("PATCH", "/v2/service_instances/i1?accepts_incomplete=true", patch)).status).toBe(200);
  });

  test("a plan change the service does not offer is 422, not 400 (issue 8)", async () => {
    const { call, provisioner } = setup();
    provisioner.service.plan_updateable = false;
    await call("PUT", "/v2/service_instances/i1", provisionBody());
    const res = await call("PATCH", "/v2/service_instances/i1", { service_id: S, plan_id: LARGE });
    expect(res.status).toBe(422);
    expect(res.body.description).toContain("cannot change the plan");
    expect(provisioner.calls).not.toContain("update i1");
    // still 400 for what is malformed
    expect((await call("PATCH", "/v2/service_instances/i1", { service_id: S, plan_id: "no-such-plan" })).status).toBe(400);
    // parameters alone may change (the plan stays)
    expect((await call("PATCH", "/v2/service_instances/i1", { service_id: S, plan_id: SMALL, parameters: { x: 1 } })).status).toBe(200);
  });
});

describe("deprovision", () => {
  test("200 {}, then 410 Gone; 400 without service_id/plan_id", async () => {
    const { call, provisioner } = setup();
    await call("PUT", "/v2/service_instances/i1", provisionBody());
    expect((await call("DELETE", "/v2/service_instances/i1")).status).toBe(400);
    expect(await call("DELETE", `/v2/service_instances/i1?${q}`)).toMatchObject({ status: 200, body: {} });
    expect(await call("DELETE", `/v2/service_instances/i1?${q}`)).toMatchObject({ status: 410, body: {} });
    expect(provisioner.instances.has("i1")).toBe(false);
  });

  test("async deprovision: 202, then last_operation 410 once it is gone", async () => {
    const { call, broker } = setup({ delayMs: 20 });
    await call("PUT", "/v2/service_instances/i1", provisionBody());
    const res = await call("DELETE", `/v2/service_instances/i1?${q}&accepts_incomplete=true`);
    expect(res.status).toBe(202);
    expect((await call("DELETE", `/v2/service_instances/i1?${q}&accepts_incomplete=true`)).body.operation).toBe(res.body.operation);
    await broker.idle();
    expect((await call("GET", `/v2/service_instances/i1/last_operation?operation=${res.body.operation}`)).status).toBe(410);
  });

  test("deprovision unbinds bindings the platform left behind", async () => {
    const { call, provisioner } = setup();
    await call("PUT", "/v2/service_instances/i1", provisionBody());
    await call("PUT", "/v2/service_instances/i1/service_bindings/b1", { service_id: S, plan_id: SMALL });
    await call("DELETE", `/v2/service_instances/i1?${q}`);
    expect(provisioner.calls).toContain("unbind b1");
    expect((await call("DELETE", `/v2/service_instances/i1/service_bindings/b1?${q}`)).status).toBe(410);
  });
});

describe("bind", () => {
  test("201 with credentials, 200 again, 409 when different, 404 for an unknown instance", async () => {
    const { call } = setup();
    expect((await call("PUT", "/v2/service_instances/nope/service_bindings/b1", { service_id: S, plan_id: SMALL })).status).toBe(404);
    await call("PUT", "/v2/service_instances/i1", provisionBody());
    const body = { service_id: S, plan_id: SMALL, bind_resource: { app_guid: "app-1" } };
    const first = await call("PUT", "/v2/service_instances/i1/service_bindings/b1", body);
    expect(first.status).toBe(201);
    expect(first.body.credentials).toMatchObject({ username: "b1", hostname: "127.0.0.1", name: "i1" });
    // § Types of Binding: the hosts and ports the credentials reach (SHOULD)
    expect(first.body.endpoints).toEqual([{ host: "127.0.0.1", ports: ["1"], protocol: "tcp" }]);
    const again = await call("PUT", "/v2/service_instances/i1/service_bindings/b1", body);
    expect(again).toMatchObject({ status: 200, body: { credentials: first.body.credentials } });
    expect((await call("PUT", "/v2/service_instances/i1/service_bindings/b1", { ...body, parameters: { x: 1 } })).status).toBe(409);
  });

  test("the same binding id for another app is 409 and never returns the first app's credentials (issue 8)", async () => {
    const { call } = setup();
    await call("PUT", "/v2/service_instances/i1", provisionBody());
    const first = await call("PUT", "/v2/service_instances/i1/service_bindings/b1", { service_id: S, plan_id: SMALL, bind_resource: { app_guid: "app-1" } });
    expect(first.status).toBe(201);
    const other = await call("PUT", "/v2/service_instances/i1/service_bindings/b1", { service_id: S, plan_id: SMALL, bind_resource: { app_guid: "app-2" } });
    expect(other.status).toBe(409);
    expect(JSON.stringify(other.body)).not.toContain(first.body.credentials.password);
    const noApp = await call("PUT", "/v2/service_instances/i1/service_bindings/b1", { service_id: S, plan_id: SMALL });
    expect(noApp.status).toBe(409);
  });

  test("async bind: 202, last_operation, then GET the binding for its credentials", async () => {
    const { call, broker } = setup({ delayMs: 20 });
    await call("PUT", "/v2/service_instances/i1", provisionBody());
    const res = await call("PUT", "/v2/service_instances/i1/service_bindings/b1?accepts_incomplete=true", { service_id: S, plan_id: SMALL });
    expect(res.status).toBe(202);
    expect((await call("GET", "/v2/service_instances/i1/service_bindings/b1")).status).toBe(404);
    await broker.idle();
    expect((await call("GET", `/v2/service_instances/i1/service_bindings/b1/last_operation?operation=${res.body.operation}`)).body.state).toBe("succeeded");
    expect((await call("GET", "/v2/service_instances/i1/service_bindings/b1")).body.credentials.username).toBe("b1");
  });

  test("unbind 200 then 410; 400 without ids", async () => {
    const { call, provisioner } = setup();
    await call("PUT", "/v2/service_instances/i1", provisionBody());
    await call("PUT", "/v2/service_instances/i1/service_bindings/b1", { service_id: S, plan_id: SMALL });
    expect((await call("DELETE", "/v2/service_instances/i1/service_bindings/b1")).status).toBe(400);
    expect(await call("DELETE", `/v2/service_instances/i1/service_bindings/b1?${q}`)).toMatchObject({ status: 200, body: {} });
    expect((await call("DELETE", `/v2/service_instances/i1/service_bindings/b1?${q}`)).status).toBe(410);
    expect(provisioner.instances.get("i1")?.bindings.size).toBe(0);
  });
});

describe("resume (issue 22)", () => {
  test("a restarted broker tells each provisioner its ready instances and their plans", async () => {
    const store = new MemoryBrokerStore();
    const one = setup({}, 0, store);
    await one.call("PUT", "/v2/service_instances/i1", provisionBody());
    await one.call("PUT", "/v2/service_instances/i2", provisionBody(LARGE));
    await one.call("PUT", "/v2/service_instances/i3", provisionBody(SMALL, { size: "huge" }));
    class Resumable extends MemoryProvisioner {
      told: string[] = [];
      async resume(instances: { instanceId: string; plan: { name: string } }[]) {
        this.told = instances.map((i) => `${i.instanceId}:${i.plan.name}`);
      }
    }
    const p = new Resumable();
    const app = createBroker({ provisioners: [p], credentials: { username: "broker", password: "secret" }, store, log: memoryLogger() });
    await app.decorator.serviceBroker.recovered;
    expect(p.told.sort()).toEqual(["i1:small", "i2:large"]);
  });
});

describe("sqlite store", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  test("state survives a restart; an operation cut off by the restart reads failed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skiff-broker-"));
    dirs.push(dir);
    const path = join(dir, "broker.sqlite");
    const one = setup({ delayMs: 200 }, 0, new SqliteBrokerStore(path));
    await one.call("PUT", "/v2/service_instances/i1", provisionBody());
    await one.call("PUT", "/v2/service_instances/i2?accepts_incomplete=true", provisionBody());
    // "restart": a second broker on the same file while i2 is still in progress in the first
    const two = setup({}, 0, new SqliteBrokerStore(path));
    expect((await two.call("PUT", "/v2/service_instances/i1", provisionBody())).status).toBe(200);
    const last = await two.call("GET", "/v2/service_instances/i2/last_operation");
    expect(last.body.state).toBe("failed");
    expect(last.body.description).toContain("restarted");
    await one.broker.idle();
  });
});

describe("what OSB 2.17 says a broker MUST do (issue 22)", () => {
  test("§ Provisioning: organization_guid and space_guid are REQUIRED non-empty strings; a request without one is 400 naming it, and creates nothing", async () => {
    const { call, provisioner } = setup();
    for (const [field, value] of [["organization_guid", undefined], ["organization_guid", ""], ["space_guid", undefined], ["space_guid", ""], ["space_guid", 7]] as const) {
      const body: Record<string, unknown> = { ...provisionBody(), [field]: value };
      if (value === undefined) delete body[field];
      const res = await call("PUT", "/v2/service_instances/i1?accepts_incomplete=true", body);
      expect(res.status).toBe(400);
      expect(res.body.description).toStartWith(`${field} is`);
    }
    expect(provisioner.calls).toEqual([]);
    expect((await call("GET", "/v2/service_instances/i1")).status).toBe(404);
    expect((await call("GET", "/v2/service_instances/i1/last_operation")).status).toBe(410);
  });

  test("§ Provisioning: a repeat that differs only in organization, space or context is 409, not 200", async () => {
    const { call } = setup();
    expect((await call("PUT", "/v2/service_instances/i1", provisionBody())).status).toBe(201);
    expect((await call("PUT", "/v2/service_instances/i1", provisionBody())).status).toBe(200);
    const other = { organization_guid: "org-2", space_guid: "space-2" };
    const org = await call("PUT", "/v2/service_instances/i1", { ...provisionBody(), ...other, context: { platform: "skiff", ...other } });
    expect(org.status).toBe(409);
    expect(org.body.description).toContain("organization_guid, space_guid, context");
    const ctx = await call("PUT", "/v2/service_instances/i1", { ...provisionBody(), context: { platform: "skiff", ...where, instance_name: "renamed" } });
    expect(ctx).toMatchObject({ status: 409, body: { description: expect.stringContaining("context") } });
    // context's guids must agree with the top-level ones
    const split = await call("PUT", "/v2/service_instances/i2", { ...provisionBody(), context: { platform: "skiff", ...where, space_guid: "elsewhere" } });
    expect(split).toMatchObject({ status: 400, body: { description: "context.space_guid (elsewhere) differs from space_guid (space-1)" } });
  });

  test("§ Deprovisioning, § Unbinding: an empty or wrong service_id/plan_id is 400 naming it, and deletes nothing", async () => {
    const { call, provisioner } = setup();
    await call("PUT", "/v2/service_instances/i1", provisionBody());
    await call("PUT", "/v2/service_instances/i1/service_bindings/b1", { service_id: S, plan_id: SMALL });
    const cases: [string, string][] = [
      [`plan_id=${SMALL}&service_id=`, "query parameter service_id is empty"],
      [`plan_id=&service_id=${S}`, "query parameter plan_id is empty"],
      [`plan_id=${SMALL}`, "query parameter service_id is missing"],
      [`plan_id=${SMALL}&service_id=other-service`, "service_id other-service is not the service of"],
      [`plan_id=${LARGE}&service_id=${S}`, `plan_id ${LARGE} is not the plan of`],
    ];
    for (const [query, description] of cases) {
      for (const path of ["/v2/service_instances/i1/service_bindings/b1", "/v2/service_instances/i1"]) {
        const res = await call("DELETE", `${path}?${query}`);
        expect(res.status).toBe(400);
        expect(res.body.description).toStartWith(description);
        expect(res.body.description).toContain("nothing was deleted");
      }
    }
    expect(provisioner.calls.filter((c) => c.startsWith("unbind") || c.startsWith("deprovision"))).toEqual([]);
    expect((await call("GET", "/v2/service_instances/i1/service_bindings/b1")).status).toBe(200);
    expect((await call("GET", "/v2/service_instances/i1")).status).toBe(200);
    expect((await call("DELETE", `/v2/service_instances/i1/service_bindings/b1?${q}`)).status).toBe(200);
    expect((await call("DELETE", `/v2/service_instances/i1?${q}`)).status).toBe(200);
  });

  test("§ Binding: a bind whose plan is not the instance's is 400 (PATCH changes plans, not PUT)", async () => {
    const { call } = setup();
    await call("PUT", "/v2/service_instances/i1", provisionBody());
    const res = await call("PUT", "/v2/service_instances/i1/service_bindings/b1", { service_id: S, plan_id: LARGE });
    expect(res).toMatchObject({ status: 400, body: { description: expect.stringContaining(`plan_id ${LARGE} is not the plan of instance i1`) } });
  });

  test("§ Catalog, § Fetching a Service Instance: instances_retrievable; GET answers 404 while provisioning, 200 with ids and parameters, 422 ConcurrencyError while updating", async () => {
    const { call, broker } = setup({ delayMs: 60 });
    const catalog = await call("GET", "/v2/catalog");
    expect(catalog.body.services[0]).toMatchObject({ instances_retrievable: true, bindings_retrievable: true, plan_updateable: true });
    expect((await call("GET", "/v2/service_instances/nope")).status).toBe(404);
    expect((await call("PUT", "/v2/service_instances/i1?accepts_incomplete=true", provisionBody(SMALL, { tier: 1 }))).status).toBe(202);
    const during = await call("GET", "/v2/service_instances/i1");
    expect(during).toMatchObject({ status: 404, body: { description: "service instance i1 is still being provisioned" } });
    await broker.idle();
    const got = await call("GET", `/v2/service_instances/i1?service_id=${S}&plan_id=${SMALL}`);
    expect(got).toMatchObject({ status: 200, body: { service_id: S, plan_id: SMALL, dashboard_url: "http://memory.example/i1", parameters: { tier: 1 } } });
    expect((await call("GET", `/v2/service_instances/i1?plan_id=${LARGE}`)).status).toBe(400);
    expect((await call("PATCH", "/v2/service_instances/i1?accepts_incomplete=true", { service_id: S, plan_id: LARGE })).status).toBe(202);
    expect(await call("GET", "/v2/service_instances/i1")).toMatchObject({ status: 422, body: { error: "ConcurrencyError" } });
    await broker.idle();
    expect((await call("GET", "/v2/service_instances/i1")).body).toMatchObject({ plan_id: LARGE, parameters: { tier: 1 } });
    // a new binding names the instance's new plan
    expect((await call("PUT", "/v2/service_instances/i1/service_bindings/b2", { service_id: S, plan_id: LARGE })).status).toBe(201);
  });

  test("§ Unbinding, § Binding: after a plan change the platform names the instance's new plan for a binding made before it", async () => {
    const { call } = setup();
    await call("PUT", "/v2/service_instances/i1", provisionBody());
    const body = { service_id: S, plan_id: SMALL, bind_resource: { app_guid: "app-1" } };
    const made = await call("PUT", "/v2/service_instances/i1/service_bindings/b1", body);
    expect((await call("PATCH", "/v2/service_instances/i1", { service_id: S, plan_id: LARGE })).status).toBe(200);
    // the same bind again, now under the instance's plan: the same binding, 200 with its credentials
    expect(await call("PUT", "/v2/service_instances/i1/service_bindings/b1", { ...body, plan_id: LARGE })).toMatchObject({ status: 200, body: { credentials: made.body.credentials } });
    expect((await call("GET", `/v2/service_instances/i1/service_bindings/b1?service_id=${S}&plan_id=${LARGE}`)).status).toBe(200);
    expect((await call("GET", `/v2/service_instances/i1/service_bindings/b1?plan_id=nope`)).body.description).toContain(`that is ${LARGE} or ${SMALL}`);
    expect((await call("DELETE", `/v2/service_instances/i1/service_bindings/b1?service_id=${S}&plan_id=${LARGE}`)).status).toBe(200);
  });

  test("§ Updating: a PATCH whose service_id is not the instance's is 400, an empty plan_id too; nothing changes", async () => {
    const { call, provisioner } = setup({ serviceId: S });
    await call("PUT", "/v2/service_instances/i1", provisionBody());
    expect((await call("PATCH", "/v2/service_instances/i1", { service_id: "", plan_id: LARGE })).body.description).toStartWith("service_id is empty");
    expect((await call("PATCH", "/v2/service_instances/i1", { service_id: S, plan_id: "" })).body.description).toStartWith("plan_id is empty");
    expect((await call("PATCH", "/v2/service_instances/i1", { service_id: S, plan_id: LARGE, parameters: [1] })).status).toBe(400);
    expect(provisioner.calls).not.toContain("update i1");
  });

  test("§ Platform to Service Broker Authentication, § API Version Header: checked first on every route, unknown ones and malformed bodies included", async () => {
    const { call, app } = setup();
    expect((await call("GET", "/v2/no/such/route", undefined, { authorization: "" })).status).toBe(401);
    expect((await call("GET", "/v2/service_instances/i1", undefined, { authorization: "" })).status).toBe(401);
    expect((await call("GET", "/v2/service_instances/i1", undefined, { "x-broker-api-version": "" })).status).toBe(412);
    expect((await call("POST", "/v2/catalog", undefined, { "x-broker-api-version": "" })).status).toBe(412);
    expect((await call("GET", "/v2/no/such/route")).status).toBe(404);
    const garbage = await app.handle(new Request("http://broker/v2/service_instances/i1", { method: "PUT", headers: { "content-type": "application/json" }, body: "{oops" }));
    expect(garbage.status).toBe(401);
  });
});
