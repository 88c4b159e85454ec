// The service broker's OSB API (controller/broker/broker.ts) on hostile requests, in process (app.handle)
// against the in-memory provisioner and store: every route, ids existing or not, hostile query strings
// and JSON bodies. Property: never a 500; an error is OSB's `{description}`; a refused request (4xx)
// leaves the store (instances and bindings) exactly as it was.

import * as fc from "fast-check";
import { memoryLogger } from "../../../bus/log.ts";
import { createBroker } from "../../../controller/broker/broker.ts";
import { MemoryProvisioner } from "../../../controller/broker/memory-provisioner.ts";
import { MemoryBrokerStore } from "../../../controller/broker/store.ts";
import { jsonFile, readJson, violated, type FuzzTarget } from "../lib/fuzz-target.ts";
import { hostileBody } from "../lib/hostile-json.ts";

export interface BrokerInput {
  method: string;
  path: string;
  query: string;
  body: { text: string; contentType: string } | null;
}

const S = "memory-service-id";
const SMALL = "memory-small-id";
const where = { organization_guid: "org-1", space_guid: "space-1" };
const provision = { service_id: S, plan_id: SMALL, ...where, parameters: { a: 1 }, context: { platform: "skiff", ...where } };
const bind = { service_id: S, plan_id: SMALL, bind_resource: { app_guid: "app-1" }, parameters: {}, context: { platform: "skiff", ...where } };
const update = { service_id: S, plan_id: "memory-large-id", parameters: { b: 2 }, previous_values: { plan_id: SMALL } };

const id = fc.oneof({ weight: 3, arbitrary: fc.constantFrom("inst-1", "new-1") }, fc.constantFrom("", "%2F", "..", "x".repeat(300), "é", "a b"), fc.stringMatching(/^[a-z0-9-]{1,10}$/));
const bid = fc.oneof({ weight: 3, arbitrary: fc.constantFrom("bind-1", "new-b") }, fc.stringMatching(/^[a-z0-9-]{1,10}$/));
const query = fc.oneof(
  fc.constantFrom("", "accepts_incomplete=true", `service_id=${S}&plan_id=${SMALL}`, `accepts_incomplete=true&service_id=${S}&plan_id=${SMALL}`, "service_id=&plan_id=", "accepts_incomplete=yes", "operation=x", "%zz=1"),
  fc.stringMatching(/^[a-z_=&0-9%-]{0,30}$/),
);

export const brokerInput: fc.Arbitrary<BrokerInput> = fc.oneof(
  fc.record({ method: fc.constant("PUT"), path: id.map((i) => `/v2/service_instances/${i}`), query, body: hostileBody(provision) }),
  fc.record({ method: fc.constant("PATCH"), path: id.map((i) => `/v2/service_instances/${i}`), query, body: hostileBody(update) }),
  fc.record({ method: fc.constant("PUT"), path: fc.tuple(id, bid).map(([i, b]) => `/v2/service_instances/${i}/service_bindings/${b}`), query, body: hostileBody(bind) }),
  fc.record({ method: fc.constantFrom("DELETE", "GET"), path: fc.oneof(id.map((i) => `/v2/service_instances/${i}`), fc.tuple(id, bid).map(([i, b]) => `/v2/service_instances/${i}/service_bindings/${b}`), id.map((i) => `/v2/service_instances/${i}/last_operation`)), query, body: fc.constant(null) }),
  fc.record({ method: fc.constantFrom("POST", "PUT", "GET", "OPTIONS"), path: fc.constantFrom("/v2/catalog", "/v2/service_instances", "/", "/v2/service_instances/inst-1/service_bindings"), query, body: fc.option(hostileBody({}), { nil: null }) }),
);

const OK = new Set([200, 201, 202, 400, 404, 409, 410, 412, 422]);

export class BrokerFuzz {
  private store = new MemoryBrokerStore();
  private app = createBroker({ provisioners: [new MemoryProvisioner()], credentials: { username: "broker", password: "secret" }, store: this.store, syncWindowMs: 0, log: memoryLogger() });

  async call(method: string, path: string, body?: { text: string; contentType: string } | null): Promise<Response> {
    return this.app.handle(new Request(`http://broker${path}`, {
      method,
      headers: { authorization: `Basic ${btoa("broker:secret")}`, "x-broker-api-version": "2.17", ...(body ? { "content-type": body.contentType } : {}) },
      body: body ? body.text : undefined,
    }));
  }

  async start(): Promise<void> {
    const p = await this.call("PUT", "/v2/service_instances/inst-1?accepts_incomplete=true", { text: JSON.stringify(provision), contentType: "application/json" });
    if (p.status >= 300) throw new Error(`provisioning the fuzz instance answered ${p.status}: ${await p.text()}`);
    for (let i = 0; i < 100 && (await this.store.getInstance("inst-1"))?.operation?.state === "in progress"; i++) await Bun.sleep(10);
    const b = await this.call("PUT", "/v2/service_instances/inst-1/service_bindings/bind-1?accepts_incomplete=true", { text: JSON.stringify(bind), contentType: "application/json" });
    if (b.status >= 300) throw new Error(`binding the fuzz instance answered ${b.status}: ${await b.text()}`);
    for (let i = 0; i < 100 && (await this.store.getBinding("bind-1"))?.operation?.state === "in progress"; i++) await Bun.sleep(10);
  }

  private async snapshot(): Promise<string> {
    const instances = (await this.store.instances()).sort((a, b) => (a.id < b.id ? -1 : 1));
    const bindings = await Promise.all(instances.map((i) => this.store.bindingsOf(i.id)));
    return JSON.stringify({ instances, bindings });
  }

  async check(input: BrokerInput): Promise<void> {
    const before = await this.snapshot();
    const res = await this.call(input.method, input.path + (input.query ? `?${input.query}` : ""), input.body);
    const text = await res.text();
    const at = () => `\n${input.method} ${input.path}?${input.query} (${input.body?.contentType}) ${JSON.stringify(input.body?.text.slice(0, 300))}\n→ ${res.status} ${text.slice(0, 300)}`;
    if (!OK.has(res.status)) violated(`the broker answered ${res.status}${at()}`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      violated(`the answer is not JSON${at()}`);
    }
    // OSB 2.17: a DELETE or last_operation of an instance or binding that does not exist answers 410 with `{}`
    const gone = res.status === 410;
    if (res.status >= 400 && !gone && typeof (json as { description?: unknown }).description !== "string") violated(`an error without a description${at()}`);
    if (res.status >= 400) {
      // let anything the request set off in the background run, then compare
      await Bun.sleep(0);
      const after = await this.snapshot();
      if (after !== before) violated(`a refused request (${res.status}) changed the store:\n before ${before.slice(0, 500)}\n after  ${after.slice(0, 500)}${at()}`);
    }
  }
}

export function brokerTarget(): FuzzTarget<BrokerInput> {
  let fuzz: BrokerFuzz;
  return {
    name: "broker-bodies",
    describe: "the OSB broker's routes (in process) on hostile ids, queries and JSON bodies: no 500, {description} errors, a refused request changes nothing",
    arbitrary: brokerInput,
    async: true,
    start: async () => {
      fuzz = new BrokerFuzz();
      await fuzz.start();
    },
    check: (i) => fuzz.check(i),
    save: (i) => jsonFile(i),
    load: (_n, b) => readJson<BrokerInput>(b),
  };
}
