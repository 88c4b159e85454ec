// The controller's API (controller/main.ts in process: app.handle on the in-memory bus, SQLite in a temp
// dir) on hostile JSON bodies: every POST, PUT and PATCH route with a body, path ids existing or not,
// bodies of known field names with hostile values, deep nesting, __proto__, not JSON, wrong content types.
// Property: never a 500; errors in Cloud Foundry's {errors:[{code,title,detail}]}; a refused request (4xx)
// leaves every table of the database exactly as it was.

import * as fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBus, MemoryBroker, memoryLogger } from "../../../bus/index.ts";
import { startController, type RunningController } from "../../../controller/main.ts";
import { jsonFile, readJson, violated, type FuzzTarget } from "../lib/fuzz-target.ts";
import { hostileJsonValue } from "../lib/hostile-json.ts";

export interface ControllerInput {
  method: string;
  /** a route's path with `:param`s, filled in at run time from `ids` */
  route: string;
  ids: number[];
  body: { text: string; contentType: string };
}

const FIELDS = ["name", "instances", "memory_in_mb", "disk_in_mb", "command", "buildpack", "stack", "environment_variables", "health_check", "space_guid", "organization_guid", "var", "host", "domain", "path", "app_guid", "droplet_guid", "username", "password", "url", "authentication", "credentials", "parameters", "service_plan_guid", "service_instance_guid", "relationships", "type", "tags", "no_route", "random_route", "state", "role", "user_guid", "port", "plan", "metadata"];
const hostileObject = fc.dictionary(fc.constantFrom(...FIELDS), hostileJsonValue, { maxKeys: 4 });
const body: fc.Arbitrary<ControllerInput["body"]> = fc.oneof(
  { weight: 4, arbitrary: hostileObject.map((o) => ({ text: JSON.stringify(o), contentType: "application/json" })) },
  fc.tuple(hostileObject, fc.constantFrom(...FIELDS), fc.integer({ min: 1, max: 60_000 })).map(([o, k, d]) => ({ text: JSON.stringify({ ...o, [k]: "__DEEP__" }).replace('"__DEEP__"', '{"a":'.repeat(d) + "1" + "}".repeat(d)), contentType: "application/json" })),
  hostileObject.map((o) => ({ text: JSON.stringify(o).replace(/^\{/, '{"__proto__":{"admin":true},'), contentType: "application/json" })),
  fc.constantFrom("", "{", "null", "[]", "1", "{\"a\":1,}", "\u00ff", "x".repeat(10)).map((text) => ({ text, contentType: "application/json" })),
  fc.tuple(hostileObject, fc.constantFrom("text/plain", "", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x")).map(([o, ct]) => ({ text: JSON.stringify(o), contentType: ct })),
);

/** Routes with a body, minus login (a refused login is counted on purpose), the binary uploads and the web console (HTML forms, its own tests). */
export function bodyRoutes(c: RunningController): { method: string; path: string }[] {
  return (c.app.routes as { method: string; path: string }[])
    .filter((r) => ["POST", "PUT", "PATCH"].includes(r.method) && r.path !== "/v3/tokens" && !r.path.startsWith("/console") && !r.path.endsWith("/bits") && !r.path.includes("/droplets/upload") && !r.path.startsWith("/internal/"))
    .map((r) => ({ method: r.method, path: r.path }));
}

export function controllerInput(routes: { method: string; path: string }[]): fc.Arbitrary<ControllerInput> {
  return fc.record({
    route: fc.constantFrom(...routes.map((r) => `${r.method} ${r.path}`)),
    ids: fc.array(fc.nat({ max: 20 }), { minLength: 3, maxLength: 3 }),
    body,
  }).map((i) => ({ ...i, method: i.route.split(" ")[0]! }));
}

export class ControllerFuzz {
  c!: RunningController;
  private dir = "";
  private token = "";
  private ids: string[] = [];

  async start(): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), "skiff-fuzz-ctl-"));
    const broker = new MemoryBroker();
    this.c = await startController(
      { natsUrl: "", port: 0, dataDir: this.dir, domain: "skiff.test", adminPassword: "adminpass", embedHealthManager: false, publicUrl: "http://controller.test", findTimeoutMs: 50 },
      { bus: createBus(broker.transport(), memoryLogger()), log: memoryLogger(), listen: false },
    );
    const login = await this.call("POST", "/v3/tokens", { text: JSON.stringify({ username: "admin", password: "adminpass" }), contentType: "application/json" }, false);
    this.token = ((await login.json()) as { access_token: string }).access_token;
    const app = (await (await this.call("POST", "/v3/apps", { text: JSON.stringify({ name: "fz-app" }), contentType: "application/json" })).json()) as { guid: string };
    const spaces = (await (await this.call("GET", "/v3/spaces")).json()) as { resources: { guid: string }[] };
    const orgs = (await (await this.call("GET", "/v3/organizations")).json()) as { resources: { guid: string }[] };
    this.ids = [app.guid, spaces.resources[0]?.guid ?? "s", orgs.resources[0]?.guid ?? "o", "00000000-0000-0000-0000-000000000000", "x", "%2F", "..", "é", "a".repeat(300)];
  }

  async stop(): Promise<void> {
    await this.c?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  call(method: string, path: string, body?: ControllerInput["body"], auth = true): Promise<Response> {
    return this.c.app.handle(new Request(`http://controller.test${path}`, {
      method,
      headers: { ...(auth ? { authorization: `bearer ${this.token}` } : {}), ...(body ? { "content-type": body.contentType } : {}) },
      body: body?.text,
    }));
  }

  private async snapshot(): Promise<string> {
    const db = this.c.ctx.store.db;
    const tables = await db.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    const out: Record<string, unknown> = {};
    for (const { name } of tables) out[name] = await db.all(`SELECT * FROM "${name}" ORDER BY rowid`);
    return JSON.stringify(out);
  }

  async check(input: ControllerInput): Promise<void> {
    const path = input.route.slice(input.method.length + 1).replace(/:(\w+)/g, (_m, _p, off: number) => this.ids[input.ids[off % 3]! % this.ids.length]!);
    const before = await this.snapshot();
    const res = await this.call(input.method, path, input.body);
    const text = await res.text();
    const at = () => `\n${input.method} ${path} (${input.body.contentType}) ${JSON.stringify(input.body.text.slice(0, 300))}\n→ ${res.status} ${text.slice(0, 300)}`;
    if (res.status >= 500) violated(`the controller answered ${res.status}${at()}`);
    if (res.status >= 400) {
      let json: { errors?: { code?: unknown; title?: unknown; detail?: unknown }[] } | undefined;
      try {
        json = JSON.parse(text);
      } catch {}
      const e = json?.errors?.[0];
      if (!e || typeof e.code !== "number" || typeof e.title !== "string" || typeof e.detail !== "string") violated(`an error not in Cloud Foundry's shape${at()}`);
      const after = await this.snapshot();
      if (after !== before) violated(`a refused request (${res.status}) changed the database${at()}`);
    }
  }
}

export function controllerTarget(): FuzzTarget<ControllerInput> {
  const fuzz = new ControllerFuzz();
  let arb: fc.Arbitrary<ControllerInput> | undefined;
  const target: FuzzTarget<ControllerInput> = {
    name: "controller-bodies",
    describe: "the controller's POST/PUT/PATCH routes (in process) on hostile JSON bodies: no 500, CF-shaped errors, a refused request changes no table",
    get arbitrary() {
      if (!arb) throw new Error("start the controller target first: its routes come from the running app");
      return arb;
    },
    async: true,
    start: async () => {
      await fuzz.start();
      arb = controllerInput(bodyRoutes(fuzz.c));
    },
    stop: () => fuzz.stop(),
    check: (i) => fuzz.check(i),
    save: (i) => jsonFile(i),
    load: (_n, b) => readJson<ControllerInput>(b),
  };
  return target;
}
