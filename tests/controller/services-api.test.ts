// Issue 8 (second half), the controller's side of services, in-process: brokers served by createBroker
// around MemoryProvisioners (reached through the BrokerClient's fetch hook), a fake agent on the in-memory
// bus. Registration and the marketplace, async provision with last_operation, binding into every
// dea.<id>.start, refusals (bound instance, non-admin broker), no credentials in listings, events or the
// database, and no orphan left by a broker that answers 500 (provision or bind) or never answers; an orphan
// whose cleanup failed too is retried in the background with backoff until the broker lets it go.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBus, MemoryBroker, memoryLogger, type Bus } from "../../bus/index.ts";
import { createBroker } from "../../controller/broker/broker.ts";
import { MemoryProvisioner } from "../../controller/broker/memory-provisioner.ts";
import type { BindingRef, InstanceRef } from "../../controller/broker/types.ts";
import { MemoryBrokerStore } from "../../controller/broker/store.ts";
import { startController, type RunningController } from "../../controller/main.ts";
import { eventually } from "../support/ports.ts";
import { FakeAgent } from "./fake-agent.ts";
import { apiCaller, tarGz } from "./api-client.ts";

let dir: string;
let c: RunningController;
let bus: Bus;
let agent: FakeAgent;
let token: string;
const BASE = "http://controller.test";

const good = new MemoryProvisioner({ delayMs: 30 });
const bad = new MemoryProvisioner({ failProvision: true, serviceId: "memory-bad-id" });
const silent = new MemoryProvisioner({ serviceId: "memory-silent-id" });
/** A service whose deletes fail `deletesToFail` more times: orphan mitigation cannot clean up after it. */
class FlakyCleanup extends MemoryProvisioner {
  deletesToFail = 0;
  readonly deleteTimes: number[] = [];
  private flaky() {
    this.deleteTimes.push(performance.now());
    if (this.deletesToFail > 0) {
      this.deletesToFail--;
      throw new Error("the cleanup path is down too");
    }
  }
  override async deprovision(ref: InstanceRef) {
    this.flaky();
    return super.deprovision(ref);
  }
  override async unbind(ref: BindingRef) {
    this.flaky();
    return super.unbind(ref);
  }
}
/** A service whose plan changes fail at the broker (issue 22): the instance must stay usable on its old plan. */
class FailingUpdate extends MemoryProvisioner {
  override async update(): Promise<void> {
    throw new Error("the resize ran out of disk");
  }
}
const fixedPlans = new MemoryProvisioner({ serviceId: "memory-fixed-id" });
fixedPlans.service.plan_updateable = false;
const failingUpdate = new FailingUpdate({ serviceId: "memory-failupdate-id" });
const flakyProvision = new FlakyCleanup({ failProvision: true, serviceId: "memory-flakyprov-id" });
const flakyBind = new FlakyCleanup({ failBind: true, serviceId: "memory-flakybind-id" });
const ORPHAN_RETRY_MS = 60;
/** Every line the brokers and the controller log, checked for credentials at the end. */
const logLines: string[] = [];
const brokerApp = (p: MemoryProvisioner) => createBroker({ provisioners: [p], credentials: { username: "platform", password: "broker-secret" }, store: new MemoryBrokerStore(), syncWindowMs: 0, log: memoryLogger(logLines) });
const brokers: Record<string, ReturnType<typeof brokerApp>> = {
  "good.broker": brokerApp(good), "bad.broker": brokerApp(bad), "silent.broker": brokerApp(silent),
  "flakyprov.broker": brokerApp(flakyProvision), "flakybind.broker": brokerApp(flakyBind),
  "fixed.broker": brokerApp(fixedPlans), "failupdate.broker": brokerApp(failingUpdate),
};
/** What the controller sent each broker (issue 22 checks the provision's organization, space and context). */
const brokerRequests: { method: string; url: string; body: any }[] = [];
/** The brokers' network: by host; the silent broker does the provision but its answer never arrives. */
async function brokerFetch(req: Request): Promise<Response> {
  const u = new URL(req.url);
  const text = req.method === "GET" || req.method === "DELETE" ? "" : await req.clone().text();
  brokerRequests.push({ method: req.method, url: req.url, body: text ? JSON.parse(text) : undefined });
  const app = brokers[u.hostname];
  if (!app) throw new Error(`connection refused: ${u.hostname}`);
  if (u.hostname === "silent.broker" && req.method === "PUT" && !u.pathname.includes("service_bindings")) {
    await app.handle(req);
    return new Promise<Response>(() => {});
  }
  return app.handle(req);
}

const http = (req: Request) => c.app.handle(req);
const callAs = apiCaller(http);
const call = (method: string, path: string, body?: unknown, as = token) => callAs(as, method, path, body);

/** Polls a resource until its last operation is no longer in progress (or it is gone: 404). */
async function settle(path: string): Promise<{ status: number; json: any }> {
  return eventually(async () => {
    const r = await call("GET", path);
    return r.status === 404 || r.json.last_operation.state !== "in progress" ? r : undefined;
  }, 10_000, `${path} to settle`);
}

let spaceGuid: string;
let appGuid: string;
let instanceGuid: string;
let bindingGuid: string;
const planOf = async (broker: string, name = "small") => {
  const offerings = (await call("GET", `/v3/service_offerings?service_broker_names=${broker}`)).json.resources;
  return (await call("GET", `/v3/service_plans?service_offering_guids=${offerings[0].guid}&names=${name}`)).json.resources[0].guid as string;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "skiff-ctl-svc-"));
  const broker = new MemoryBroker();
  bus = createBus(broker.transport(), memoryLogger());
  c = await startController(
    {
      natsUrl: "", port: 0, dataDir: dir, domain: "skiff.test", adminPassword: "adminpass", embedHealthManager: true, publicUrl: BASE,
      health: { intervalMs: 50, startGraceMs: 0 }, findTimeoutMs: 150,
      services: {
        client: { fetch: brokerFetch, pollIntervalMs: 20, maxPollIntervalMs: 50, requestTimeoutMs: 400, mitigationTimeoutMs: 5_000 },
        orphanRetry: { initialMs: ORPHAN_RETRY_MS, maxMs: 2_000 },
      },
    },
    { bus: createBus(broker.transport(), memoryLogger()), log: memoryLogger(logLines), listen: false },
  );
  agent = new FakeAgent(bus, "agent1", http).begin();
  token = (await call("POST", "/v3/tokens", { username: "admin", password: "adminpass" })).json.access_token;
  spaceGuid = (await call("GET", "/v3/spaces")).json.resources[0].guid;
  const app = await call("POST", "/v3/apps", { name: "svcapp", space_guid: spaceGuid, memory_in_mb: 64 });
  appGuid = app.json.guid;
  await call("PUT", `/v3/apps/${appGuid}/bits`, await tarGz({ "index.ts": "console.log(1)" }));
  await call("POST", `/v3/apps/${appGuid}/actions/start`);
  await eventually(() => agent.starts.find((s) => s.droplet === appGuid), 10_000, "the app's first start");
});

afterAll(async () => {
  agent.end();
  await c.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("service brokers and the marketplace", () => {
  test("only an admin registers a broker", async () => {
    await call("POST", "/v3/users", { username: "dev", password: "devpassword" });
    const dev = (await call("POST", "/v3/tokens", { username: "dev", password: "devpassword" })).json.access_token;
    const r = await call("POST", "/v3/service_brokers", { name: "x", url: "http://good.broker", authentication: { type: "basic", credentials: { username: "platform", password: "broker-secret" } } }, dev);
    expect(r.status).toBe(403);
    expect((await call("GET", "/v3/service_brokers", undefined, dev)).status).toBe(403);
  });

  test("wrong broker credentials or an unreachable broker are refused with the reason; nothing is stored", async () => {
    const wrong = await call("POST", "/v3/service_brokers", { name: "g", url: "http://good.broker", authentication: { type: "basic", credentials: { username: "platform", password: "nope" } } });
    expect(wrong.status).toBe(502);
    expect(wrong.json.errors[0].detail).toContain("401");
    const gone = await call("POST", "/v3/service_brokers", { name: "g", url: "http://nowhere.broker", authentication: { type: "basic", credentials: { username: "u", password: "p" } } });
    expect(gone.status).toBe(502);
    expect((await call("GET", "/v3/service_brokers")).json.resources).toEqual([]);
  });

  test("registering fetches the catalog into offerings and plans", async () => {
    for (const name of ["good", "bad", "silent"]) {
      const r = await call("POST", "/v3/service_brokers", { name, url: `http://${name}.broker`, authentication: { type: "basic", credentials: { username: "platform", password: "broker-secret" } } });
      expect(r.status, JSON.stringify(r.json)).toBe(201);
      expect(JSON.stringify(r.json)).not.toContain("broker-secret");
    }
    expect((await call("POST", "/v3/service_brokers", { name: "good", url: "http://good.broker", authentication: { type: "basic", credentials: { username: "platform", password: "broker-secret" } } })).status).toBe(409);
    const offerings = (await call("GET", "/v3/service_offerings?service_broker_names=good")).json.resources;
    expect(offerings.map((o: any) => o.name)).toEqual(["memory"]);
    expect(offerings[0].tags).toEqual(["memory", "test"]);
    const plans = (await call("GET", `/v3/service_plans?service_offering_guids=${offerings[0].guid}`)).json.resources;
    expect(plans.map((p: any) => p.name).sort()).toEqual(["large", "small"]);
    // an update re-reads the catalog and keeps the guids
    const broker = (await call("GET", "/v3/service_brokers?names=good")).json.resources[0];
    expect((await call("PATCH", `/v3/service_brokers/${broker.guid}`, {})).status).toBe(200);
    expect((await call("GET", "/v3/service_offerings?service_broker_names=good")).json.resources[0].guid).toBe(offerings[0].guid);
  });
});

describe("service instances and bindings", () => {
  test("create answers 202 and last_operation goes from in progress to succeeded", async () => {
    const r = await call("POST", "/v3/service_instances", { type: "managed", name: "db1", relationships: { space: { data: { guid: spaceGuid } }, service_plan: { data: { guid: await planOf("good") } } }, parameters: { note: "hello" } });
    expect(r.status, JSON.stringify(r.json)).toBe(202);
    expect(r.json.last_operation).toMatchObject({ type: "create", state: "in progress" });
    instanceGuid = r.json.guid;
    const done = await settle(`/v3/service_instances/${instanceGuid}`);
    expect(done.json.last_operation).toMatchObject({ type: "create", state: "succeeded" });
    expect(done.json.service_offering.name).toBe("memory");
    expect(done.json.service_plan.name).toBe("small");
    expect(good.instances.has(instanceGuid)).toBe(true);
    const dup = await call("POST", "/v3/service_instances", { type: "managed", name: "db1", relationships: { space: { data: { guid: spaceGuid } }, service_plan: { data: { guid: await planOf("good") } } } });
    expect(dup.status).toBe(409);
  });

  test("a binding's credentials reach every dea.<id>.start of the app after a restart, never a listing", async () => {
    const r = await call("POST", "/v3/service_credential_bindings", { type: "app", relationships: { app: { data: { guid: appGuid } }, service_instance: { data: { guid: instanceGuid } } } });
    expect(r.status, JSON.stringify(r.json)).toBe(202);
    bindingGuid = r.json.guid;
    expect((await settle(`/v3/service_credential_bindings/${bindingGuid}`)).json.last_operation.state).toBe("succeeded");
    const env = (await call("GET", `/v3/apps/${appGuid}/env`)).json.system_env_json.VCAP_SERVICES;
    expect(env.memory[0]).toMatchObject({ name: "db1", instance_guid: instanceGuid, binding_guid: bindingGuid, credentials: { password: `pw-${bindingGuid}` } });
    const details = await call("GET", `/v3/service_credential_bindings/${bindingGuid}/details`);
    expect(details.json.credentials.password).toBe(`pw-${bindingGuid}`);
    const listing = JSON.stringify((await call("GET", `/v3/service_credential_bindings?app_guids=${appGuid}`)).json);
    expect(listing).toContain(bindingGuid);
    expect(listing).not.toContain(`pw-${bindingGuid}`);

    const before = agent.starts.length;
    await call("POST", `/v3/apps/${appGuid}/actions/restart`);
    const start = await eventually(() => agent.starts.slice(before).find((s) => s.droplet === appGuid), 10_000, "a start after the restart");
    expect(start.services).toHaveLength(1);
    expect(start.services[0]).toMatchObject({ name: "db1", label: "memory", plan: "small", tags: ["memory", "test"], instance_guid: instanceGuid, binding_guid: bindingGuid });
    expect(start.services[0]!.credentials.password).toBe(`pw-${bindingGuid}`);
  });

  test("credentials are sealed in the database and absent from events", async () => {
    const db = ["controller.sqlite", "controller.sqlite-wal"].filter((f) => existsSync(join(dir, f))).map((f) => readFileSync(join(dir, f)).toString("latin1")).join("");
    expect(db).not.toContain(`pw-${bindingGuid}`);
    expect(db).not.toContain("broker-secret");
    const events = JSON.stringify((await call("GET", "/v3/events?per_page=1000")).json);
    expect(events).toContain("audit.service_binding.create");
    expect(events).not.toContain(`pw-${bindingGuid}`);
    expect(events).not.toContain("broker-secret");
  });

  test("a bound instance cannot be deleted: the error names the app and the command", async () => {
    const r = await call("DELETE", `/v3/service_instances/${instanceGuid}`);
    expect(r.status).toBe(422);
    expect(r.json.errors[0].detail).toContain("bound to svcapp");
    expect(r.json.errors[0].detail).toContain("skiff unbind-service svcapp db1");
  });

  test("unbind removes the binding at the broker; the next start has no services", async () => {
    expect((await call("DELETE", `/v3/service_credential_bindings/${bindingGuid}`)).status).toBe(202);
    expect((await settle(`/v3/service_credential_bindings/${bindingGuid}`)).status).toBe(404);
    expect(good.instances.get(instanceGuid)!.bindings.size).toBe(0);
    const before = agent.starts.length;
    await call("POST", `/v3/apps/${appGuid}/actions/restart`);
    const start = await eventually(() => agent.starts.slice(before).find((s) => s.droplet === appGuid), 10_000, "a start after the restart");
    expect(start.services).toEqual([]);
  });

  test("delete deprovisions at the broker, then the instance is gone", async () => {
    expect((await call("DELETE", `/v3/service_instances/${instanceGuid}`)).status).toBe(202);
    expect((await settle(`/v3/service_instances/${instanceGuid}`)).status).toBe(404);
    expect(good.instances.has(instanceGuid)).toBe(false);
  });

  test("a broker answering 500 leaves a failed instance and no orphan at the broker", async () => {
    const r = await call("POST", "/v3/service_instances", { type: "managed", name: "broken", relationships: { space: { data: { guid: spaceGuid } }, service_plan: { data: { guid: await planOf("bad") } } } });
    const done = await settle(`/v3/service_instances/${r.json.guid}`);
    expect(done.json.last_operation.state).toBe("failed");
    expect(done.json.last_operation.description).toContain("broken today");
    expect(done.json.last_operation.description).toContain("removed");
    expect(bad.instances.size).toBe(0);
    // a failed instance can be deleted (and cannot be bound)
    const bind = await call("POST", "/v3/service_credential_bindings", { type: "app", relationships: { app: { data: { guid: appGuid } }, service_instance: { data: { guid: r.json.guid } } } });
    expect(bind.status).toBe(409);
    await call("DELETE", `/v3/service_instances/${r.json.guid}`);
    expect((await settle(`/v3/service_instances/${r.json.guid}`)).status).toBe(404);
  });

  test("a broker that never answers the provision times out; orphan mitigation deprovisions", async () => {
    const r = await call("POST", "/v3/service_instances", { type: "managed", name: "silent", relationships: { space: { data: { guid: spaceGuid } }, service_plan: { data: { guid: await planOf("silent") } } } });
    const done = await settle(`/v3/service_instances/${r.json.guid}`);
    expect(done.json.last_operation.state).toBe("failed");
    expect(done.json.last_operation.description).toContain("no answer");
    expect(silent.calls).toContain(`provision ${r.json.guid}`);
    expect(silent.calls).toContain(`deprovision ${r.json.guid}`);
    expect(silent.instances.size).toBe(0);
  });

  test("a broker with instances cannot be removed; one without can", async () => {
    const silentBroker = (await call("GET", "/v3/service_brokers?names=silent")).json.resources[0];
    expect((await call("DELETE", `/v3/service_brokers/${silentBroker.guid}`)).status).toBe(422);
    const badBroker = (await call("GET", "/v3/service_brokers?names=bad")).json.resources[0];
    expect((await call("DELETE", `/v3/service_brokers/${badBroker.guid}`)).status).toBe(204);
    expect((await call("GET", "/v3/service_offerings?service_broker_names=bad")).json.resources).toEqual([]);
  });

  test("deleting an app unbinds it at the broker first", async () => {
    const inst = await call("POST", "/v3/service_instances", { type: "managed", name: "db2", relationships: { space: { data: { guid: spaceGuid } }, service_plan: { data: { guid: await planOf("good") } } } });
    await settle(`/v3/service_instances/${inst.json.guid}`);
    const other = await call("POST", "/v3/apps", { name: "doomed", space_guid: spaceGuid, no_route: true });
    const b = await call("POST", "/v3/service_credential_bindings", { type: "app", relationships: { app: { data: { guid: other.json.guid } }, service_instance: { data: { guid: inst.json.guid } } } });
    await settle(`/v3/service_credential_bindings/${b.json.guid}`);
    expect(good.instances.get(inst.json.guid)!.bindings.size).toBe(1);
    expect((await call("DELETE", `/v3/apps/${other.json.guid}`)).status).toBe(204);
    expect(good.instances.get(inst.json.guid)!.bindings.size).toBe(0);
    expect((await call("GET", `/v3/service_credential_bindings/${b.json.guid}`)).status).toBe(404);
  });
});

describe("plans (issue 22)", () => {
  const register = async (name: string) => {
    const r = await call("POST", "/v3/service_brokers", { name, url: `http://${name}.broker`, authentication: { type: "basic", credentials: { username: "platform", password: "broker-secret" } } });
    expect(r.status, JSON.stringify(r.json)).toBe(201);
  };
  const create = async (name: string, broker: string) => {
    const r = await call("POST", "/v3/service_instances", { type: "managed", name, relationships: { space: { data: { guid: spaceGuid } }, service_plan: { data: { guid: await planOf(broker) } } } });
    expect(r.status, JSON.stringify(r.json)).toBe(202);
    expect((await settle(`/v3/service_instances/${r.json.guid}`)).json.last_operation.state).toBe("succeeded");
    return r.json.guid as string;
  };
  const toPlan = (guid: string, plan: string) => call("PATCH", `/v3/service_instances/${guid}`, { relationships: { service_plan: { data: { guid: plan } } } });

  test("the controller's provision carries organization_guid, space_guid and the same guids in context (OSB 2.17 § Provisioning)", async () => {
    const guid = await create("placed", "good");
    const put = brokerRequests.find((r) => r.method === "PUT" && r.url.includes(`/v2/service_instances/${guid}?`))!;
    const space = (await call("GET", `/v3/spaces/${spaceGuid}`)).json;
    const org = space.relationships.organization.data.guid;
    expect(put.body).toMatchObject({ organization_guid: org, space_guid: spaceGuid, context: { platform: "skiff", organization_guid: org, space_guid: spaceGuid, instance_name: "placed" } });
    await call("DELETE", `/v3/service_instances/${guid}`);
    expect((await settle(`/v3/service_instances/${guid}`)).status).toBe(404);
  });

  test("update-service -p: PATCH moves the instance to another plan at the broker; its binding, data and app keep working", async () => {
    const guid = await create("growing", "good");
    const b = await call("POST", "/v3/service_credential_bindings", { type: "app", relationships: { app: { data: { guid: appGuid } }, service_instance: { data: { guid } } } });
    await settle(`/v3/service_credential_bindings/${b.json.guid}`);
    const r = await toPlan(guid, await planOf("good", "large"));
    expect(r.status, JSON.stringify(r.json)).toBe(202);
    expect(r.json.last_operation).toMatchObject({ type: "update", state: "in progress" });
    expect(r.json.service_plan.name).toBe("small");
    const done = await settle(`/v3/service_instances/${guid}`);
    expect(done.json.last_operation).toMatchObject({ type: "update", state: "succeeded" });
    expect(done.json.service_plan.name).toBe("large");
    expect(good.instances.get(guid)).toMatchObject({ plan: "large" });
    expect(good.instances.get(guid)!.bindings.has(b.json.guid)).toBe(true);
    const patch = brokerRequests.filter((x) => x.method === "PATCH" && x.url.includes(guid)).at(-1)!;
    expect(patch.body).toMatchObject({ service_id: "memory-service-id", plan_id: "memory-large-id", previous_values: { plan_id: "memory-small-id" }, context: { space_guid: spaceGuid, instance_name: "growing" } });
    // the next start tells the app its plan
    const before = agent.starts.length;
    await call("POST", `/v3/apps/${appGuid}/actions/restart`);
    const start = await eventually(() => agent.starts.slice(before).find((x) => x.droplet === appGuid), 10_000, "a start after the plan change");
    expect(start.services.find((x) => x.instance_guid === guid)).toMatchObject({ plan: "large", binding_guid: b.json.guid });
    // unbind and delete name the new plan, and the broker accepts them
    await call("DELETE", `/v3/service_credential_bindings/${b.json.guid}`);
    expect((await settle(`/v3/service_credential_bindings/${b.json.guid}`)).status).toBe(404);
    await call("DELETE", `/v3/service_instances/${guid}`);
    expect((await settle(`/v3/service_instances/${guid}`)).status).toBe(404);
    expect(good.instances.has(guid)).toBe(false);
  });

  test("a plan change the broker's catalog does not offer (plan_updateable: false) is refused with 422 before anything is recorded or sent", async () => {
    await register("fixed");
    const guid = await create("fixed-size", "fixed");
    const sent = brokerRequests.length;
    const r = await toPlan(guid, await planOf("fixed", "large"));
    expect(r.status).toBe(422);
    expect(r.json.errors[0].detail).toContain("plan_updateable: false");
    expect(brokerRequests.slice(sent).filter((x) => x.method === "PATCH")).toEqual([]);
    const after = (await call("GET", `/v3/service_instances/${guid}`)).json;
    expect(after.last_operation).toMatchObject({ type: "create", state: "succeeded" });
    expect(after.service_plan.name).toBe("small");
    // a plan of another offering is refused too
    expect((await toPlan(guid, await planOf("good", "large"))).json.errors[0].detail).toContain("another service offering");
    await call("DELETE", `/v3/service_instances/${guid}`);
    expect((await settle(`/v3/service_instances/${guid}`)).status).toBe(404);
  });

  test("a plan change that fails at the broker leaves the instance on its old plan, bindable and deletable", async () => {
    await register("failupdate");
    const guid = await create("stuck-size", "failupdate");
    expect((await toPlan(guid, await planOf("failupdate", "large"))).status).toBe(202);
    const done = await settle(`/v3/service_instances/${guid}`);
    expect(done.json.last_operation.state).toBe("failed");
    expect(done.json.last_operation.description).toContain("ran out of disk");
    expect(done.json.last_operation.description).toContain("stays on plan small");
    expect(done.json.service_plan.name).toBe("small");
    const b = await call("POST", "/v3/service_credential_bindings", { type: "app", relationships: { app: { data: { guid: appGuid } }, service_instance: { data: { guid } } } });
    expect(b.status, JSON.stringify(b.json)).toBe(202);
    expect((await settle(`/v3/service_credential_bindings/${b.json.guid}`)).json.last_operation.state).toBe("succeeded");
    await call("DELETE", `/v3/service_credential_bindings/${b.json.guid}`);
    await settle(`/v3/service_credential_bindings/${b.json.guid}`);
    await call("DELETE", `/v3/service_instances/${guid}`);
    expect((await settle(`/v3/service_instances/${guid}`)).status).toBe(404);
    expect(failingUpdate.instances.has(guid)).toBe(false);
  });
});

describe("orphans (issue 8)", () => {
  const register = async (name: string) => {
    const r = await call("POST", "/v3/service_brokers", { name, url: `http://${name}.broker`, authentication: { type: "basic", credentials: { username: "platform", password: "broker-secret" } } });
    expect(r.status, JSON.stringify(r.json)).toBe(201);
  };
  const createInstance = async (name: string, broker: string) => {
    const r = await call("POST", "/v3/service_instances", { type: "managed", name, relationships: { space: { data: { guid: spaceGuid } }, service_plan: { data: { guid: await planOf(broker) } } } });
    expect(r.status, JSON.stringify(r.json)).toBe(202);
    return settle(`/v3/service_instances/${r.json.guid}`);
  };
  const bindTo = async (instance: string) => {
    const r = await call("POST", "/v3/service_credential_bindings", { type: "app", relationships: { app: { data: { guid: appGuid } }, service_instance: { data: { guid: instance } } } });
    expect(r.status, JSON.stringify(r.json)).toBe(202);
    return settle(`/v3/service_credential_bindings/${r.json.guid}`);
  };

  test("a bind the broker answers with 500 leaves a failed binding and no credentials at the broker", async () => {
    await register("flakybind");
    const inst = await createInstance("bind-target", "flakybind");
    expect(inst.json.last_operation.state).toBe("succeeded");
    const b = await bindTo(inst.json.guid);
    expect(b.json.last_operation.state).toBe("failed");
    expect(b.json.last_operation.description).toContain("lost the binding");
    expect(b.json.last_operation.description).toContain("removed");
    expect(flakyBind.instances.get(inst.json.guid)!.bindings.size).toBe(0);
    expect(flakyBind.calls).toContain(`unbind ${b.json.guid}`);
    // nothing reaches the app's environment
    const env = (await call("GET", `/v3/apps/${appGuid}/env`)).json.system_env_json.VCAP_SERVICES;
    expect(env.memory ?? []).toEqual([]);
    expect((await call("DELETE", `/v3/service_credential_bindings/${b.json.guid}`)).status).toBe(202);
    expect((await settle(`/v3/service_credential_bindings/${b.json.guid}`)).status).toBe(404);
  });

  test("a provision orphan whose cleanup failed too is deleted later in the background, with growing delays", async () => {
    await register("flakyprov");
    // mitigation's 3 attempts fail, then 2 background retries; the 3rd background retry succeeds
    flakyProvision.deletesToFail = 5;
    const done = await createInstance("orphaned", "flakyprov");
    const guid = done.json.guid;
    expect(done.json.last_operation.state).toBe("failed");
    expect(done.json.last_operation.description).toContain("retrying its removal in the background");
    expect(flakyProvision.instances.has(guid)).toBe(true);
    await eventually(() => (flakyProvision.instances.has(guid) ? undefined : true), 10_000, "the orphan to be deprovisioned in the background");
    const t = flakyProvision.deleteTimes;
    expect(t).toHaveLength(6);
    // background retries (after the 3 of mitigation) wait initialMs, then 2x, then 4x (timers never fire early)
    expect(t[3]! - t[2]!).toBeGreaterThanOrEqual(ORPHAN_RETRY_MS - 5);
    expect(t[4]! - t[3]!).toBeGreaterThanOrEqual(2 * ORPHAN_RETRY_MS - 5);
    expect(t[5]! - t[4]!).toBeGreaterThanOrEqual(4 * ORPHAN_RETRY_MS - 5);
    const after = await eventually(async () => {
      const r = await call("GET", `/v3/service_instances/${guid}`);
      return r.json.last_operation.description.includes("removed on a later attempt") ? r : undefined;
    }, 5_000, "the instance to say its orphan was removed");
    expect(after.json.last_operation).toMatchObject({ type: "create", state: "failed" });
    // no further retries once it is gone
    await Bun.sleep(8 * ORPHAN_RETRY_MS);
    expect(flakyProvision.deleteTimes).toHaveLength(6);
    expect((await call("DELETE", `/v3/service_instances/${guid}`)).status).toBe(202);
    expect((await settle(`/v3/service_instances/${guid}`)).status).toBe(404);
  });

  test("a binding orphan whose cleanup failed too is unbound later in the background", async () => {
    const inst = (await call("GET", "/v3/service_instances?names=bind-target")).json.resources[0];
    flakyBind.deletesToFail = 4;
    const before = flakyBind.deleteTimes.length;
    const b = await bindTo(inst.guid);
    expect(b.json.last_operation.state).toBe("failed");
    expect(b.json.last_operation.description).toContain("retrying its removal in the background");
    expect(flakyBind.instances.get(inst.guid)!.bindings.has(b.json.guid)).toBe(true);
    await eventually(() => (flakyBind.instances.get(inst.guid)!.bindings.has(b.json.guid) ? undefined : true), 10_000, "the orphaned binding to be unbound in the background");
    expect(flakyBind.deleteTimes.length - before).toBe(5);
    const after = await eventually(async () => {
      const r = await call("GET", `/v3/service_credential_bindings/${b.json.guid}`);
      return r.json.last_operation.description.includes("removed on a later attempt") ? r : undefined;
    }, 5_000, "the binding to say its orphan was removed");
    expect(after.json.last_operation.state).toBe("failed");
    await call("DELETE", `/v3/service_credential_bindings/${b.json.guid}`);
    expect((await settle(`/v3/service_credential_bindings/${b.json.guid}`)).status).toBe(404);
  });
});

describe("logs (issue 8)", () => {
  test("after every bind, unbind, failure and orphan above, no log line holds a credential or the broker's password", () => {
    expect(logLines.some((l) => l.includes("service bound"))).toBe(true);
    expect(logLines.some((l) => l.includes("bind failed"))).toBe(true);
    for (const line of logLines) {
      expect(line).not.toMatch(/pw-[0-9a-f-]{8}/);
      expect(line).not.toContain("broker-secret");
    }
  });
});
