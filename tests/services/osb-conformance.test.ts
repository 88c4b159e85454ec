// Issue 22: what the Open Service Broker API v2.17 says a broker MUST do, checked over real HTTP against
// the broker (createBroker, listening) around the real PostgresProvisioner and a real postgres. Each test
// names the spec section it enforces; refused requests are shown to create or delete nothing on the server.
// A provisioner held at a gate (HeldPostgres) makes provision, update and bind as slow as a test needs.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { SQL } from "bun";
import { memoryLogger } from "../../bus/log.ts";
import { BrokerClient } from "../../controller/broker/broker-client.ts";
import { createBroker } from "../../controller/broker/broker.ts";
import { resourceName } from "../../controller/broker/provisioners/names.ts";
import { PostgresProvisioner, postgresService } from "../../controller/broker/provisioners/postgres.ts";
import { postgresBinDir, startPostgres, type RunningPostgres } from "../../controller/broker/servers/postgres-server.ts";
import { MemoryBrokerStore } from "../../controller/broker/store.ts";
import type { BindRequest, ProvisionRequest, UpdateRequest } from "../../controller/broker/types.ts";
import { freePort } from "../support/ports.ts";
import { installed, place, rejection, tempDir } from "./harness.ts";
import { existsSync } from "node:fs";

existsSync(`${postgresBinDir()}/postgres`) || installed("postgres");

const S = postgresService.id;
const SHARED = postgresService.plans[0]!.id;
const LARGE = postgresService.plans.find((p) => p.name === "shared-large")?.id ?? "(no shared-large plan)";
const where = { organization_guid: "org-1", space_guid: "space-1" };
const provisionBody = (extra: Record<string, unknown> = {}) => ({ service_id: S, plan_id: SHARED, ...where, context: { platform: "skiff", ...where }, parameters: {}, ...extra });

/** Operations wait at a gate the test opens: `hold("provision")` returns the function that lets it through. */
class HeldPostgres extends PostgresProvisioner {
  private readonly gates = new Map<string, Promise<void>>();
  hold(kind: "provision" | "update" | "bind"): () => void {
    let open!: () => void;
    this.gates.set(kind, new Promise<void>((r) => (open = r)));
    return () => {
      this.gates.delete(kind);
      open();
    };
  }
  override async provision(req: ProvisionRequest) {
    await this.gates.get("provision");
    return super.provision(req);
  }
  override async update(req: UpdateRequest) {
    await this.gates.get("update");
    return super.update(req);
  }
  override async bind(req: BindRequest) {
    await this.gates.get("bind");
    return super.bind(req);
  }
}

let server: RunningPostgres;
let admin: SQL;
let provisioner: HeldPostgres;
let app: ReturnType<typeof createBroker>;
let base: string;
const dir = tempDir("osb");
const auth = `Basic ${btoa("platform:s3cret")}`;

beforeAll(async () => {
  server = await startPostgres({ dir: dir.path, durable: false });
  admin = new SQL({ url: server.adminUrl, max: 1 });
  provisioner = new HeldPostgres({ adminUrl: server.adminUrl });
  app = createBroker({ provisioners: [provisioner], credentials: { username: "platform", password: "s3cret" }, store: new MemoryBrokerStore(), syncWindowMs: 0, log: memoryLogger() });
  const port = await freePort();
  app.listen({ port, hostname: "127.0.0.1" });
  base = `http://127.0.0.1:${port}`;
}, 60_000);

afterAll(async () => {
  await app?.stop();
  await admin?.close({ timeout: 1 });
  await server?.stop();
  dir.remove();
});

/** One OSB request over HTTP, as a platform sends it (override or drop headers with `headers`). */
async function osb(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const all: Record<string, string> = { authorization: auth, "x-broker-api-version": "2.17", "content-type": "application/json", ...headers };
  for (const [k, v] of Object.entries(all)) if (v === "") delete all[k];
  const res = await fetch(base + path, { method, headers: all, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

const databaseExists = async (instanceId: string) =>
  (await admin.unsafe(`SELECT 1 FROM pg_database WHERE datname = $1`, [PostgresProvisioner.databaseName(instanceId)])).length > 0;
const roleExists = async (bindingId: string) => (await admin.unsafe(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [resourceName("skiffusr", bindingId)])).length > 0;

async function until(probe: () => Promise<boolean>, what: string) {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline; await Bun.sleep(20)) if (await probe()) return;
  throw new Error(`timed out waiting for ${what}`);
}
const lastState = async (path: string) => (await osb("GET", `${path}/last_operation`)).body.state;

describe("OSB 2.17 against a real broker and PostgreSQL (issue 22)", () => {
  test("§ Provisioning: organization_guid and space_guid are REQUIRED, non-empty; without one the answer is 400 naming it, and no database is made", async () => {
    const id = "osb-no-org";
    for (const [field, value] of [["organization_guid", undefined], ["organization_guid", ""], ["space_guid", undefined], ["space_guid", ""]] as const) {
      const body: Record<string, unknown> = provisionBody({ [field]: value });
      if (value === undefined) delete body[field];
      for (const query of ["", "?accepts_incomplete=true"]) {
        const res = await osb("PUT", `/v2/service_instances/${id}${query}`, body);
        expect(res.status).toBe(400);
        expect(res.body.description).toBe(`${field} is ${value === undefined ? "missing" : "empty"}: it is required, a non-empty string`);
      }
    }
    expect(await databaseExists(id)).toBe(false);
    expect((await osb("GET", `/v2/service_instances/${id}/last_operation`)).status).toBe(410);
    expect((await osb("GET", `/v2/service_instances/${id}`)).status).toBe(404);
  });

  test("§ Provisioning: 200 only for an identical repeat; one differing only in organization, space or context is 409", async () => {
    const id = "osb-repeat";
    expect((await osb("PUT", `/v2/service_instances/${id}`, provisionBody())).status).toBe(201);
    expect((await osb("PUT", `/v2/service_instances/${id}`, provisionBody())).status).toBe(200);
    const variants: [string, Record<string, unknown>][] = [
      ["organization_guid", { organization_guid: "org-2", context: { platform: "skiff", ...where, organization_guid: "org-2" } }],
      ["space_guid", { space_guid: "space-2", context: { platform: "skiff", ...where, space_guid: "space-2" } }],
      ["context", { context: { platform: "skiff", ...where, instance_name: "other" } }],
    ];
    for (const [field, change] of variants) {
      const res = await osb("PUT", `/v2/service_instances/${id}`, provisionBody(change));
      expect(res.status).toBe(409);
      expect(res.body.description).toContain(field);
    }
    expect(await databaseExists(id)).toBe(true);
    expect((await osb("DELETE", `/v2/service_instances/${id}?service_id=${S}&plan_id=${SHARED}`)).status).toBe(200);
    expect(await databaseExists(id)).toBe(false);
  });

  test("§ Deprovisioning, § Unbinding: an empty or wrong service_id/plan_id is 400 naming it; the database, the role and the app's session survive", async () => {
    const id = "osb-delete";
    const client = new BrokerClient({ url: base, username: "platform", password: "s3cret", pollIntervalMs: 20 });
    const inst = { instanceId: id, serviceId: S, planId: SHARED, ...place };
    await client.provision(inst);
    const { credentials } = await client.bind({ ...inst, bindingId: "osb-delete-b" });
    const session = new SQL({ url: credentials.uri, max: 1 });
    await session`CREATE TABLE notes (body text)`;
    await session`INSERT INTO notes VALUES ('kept')`;
    const refusals: [string, string][] = [
      [`plan_id=${SHARED}&service_id=`, "query parameter service_id is empty"],
      [`plan_id=&service_id=${S}`, "query parameter plan_id is empty"],
      [`service_id=${S}`, "query parameter plan_id is missing"],
      [`plan_id=${SHARED}&service_id=3f6b1c2a-8d4e-4f0a-9b7c-5e2d1a0c7f21`, "service_id 3f6b1c2a-8d4e-4f0a-9b7c-5e2d1a0c7f21 is not the service of"],
      [`plan_id=${LARGE}&service_id=${S}`, `plan_id ${LARGE} is not the plan of`],
    ];
    for (const [query, description] of refusals) {
      for (const path of [`/v2/service_instances/${id}/service_bindings/osb-delete-b`, `/v2/service_instances/${id}`]) {
        for (const async of ["", "&accepts_incomplete=true"]) {
          const res = await osb("DELETE", `${path}?${query}${async}`);
          expect(res.status).toBe(400);
          expect(res.body.description).toStartWith(description);
          expect(res.body.description).toEndWith("nothing was deleted");
        }
      }
    }
    expect(await databaseExists(id)).toBe(true);
    expect(await roleExists("osb-delete-b")).toBe(true);
    expect((await session`SELECT body FROM notes`)[0].body).toBe("kept");
    await session.close({ timeout: 1 });
    await client.unbind({ ...inst, bindingId: "osb-delete-b" });
    await client.deprovision(inst);
    expect(await roleExists("osb-delete-b")).toBe(false);
    expect(await databaseExists(id)).toBe(false);
  });

  test("§ Fetching a Service Instance: instances_retrievable; 404 while provisioning runs, 200 with service_id, plan_id and parameters after, 422 ConcurrencyError while an update runs", async () => {
    const catalog = await osb("GET", "/v2/catalog");
    expect(catalog.body.services[0]).toMatchObject({ instances_retrievable: true, bindings_retrievable: true, plan_updateable: true });
    const id = "osb-fetch";
    const path = `/v2/service_instances/${id}`;
    expect((await osb("GET", path)).status).toBe(404);

    const letProvision = provisioner.hold("provision");
    expect((await osb("PUT", `${path}?accepts_incomplete=true`, provisionBody({ parameters: { note: "n1" } }))).status).toBe(202);
    const provisioning = await osb("GET", path);
    expect(provisioning).toEqual({ status: 404, body: { description: `service instance ${id} is still being provisioned` } });
    letProvision();
    await until(async () => (await lastState(path)) === "succeeded", "the provision");
    expect(await osb("GET", `${path}?service_id=${S}&plan_id=${SHARED}`)).toEqual({ status: 200, body: { service_id: S, plan_id: SHARED, parameters: { note: "n1" } } });

    const letUpdate = provisioner.hold("update");
    expect((await osb("PATCH", `${path}?accepts_incomplete=true`, { service_id: S, plan_id: LARGE, previous_values: { plan_id: SHARED } })).status).toBe(202);
    const updating = await osb("GET", path);
    expect(updating.status).toBe(422);
    expect(updating.body.error).toBe("ConcurrencyError");
    letUpdate();
    await until(async () => (await lastState(path)) === "succeeded", "the update");
    expect((await osb("GET", path)).body).toEqual({ service_id: S, plan_id: LARGE, parameters: { note: "n1" } });
    expect((await osb("DELETE", `${path}?service_id=${S}&plan_id=${LARGE}`)).status).toBe(200);
    expect((await osb("GET", path)).status).toBe(404);
  });

  test("§ Fetching a Service Binding: bindings_retrievable; 404 while the bind runs, then its credentials, which log in", async () => {
    const id = "osb-fetch-binding";
    await new BrokerClient({ url: base, username: "platform", password: "s3cret", pollIntervalMs: 20 }).provision({ instanceId: id, serviceId: S, planId: SHARED, ...place });
    const path = `/v2/service_instances/${id}/service_bindings/osb-fb`;
    const letBind = provisioner.hold("bind");
    expect((await osb("PUT", `${path}?accepts_incomplete=true`, { service_id: S, plan_id: SHARED, bind_resource: { app_guid: "app-1" } })).status).toBe(202);
    expect((await osb("GET", path)).status).toBe(404);
    letBind();
    await until(async () => (await lastState(path)) === "succeeded", "the bind");
    const got = await osb("GET", `${path}?service_id=${S}&plan_id=${SHARED}`);
    expect(got.status).toBe(200);
    const session = new SQL({ url: got.body.credentials.uri, max: 1 });
    expect((await session`SELECT session_user AS u`)[0].u).toBe(resourceName("skiffusr", "osb-fb"));
    await session.close({ timeout: 1 });
    expect((await osb("DELETE", `${path}?service_id=${S}&plan_id=${SHARED}`)).status).toBe(200);
    expect((await osb("GET", path)).status).toBe(404);
    expect((await osb("DELETE", `/v2/service_instances/${id}?service_id=${S}&plan_id=${SHARED}`)).status).toBe(200);
  });

  test("§ Platform to Service Broker Authentication, § API Version Header: 401, then 412, come before anything else on every route, unknown ones included", async () => {
    for (const [method, path] of [["GET", "/v2/service_instances/x"], ["GET", "/v2/service_instances/x/service_bindings/y"], ["GET", "/v2/nothing/here"], ["POST", "/v2/catalog"], ["PUT", "/v2/service_instances/x"]] as const) {
      expect((await osb(method, path, undefined, { authorization: "" })).status).toBe(401);
      expect((await osb(method, path, undefined, { authorization: `Basic ${btoa("platform:wrong")}` })).status).toBe(401);
      expect((await osb(method, path, undefined, { "x-broker-api-version": "" })).status).toBe(412);
    }
    expect((await osb("GET", "/v2/nothing/here")).status).toBe(404);
  });

  test("§ Updating a Service Instance: shared → shared-large raises each binding's connection cap on the live database (10 → 40); the rows written before are still there", async () => {
    const client = new BrokerClient({ url: base, username: "platform", password: "s3cret", pollIntervalMs: 20 });
    const inst = { instanceId: "osb-plan", serviceId: S, planId: SHARED, ...place };
    await client.provision(inst);
    const { credentials } = await client.bind({ ...inst, bindingId: "osb-plan-b", appGuid: "app-1" });
    const open: SQL[] = [];
    const connect = async () => {
      const s = new SQL({ url: credentials.uri, max: 1, connectionTimeout: 5 });
      open.push(s);
      await s`SELECT 1`;
      return s;
    };
    try {
      const first = await connect();
      await first`CREATE TABLE notes (body text)`;
      await first`INSERT INTO notes VALUES ('written on shared')`;
      for (let i = 1; i < 10; i++) await connect();
      // the 11th connection of this binding: PostgreSQL refuses it at login
      expect((await rejection(connect()))?.message).toMatch(/too many connections for role/);
      await client.update({ ...inst, planId: LARGE, previousPlanId: SHARED });
      expect((await client.fetchInstance({ instanceId: inst.instanceId })).plan_id).toBe(LARGE);
      const eleventh = await connect();
      expect((await eleventh`SELECT body FROM notes`)[0].body).toBe("written on shared");
      const limit = await admin.unsafe(`SELECT rolconnlimit FROM pg_roles WHERE rolname = $1`, [credentials.username]);
      expect(limit[0].rolconnlimit).toBe(40);
      // a binding made now gets the new plan's cap too
      const { credentials: later } = await client.bind({ ...inst, planId: LARGE, bindingId: "osb-plan-b2", appGuid: "app-2" });
      expect((await admin.unsafe(`SELECT rolconnlimit FROM pg_roles WHERE rolname = $1`, [later.username]))[0].rolconnlimit).toBe(40);
      // and back down: open sessions stay, a new one past 10 is refused again
      await client.update({ ...inst, planId: SHARED, previousPlanId: LARGE });
      expect((await rejection(connect()))?.message).toMatch(/too many connections for role/);
      expect((await first`SELECT count(*)::int AS n FROM notes`)[0].n).toBe(1);
      await client.unbind({ ...inst, planId: SHARED, bindingId: "osb-plan-b2" });
    } finally {
      await Promise.all(open.map((s) => s.close({ timeout: 1 }).catch(() => undefined)));
    }
    await client.unbind({ ...inst, bindingId: "osb-plan-b" });
    await client.deprovision(inst);
    expect(await databaseExists(inst.instanceId)).toBe(false);
  }, 60_000);
});
